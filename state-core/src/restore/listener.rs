//! Progress reports from restore, like Kafka Streams' `StateRestoreListener`.

use std::time::Duration;

use super::SnapshotRestore;
use crate::{Offset, Partition, SnapshotFallback};

/// Why restore threw local state away and started from the beginning of the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WipeReason {
    /// The store's position lies below the changelog's log start (retention or
    /// delete-records removed records it never applied).
    PositionBelowLogStart {
        /// The store's last applied offset.
        applied: Offset,
        /// The changelog's first offset.
        log_start: Offset,
    },
    /// The store's position lies at or past the changelog's end (the topic was deleted and
    /// recreated, or the store belongs to another changelog).
    PositionAboveLogEnd {
        /// The store's last applied offset.
        applied: Offset,
        /// The changelog's end offset.
        log_end: Offset,
    },
    /// The store holds data but no position, so what it applied is unknown.
    DataWithoutPosition,
    /// The local files could not be opened; the error says why.
    CorruptLocalState(String),
    /// The changelog rejected the store's position as out of range when read.
    OutOfRangeOnRead(String),
}

impl std::fmt::Display for WipeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WipeReason::PositionBelowLogStart { applied, log_start } => write!(
                f,
                "store position {applied} is below the changelog log start {log_start}"
            ),
            WipeReason::PositionAboveLogEnd { applied, log_end } => write!(
                f,
                "store position {applied} is at or past the changelog end {log_end} (topic recreated?)"
            ),
            WipeReason::DataWithoutPosition => {
                f.write_str("store holds data but no changelog position")
            }
            WipeReason::CorruptLocalState(why) => write!(f, "local state is damaged: {why}"),
            WipeReason::OutOfRangeOnRead(why) => write!(f, "changelog read out of range: {why}"),
        }
    }
}

/// Where one restore happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreTarget<'a> {
    /// The changelog topic.
    pub topic: &'a str,
    /// The store name.
    pub store: &'a str,
    /// The changelog partition.
    pub partition: Partition,
}

/// Receives restore progress. Every method has an empty default.
pub trait RestoreListener: Send + Sync {
    /// Restore of `target` starts at `start_offset` and runs to `end_offset` (exclusive).
    fn on_restore_start(
        &self,
        target: RestoreTarget<'_>,
        start_offset: Offset,
        end_offset: Offset,
    ) {
        let _ = (target, start_offset, end_offset);
    }

    /// A batch of `num_restored` records up to `batch_end_offset` was applied.
    fn on_batch_restored(
        &self,
        target: RestoreTarget<'_>,
        batch_end_offset: Offset,
        num_restored: u64,
    ) {
        let _ = (target, batch_end_offset, num_restored);
    }

    /// Restore has read nothing for `stalled_for` while waiting at offset `at`, short of its
    /// end: the changelog's broker is unreachable or the partition has no leader (the
    /// client reconnects by itself, so nothing fails yet). Restore gives up with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) once `stalled_for` passes `limit`
    /// ([`RestoreOptions::stall_timeout`](super::RestoreOptions::stall_timeout)). Called
    /// first after [`STALL_NOTICE_AFTER`](super::STALL_NOTICE_AFTER), then every
    /// [`STALL_NOTICE_EVERY`](super::STALL_NOTICE_EVERY) while the stall lasts; the next
    /// [`on_batch_restored`](Self::on_batch_restored) shows it ended.
    fn on_restore_stalled(
        &self,
        target: RestoreTarget<'_>,
        at: Offset,
        stalled_for: Duration,
        limit: Duration,
    ) {
        let _ = (target, at, stalled_for, limit);
    }

    /// Restore finished after applying `total_restored` records.
    fn on_restore_end(&self, target: RestoreTarget<'_>, total_restored: u64) {
        let _ = (target, total_restored);
    }

    /// Restore stopped early (an error or a cancel) after `total_restored` records; the
    /// store keeps what it applied, with a matching position, and the next restore
    /// resumes there.
    fn on_restore_suspended(&self, target: RestoreTarget<'_>, total_restored: u64) {
        let _ = (target, total_restored);
    }

    /// Local state was wiped for `reason` and restore starts from the log start.
    fn on_store_wiped(&self, target: RestoreTarget<'_>, reason: &WipeReason) {
        let _ = (target, reason);
    }

    /// The store was replaced by a snapshot; restore replays the changelog after its
    /// position.
    fn on_snapshot_restored(&self, target: RestoreTarget<'_>, restored: &SnapshotRestore) {
        let _ = (target, restored);
    }

    /// Snapshots are configured but restore passes over one (or has none) for `reason`:
    /// it tries an older one or replays the changelog.
    fn on_snapshot_fallback(&self, target: RestoreTarget<'_>, reason: &SnapshotFallback) {
        let _ = (target, reason);
    }
}

/// A listener that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopRestoreListener;

impl RestoreListener for NoopRestoreListener {}
