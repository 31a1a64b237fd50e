//! When a commit also flushes the store itself ([`KeyValueStore::flush`]).
//!
//! A commit writes the store and its changelog position in one atomic store write, but
//! an engine may keep that write in memory: RocksDB with its write-ahead log off (its
//! default here, as in Kafka Streams) holds it in memtables until they fill. After a
//! crash such a store reopens at its last flush, consistent but old, and restore replays
//! everything since. So every [`FLUSH_EVERY_RECORDS`] committed records, or
//! [`FLUSH_EVERY`] with any, a commit flushes the store, which bounds that replay the way
//! Kafka Streams' checkpoint threshold (10,000 records) bounds its own, without an engine
//! flush, and a small file, on every commit.
//!
//! [`KeyValueStore::flush`]: crate::KeyValueStore::flush

use std::time::{Duration, Instant};

/// Committed records after which a commit flushes the store.
pub(crate) const FLUSH_EVERY_RECORDS: u64 = 10_000;

/// Time after which a commit with records flushes the store, however few.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(30);

/// Records committed since the store was last flushed, and when that was.
#[derive(Debug)]
pub(crate) struct FlushSchedule {
    unflushed: u64,
    flushed_at: Instant,
}

impl Default for FlushSchedule {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl FlushSchedule {
    /// A schedule whose store was flushed (or opened) at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            unflushed: 0,
            flushed_at: now,
        }
    }

    /// Counts a commit of `records` at `now`; says whether the store should be flushed.
    pub(crate) fn committed(&mut self, records: usize, now: Instant) -> bool {
        self.unflushed += records as u64;
        self.unflushed >= FLUSH_EVERY_RECORDS
            || (self.unflushed > 0 && now.duration_since(self.flushed_at) >= FLUSH_EVERY)
    }

    /// Records that the store was flushed at `now`. A failed flush is not recorded, so
    /// the next commit tries again.
    pub(crate) fn flushed(&mut self, now: Instant) {
        self.unflushed = 0;
        self.flushed_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_after_enough_records() {
        let start = Instant::now();
        let mut schedule = FlushSchedule::new(start);
        assert!(!schedule.committed(9_999, start));
        assert!(schedule.committed(1, start));
        schedule.flushed(start);
        assert!(!schedule.committed(5_000, start));
        assert!(schedule.committed(5_000, start));
    }

    #[test]
    fn flushes_after_enough_time_only_with_records() {
        let start = Instant::now();
        let mut schedule = FlushSchedule::new(start);
        let later = start + FLUSH_EVERY;
        assert!(!schedule.committed(0, later), "nothing to flush");
        assert!(!schedule.committed(1, later - Duration::from_millis(1)));
        assert!(
            schedule.committed(0, later),
            "one record waiting, time is up"
        );
        schedule.flushed(later);
        assert!(!schedule.committed(1, later + Duration::from_secs(1)));
    }

    #[test]
    fn a_failed_flush_stays_due() {
        let start = Instant::now();
        let mut schedule = FlushSchedule::new(start);
        assert!(schedule.committed(20_000, start));
        // Not flushed: the next commit, even an empty one, asks again.
        assert!(schedule.committed(0, start));
    }
}
