//! How a restore runs: batch size, bytes in flight, stall limit, durability points, record
//! check, cancel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::durability::DurabilityPoints;
use super::stall::DEFAULT_STALL_TIMEOUT;
use crate::{Error, KeyValueStore, Offset, Partition, ReadAhead, Result, SnapshotStore};

/// Checks each changelog record before restore applies it, so bytes no serde can read are
/// reported (with topic, partition and offset) instead of landing in the store.
pub trait RecordValidator: Send + Sync {
    /// `Err` rejects the record; the message should say what is wrong with it.
    fn validate(&self, key: &[u8], value: Option<&[u8]>) -> Result<()>;
}

/// Checks the record at `offset` of `topic` `partition` with `validator`: a rejected
/// record is an [`ErrorKind::Corruption`](crate::ErrorKind::Corruption) error naming
/// where it is and why. Restore checks every record it applies with this, and so does
/// anything else that reads a changelog for a store (a replay that verifies one).
pub fn check_record(
    validator: &dyn RecordValidator,
    topic: &str,
    partition: Partition,
    offset: Offset,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<()> {
    validator.validate(key, value).map_err(|err| {
        Error::corruption(format!(
            "undecodable changelog record at topic {topic} partition {partition} offset {offset}: {}",
            err.message()
        ))
        .with_source(err)
    })
}

/// Default for [`RestoreOptions::max_bytes_in_flight`]: 32 MiB.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 32 << 20;

/// How restore runs. Which records it reads (committed only, or those of aborted
/// transactions too) is the reader's isolation level: the builder and the store manager
/// read with [`RESTORE_ISOLATION`](crate::RESTORE_ISOLATION), committed only.
#[derive(Clone)]
pub struct RestoreOptions {
    /// Records applied per store write; `None` (the default) takes the backend's
    /// [`Capability::restore_batch`](crate::Capability::restore_batch), the size its
    /// engine writes fastest.
    pub batch_size: Option<usize>,
    /// Bytes of changelog records one restore may hold at once: fetched by the changelog
    /// client, read ahead by the cursor, and the batch being written (default
    /// [`DEFAULT_MAX_BYTES_IN_FLIGHT`]). The store engine's own buffers (RocksDB's
    /// memtables) are bounded by the backend's configuration, not by this.
    pub max_bytes_in_flight: usize,
    /// How long restore may go without reading anything while short of the end offset
    /// before it fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) (default
    /// [`DEFAULT_STALL_TIMEOUT`], 5 minutes, Kafka Streams' `task.timeout.ms`). What it
    /// applied stays, with its position. The listener hears of the stall long before
    /// ([`RestoreListener::on_restore_stalled`](super::RestoreListener::on_restore_stalled)).
    pub stall_timeout: Duration,
    /// When restore makes what it applied durable before it ends (default
    /// [`DurabilityPoints::default`]: every 500,000 records or 5 s); `None` only at the end.
    /// The `durability` module of `restore` says why and what it costs.
    pub durability_points: Option<DurabilityPoints>,
    /// Optional per-record check (the typed store plugs its serdes in here).
    pub validator: Option<Arc<dyn RecordValidator>>,
    /// When set and raised, restore stops before its next batch with
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed); what it applied stays, with its position, so the next
    /// restore resumes there. A snapshot download under way stops within about 100 ms
    /// (the local store untouched, the partial download removed). The store manager raises it when a partition is revoked
    /// or lost mid-restore, so the revoke need not wait for the whole restore.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Where snapshots of the stores are kept. When set, a store whose newest usable
    /// snapshot is ahead of its local position is replaced by that snapshot before the
    /// changelog's tail is replayed ([`catch_up`](super::catch_up) with a
    /// [`StoreHome`](super::StoreHome)); every snapshot passed over is reported.
    pub snapshots: Option<Arc<dyn SnapshotStore>>,
    /// Replay only the offsets below this one when it is below the changelog's end (default
    /// `None`: up to the end captured at start). A replay that checks a store against its
    /// changelog stops at the store's position this way. [`restore`](super::restore) honours
    /// it; a snapshot may lie past it, so leave [`snapshots`](Self::snapshots) unset with it.
    pub until: Option<Offset>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            batch_size: None,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            durability_points: Some(DurabilityPoints::default()),
            validator: None,
            cancel: None,
            snapshots: None,
            until: None,
        }
    }
}

impl RestoreOptions {
    /// Records per write into `store`: the configured batch size or the backend's own.
    pub fn batch_records(&self, store: &dyn KeyValueStore) -> usize {
        self.batch_size
            .unwrap_or_else(|| store.capability().restore_batch)
            .max(1)
    }

    /// Whether [`cancel`](Self::cancel) was raised.
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::SeqCst))
    }

    /// How far a cursor feeding `store` may read ahead.
    pub fn read_ahead(&self, store: &dyn KeyValueStore) -> ReadAhead {
        ReadAhead {
            chunk_records: self.batch_records(store),
            max_bytes: self.max_bytes_in_flight,
            headers: false,
        }
    }
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("batch_size", &self.batch_size)
            .field("max_bytes_in_flight", &self.max_bytes_in_flight)
            .field("stall_timeout", &self.stall_timeout)
            .field("durability_points", &self.durability_points)
            .field("validator", &self.validator.is_some())
            .field("cancelled", &self.cancelled())
            .field(
                "snapshots",
                &self
                    .snapshots
                    .as_ref()
                    .map(|snapshots| snapshots.location()),
            )
            .field("until", &self.until)
            .finish()
    }
}
