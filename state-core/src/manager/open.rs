//! Opening every store of a partition: for an assignment and for a standby alike.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::StoreManager;
use crate::builder::Opened;
use crate::{Error, ErrorKind, KeyValueStore, Result, StoreContext};

/// How long an open refused because the store is held (`Unavailable`) is tried again.
///
/// The holder is almost always the partition's previous handle on its way out: revoked
/// and closed, but a durable store releases its files (RocksDB's `LOCK`, redb's file
/// lock) only when its last reference drops, and a query or a standby batch that took one
/// just before the close holds it a moment longer. Kafka Streams retries its task
/// directory lock the same way. A holder that stays past this is a real second writer,
/// and the open fails with the store's own error.
const HELD_RETRY_FOR: Duration = Duration::from_secs(10);

/// The pause between those tries: no event says when another handle's last reference
/// drops, so the open is tried again after it.
const HELD_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Why opening a partition's stores failed, and the stores opened before it did (for the
/// caller to close or keep).
pub(crate) type OpenFailure = (Error, Vec<Arc<dyn KeyValueStore>>);

impl StoreManager {
    /// Opens each store of `context`'s partition in registration order: `kept` stores
    /// (a standby's, already open) first in that order, the rest from their directories,
    /// rebuilding damaged files. On error, returns the stores opened so far with it.
    pub(crate) fn open_stores(
        &self,
        context: &StoreContext,
        kept: Option<Vec<Arc<dyn KeyValueStore>>>,
    ) -> Result<Vec<Opened>, OpenFailure> {
        let mut kept = kept.map(Vec::into_iter);
        let mut opened: Vec<Opened> = Vec::with_capacity(self.stores.len());
        for registered in &self.stores {
            let store = match kept.as_mut().and_then(Iterator::next) {
                Some(store) => Ok((store, None)),
                None => open_when_released(|| registered.recipe.open(context)),
            };
            match store {
                Ok(store) => opened.push(store),
                Err(err) => return Err((err, opened.into_iter().map(|(s, _)| s).collect())),
            }
        }
        Ok(opened)
    }
}

/// Runs `open` until it succeeds, fails with anything but `Unavailable`, or
/// [`HELD_RETRY_FOR`] has passed.
fn open_when_released<T>(open: impl Fn() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + HELD_RETRY_FOR;
    let mut tries = 0u32;
    loop {
        match open() {
            Err(err) if err.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                if tries == 0 {
                    log::info!("store held by another handle, waiting for it to go: {err}");
                }
                tries += 1;
                std::thread::sleep(HELD_RETRY_PAUSE);
            }
            Err(err) if tries > 0 => {
                return Err(err.context(format!("still held after {tries} more tries")));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn held() -> Error {
        Error::unavailable("held by another handle")
    }

    /// An open refused while the store is held succeeds once the holder lets go.
    #[test]
    fn a_held_store_opens_once_released() {
        let tries = AtomicU32::new(0);
        let opened = open_when_released(|| {
            if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(held())
            } else {
                Ok(7)
            }
        });
        assert_eq!(opened.unwrap(), 7);
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    /// Any other error fails at once.
    #[test]
    fn other_errors_are_not_retried() {
        let tries = AtomicU32::new(0);
        let err = open_when_released(|| -> Result<u32> {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Error::corruption("damaged"))
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption);
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
