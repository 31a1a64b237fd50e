//! Openers of one store directory take turns while they look at it and open it.
//!
//! A new store is made in steps (directory, stamp, database, format marker), and RocksDB's
//! own `LOCK` is taken only in the third. An opener that looked in between saw a stamped
//! directory without a database and called it damaged, which restore answers by wiping
//! it: two creators of one new store at once (threads of one process share the partition
//! lock, `state_core::PartitionLock`) could destroy each other's work. So each opener holds
//! a `flock` on the store directory from its first look until its open has finished:
//! exclusive for a writer, shared for a reader (which changes nothing on disk). A writer
//! then holds RocksDB's `LOCK` for as long as it keeps the store open.

use std::fs::File;
use std::path::Path;

use state_core::{Error, Result};

/// How an opener takes its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// A writer: alone.
    Exclusive,
    /// A reader: beside other readers.
    Shared,
}

/// Waits for the turn on the existing directory `dir`, held until the returned file
/// drops; `None` where directories cannot be locked (then openers go on without).
pub(crate) fn take(dir: &Path, turn: Turn) -> Result<Option<File>> {
    let handle = File::open(dir)
        .map_err(|err| Error::from(err).context(format!("opening {}", dir.display())))?;
    let locked = match turn {
        Turn::Exclusive => handle.lock(),
        Turn::Shared => handle.lock_shared(),
    };
    match locked {
        Ok(()) => Ok(Some(handle)),
        Err(err) => {
            log::debug!("no lock on the directory {}: {err}", dir.display());
            Ok(None)
        }
    }
}
