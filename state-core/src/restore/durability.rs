//! Durability points during a restore: how often what a restore applied is made durable
//! before the restore ends.
//!
//! While bulk loading, a durable backend trades per-batch durability for speed: redb
//! commits most batches with `Durability::None` (one in 256 is `Immediate`, about a million
//! records at 4,000 a batch), RocksDB writes them without its WAL into memtables. Data and
//! position stay together either way, so a crash loses a consistent tail that the next
//! restore replays, but an unbounded tail is unbounded lost work: a restore killed (or a
//! machine lost) after a minute could start again from zero. A durability point
//! ([`KeyValueStore::flush`]: redb's next commit `Immediate`, RocksDB's memtables of both
//! column families flushed atomically) bounds that loss by records and by time. The default,
//! every 500,000 records or 5 s, costs nothing measurable on a million-record restore; a
//! point every 100,000 records cost 15–20% (an fsync, a memtable flush each time;
//! `BENCHMARKS.md`).

use std::time::{Duration, Instant};

use crate::{KeyValueStore, Result};

/// Default for [`DurabilityPoints::records`]: 500,000 records, about a third of a second
/// of restore on the reference machine (`BENCHMARKS.md`).
pub const DEFAULT_DURABLE_EVERY_RECORDS: u64 = 500_000;

/// Default for [`DurabilityPoints::interval`]: 5 s, so a slow restore (a busy broker, big
/// records) loses at most a few seconds of work to a crash.
pub const DEFAULT_DURABLE_EVERY: Duration = Duration::from_secs(5);

/// When a restore makes what it applied durable before it ends: after `records` records
/// or after `interval`, whichever comes first since the last point (checked after each
/// batch, so a point lands on a batch boundary). The end of a restore, successful or not,
/// is always one. A crash during a restore loses at most the records since the last point,
/// data and position together; the next restore replays them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurabilityPoints {
    /// Records applied between two points (default [`DEFAULT_DURABLE_EVERY_RECORDS`]).
    pub records: u64,
    /// Time between two points (default [`DEFAULT_DURABLE_EVERY`]).
    pub interval: Duration,
}

impl Default for DurabilityPoints {
    fn default() -> Self {
        Self {
            records: DEFAULT_DURABLE_EVERY_RECORDS,
            interval: DEFAULT_DURABLE_EVERY,
        }
    }
}

/// Counts what one restore applied since its last durability point and makes the next
/// point when it is due.
pub(crate) struct DurabilityClock {
    points: Option<DurabilityPoints>,
    records: u64,
    since: Instant,
}

impl DurabilityClock {
    /// A clock starting now; `None` makes no point before the restore's end.
    pub(crate) fn start(points: Option<DurabilityPoints>) -> Self {
        Self {
            points,
            records: 0,
            since: Instant::now(),
        }
    }

    /// Counts `records` just applied to `store`; flushes it when a point is due. Returns
    /// whether it did.
    pub(crate) fn applied(&mut self, store: &dyn KeyValueStore, records: u64) -> Result<bool> {
        let Some(points) = self.points else {
            return Ok(false);
        };
        self.records += records;
        if self.records < points.records.max(1) && self.since.elapsed() < points.interval {
            return Ok(false);
        }
        store.flush()?;
        self.records = 0;
        self.since = Instant::now();
        Ok(true)
    }
}
