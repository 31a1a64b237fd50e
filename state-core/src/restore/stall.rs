//! A restore that reads nothing: when it is told to its listener, and when it gives up.
//!
//! A changelog partition whose broker is gone (or that has no leader) yields no records and
//! no error: the client reconnects by itself, and the cursor returns empty reads. Without a
//! word until the stall limit, an operator saw five silent minutes before a restore failed;
//! the listener now hears of it within [`STALL_NOTICE_AFTER`] and then every
//! [`STALL_NOTICE_EVERY`], each time with the limit it waits for.

use std::time::{Duration, Instant};

use super::{RestoreListener, RestoreTarget};
use crate::{Error, ErrorKind, Offset, Result};

/// How long a restore reads nothing before its listener hears of it
/// ([`RestoreListener::on_restore_stalled`]).
pub const STALL_NOTICE_AFTER: Duration = Duration::from_secs(2);

/// How often the listener hears of a stall again while it lasts.
pub const STALL_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Default for [`RestoreOptions::stall_timeout`](super::RestoreOptions::stall_timeout):
/// 5 minutes, Kafka Streams' `task.timeout.ms`.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The time since one restore last read something, and its notices.
pub(crate) struct StallWatch {
    limit: Duration,
    notice_after: Duration,
    notice_every: Duration,
    last_progress: Instant,
    next_notice: Duration,
}

impl StallWatch {
    /// A watch whose restore gives up after `limit` without progress, starting now.
    pub(crate) fn start(limit: Duration) -> Self {
        Self::with_notices(limit, STALL_NOTICE_AFTER, STALL_NOTICE_EVERY)
    }

    fn with_notices(limit: Duration, notice_after: Duration, notice_every: Duration) -> Self {
        Self {
            limit,
            notice_after,
            notice_every,
            last_progress: Instant::now(),
            next_notice: notice_after,
        }
    }

    /// The restore read something.
    pub(crate) fn progressed(&mut self) {
        self.last_progress = Instant::now();
        self.next_notice = self.notice_after;
    }

    /// A read at `at` returned nothing: tells `listener` when a notice is due, and fails
    /// with [`ErrorKind::Timeout`] once the limit is reached.
    pub(crate) fn read_nothing(
        &mut self,
        target: RestoreTarget<'_>,
        at: Offset,
        end: Offset,
        listener: &dyn RestoreListener,
    ) -> Result<()> {
        let stalled = self.last_progress.elapsed();
        if stalled > self.limit {
            return Err(Error::new(
                ErrorKind::Timeout,
                // The caller's context names the store, topic and partition.
                format!(
                    "read nothing for {:?} at offset {at} (end {end}): the broker is unreachable or the partition has no leader",
                    self.limit
                ),
            ));
        }
        if stalled >= self.next_notice {
            self.next_notice = stalled + self.notice_every;
            log::warn!(
                "restore of store {} from {} partition {} has read nothing for {stalled:.1?} at offset {at} (end {end}); waiting up to {:?}",
                target.store,
                target.topic,
                target.partition,
                self.limit
            );
            listener.on_restore_stalled(target, at, stalled, self.limit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Notices(Mutex<Vec<(Offset, Duration)>>);

    impl RestoreListener for Notices {
        fn on_restore_stalled(
            &self,
            _: RestoreTarget<'_>,
            at: Offset,
            _stalled_for: Duration,
            limit: Duration,
        ) {
            self.0.lock().unwrap().push((at, limit));
        }
    }

    const TARGET: RestoreTarget<'static> = RestoreTarget {
        topic: "app-store-changelog",
        store: "store",
        partition: 2,
    };

    #[test]
    fn a_stall_is_told_once_per_period_and_again_after_progress() {
        let limit = Duration::from_secs(3600);
        let mut watch = StallWatch::with_notices(limit, Duration::ZERO, Duration::from_secs(3600));
        let notices = Notices::default();
        watch.read_nothing(TARGET, 7, 10, &notices).unwrap();
        watch.read_nothing(TARGET, 7, 10, &notices).unwrap();
        assert_eq!(*notices.0.lock().unwrap(), [(7, limit)]);
        watch.progressed();
        watch.read_nothing(TARGET, 9, 10, &notices).unwrap();
        assert_eq!(*notices.0.lock().unwrap(), [(7, limit), (9, limit)]);
    }

    #[test]
    fn a_stall_past_the_limit_fails_with_a_timeout_naming_the_offset() {
        let mut watch = StallWatch::with_notices(Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let started = Instant::now();
        // The limit is passed once the clock has moved at all.
        while started.elapsed().is_zero() {
            std::hint::spin_loop();
        }
        let err = watch
            .read_nothing(TARGET, 7, 10, &crate::NoopRestoreListener)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("at offset 7 (end 10)"), "{err}");
    }
}
