//! The restore driver: brings a store up to the end of its changelog.

mod apply;
mod cancel;
mod durability;
mod from_snapshot;
mod listener;
mod open;
mod options;
mod progress;
mod stall;

use std::time::{Duration, Instant};

pub(crate) use apply::apply_chunk;

pub use durability::{DEFAULT_DURABLE_EVERY, DEFAULT_DURABLE_EVERY_RECORDS, DurabilityPoints};
pub use from_snapshot::{SnapshotRestore, StoreHome};
pub use listener::{NoopRestoreListener, RestoreListener, RestoreTarget, WipeReason};
pub use open::open_or_rebuild;
pub use options::{DEFAULT_MAX_BYTES_IN_FLIGHT, RecordValidator, RestoreOptions, check_record};
pub use progress::{FanOutRestoreListener, PartitionProgress, RestorePhase, RestoreProgress};
pub use stall::{DEFAULT_STALL_TIMEOUT, STALL_NOTICE_AFTER, STALL_NOTICE_EVERY};

use durability::DurabilityClock;
use stall::StallWatch;
use tracing::Instrument;

use crate::{
    ChangelogReader, Error, ErrorKind, KeyValueStore, LogOffsets, Offset, Partition, Result,
};

/// What one restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    /// Changelog records applied.
    pub restored: u64,
    /// The first offset read.
    pub from: Offset,
    /// The end offset captured at start (exclusive).
    pub end: Offset,
    /// Set when local state was wiped first.
    pub wiped: Option<WipeReason>,
    /// Wall time spent.
    pub elapsed: Duration,
    /// Set when the store was replaced by a snapshot before the tail was replayed.
    pub snapshot: Option<SnapshotRestore>,
}

/// The one restore path every store takes (the builder, the store manager's assignments
/// and standbys, the command line): brings a store just opened (with why opening wiped
/// it, if it did, from [`open_or_rebuild`]) up to the end of `partition` of `reader`'s
/// changelog. With [`RestoreOptions::snapshots`] and the store's `home`, a store behind
/// its newest usable snapshot is first replaced by it, so only the tail is replayed; then
/// [`restore`]. Returns the store to use from now on and what was restored; the summary
/// reports the opening's wipe when restore itself wiped nothing.
pub async fn catch_up(
    (store, rebuilt): (std::sync::Arc<dyn KeyValueStore>, Option<WipeReason>),
    home: Option<StoreHome<'_>>,
    reader: &dyn ChangelogReader,
    partition: Partition,
    options: &RestoreOptions,
    listener: &dyn RestoreListener,
) -> Result<(std::sync::Arc<dyn KeyValueStore>, RestoreSummary)> {
    let started = Instant::now();
    let (store, snapshot) = match home {
        Some(home) => {
            start_from_snapshot(store, home, reader, partition, options, listener).await?
        }
        None => (store, None),
    };
    let mut summary = restore(store.as_ref(), reader, partition, options, listener).await?;
    if summary.wiped.is_none() {
        summary.wiped = rebuilt;
    }
    if snapshot.is_some() {
        summary.snapshot = snapshot;
        summary.elapsed = started.elapsed();
    }
    Ok((store, summary))
}

/// The snapshot step of [`catch_up`] alone: with [`RestoreOptions::snapshots`], replaces
/// `store` (whose only handle the caller gives up) by its newest usable snapshot when that
/// is ahead of it; returns the store to go on with. For a standby, which then tails the
/// changelog from the snapshot's position.
pub(crate) async fn start_from_snapshot(
    store: std::sync::Arc<dyn KeyValueStore>,
    home: StoreHome<'_>,
    reader: &dyn ChangelogReader,
    partition: Partition,
    options: &RestoreOptions,
    listener: &dyn RestoreListener,
) -> Result<(std::sync::Arc<dyn KeyValueStore>, Option<SnapshotRestore>)> {
    match &options.snapshots {
        Some(snapshots) => {
            from_snapshot::replace_from_snapshot(
                store,
                snapshots.as_ref(),
                home,
                reader,
                partition,
                options.cancel.as_ref(),
                listener,
            )
            .await
        }
        None => Ok((store, None)),
    }
}

/// Brings `store` up to the end of `partition` of `reader`'s changelog, as captured when
/// restore starts, starting after the store's own position.
///
/// A position below the log start or at/after the log end, or data without a position,
/// wipes the store and restores from the log start — reported to `listener` and logged,
/// never silent. Each batch is applied together with its position, so a restore that is
/// interrupted (crash, error) resumes where it stopped and never applies a record twice.
/// What it applied is made durable at [`RestoreOptions::durability_points`] and whenever
/// it ends, by an error or a [`cancel`](RestoreOptions::cancel) too; a changelog that
/// yields nothing is reported to `listener` within [`STALL_NOTICE_AFTER`] and fails the
/// restore after [`RestoreOptions::stall_timeout`].
pub async fn restore(
    store: &dyn KeyValueStore,
    reader: &dyn ChangelogReader,
    partition: Partition,
    options: &RestoreOptions,
    listener: &dyn RestoreListener,
) -> Result<RestoreSummary> {
    let started = Instant::now();
    let target = RestoreTarget {
        topic: reader.topic(),
        store: store.name(),
        partition,
    };
    let offsets = reader.offsets(partition).await?;
    let mut wiped = check_position(store, partition, offsets)?;
    if let Some(reason) = &wiped {
        wipe(store, target, reason, listener)?;
    }
    let mut from = store.position()?.next_offset(partition).max(offsets.start);
    let end = options
        .until
        .map_or(offsets.end, |until| until.min(offsets.end));
    if from >= end {
        return Ok(RestoreSummary {
            restored: 0,
            from,
            end,
            wiped,
            elapsed: started.elapsed(),
            snapshot: None,
        });
    }
    listener.on_restore_start(target, from, end);
    let metrics = crate::metrics::RestoreMetrics::start(target, from, end);
    let span = tracing::info_span!(
        "restore",
        store = target.store,
        topic = target.topic,
        partition,
        from,
        to = end,
        records = tracing::field::Empty,
    );
    store.set_bulk_loading(true)?;
    let mut restored = 0;
    let batch_records = options.batch_records(store);
    let outcome = async {
        let read_ahead = options.read_ahead(store);
        let mut cursor = match reader.open_with(partition, from, read_ahead).await {
            Err(err) if err.kind() == ErrorKind::OutOfRange && wiped.is_none() => {
                let reason = WipeReason::OutOfRangeOnRead(err.to_string());
                wipe(store, target, &reason, listener)?;
                wiped = Some(reason);
                from = reader.offsets(partition).await?.start;
                reader.open_with(partition, from, read_ahead).await?
            }
            other => other?,
        };
        let mut stall = StallWatch::start(options.stall_timeout);
        let mut durability = DurabilityClock::start(options.durability_points);
        while cursor.position() < end {
            if options.cancelled() {
                return Err(Error::new(
                    ErrorKind::Closed,
                    format!(
                        "restore of store {} cancelled at offset {} of {end}",
                        target.store,
                        cursor.position()
                    ),
                ));
            }
            let before = cursor.position();
            let mut chunk = cursor.next_chunk(batch_records).await?;
            let reached = cursor.position().min(end);
            if reached <= before && chunk.is_empty() {
                stall.read_nothing(target, before, end, listener)?;
                continue;
            }
            stall.progressed();
            chunk.truncate_at(end);
            let applied = apply_chunk(store, &chunk, reached, target, options)?;
            cursor.recycle(chunk);
            restored += applied;
            listener.on_batch_restored(target, reached - 1, applied);
            metrics.batch(applied, reached);
            if durability.applied(store, applied)? {
                log::debug!(
                    "store {} partition {partition}: durable up to offset {}",
                    target.store,
                    reached - 1
                );
            }
        }
        Ok(())
    }
    .instrument(span.clone())
    .await;
    span.record("records", restored);
    match outcome.and_then(|()| store.set_bulk_loading(false)) {
        Ok(()) => {
            listener.on_restore_end(target, restored);
            metrics.end(store, true);
            log::info!(
                "restored {restored} records into store {} from {} partition {partition} (offsets {from}..{end}) in {:?}",
                target.store,
                target.topic,
                started.elapsed()
            );
            Ok(RestoreSummary {
                restored,
                from,
                end,
                wiped,
                elapsed: started.elapsed(),
                snapshot: None,
            })
        }
        Err(err) => {
            // Leave bulk-loading mode so what was applied is durable; the position
            // matches it, so the next restore resumes here.
            if let Err(flush_err) = store.set_bulk_loading(false) {
                log::warn!(
                    "ending bulk loading of store {} failed: {flush_err}",
                    target.store
                );
            }
            listener.on_restore_suspended(target, restored);
            metrics.end(store, false);
            Err(err.context(format!(
                "restoring store {} from {} partition {partition}",
                target.store, target.topic
            )))
        }
    }
}

/// Whether the store's position fits the changelog's current extent. A position past
/// the readable end but inside the log (read-committed, behind another producer's open
/// transaction, or before the markers of a commit landed) is kept: the store holds only
/// committed records, and restore has nothing to add.
fn check_position(
    store: &dyn KeyValueStore,
    partition: Partition,
    offsets: LogOffsets,
) -> Result<Option<WipeReason>> {
    let LogOffsets {
        start: log_start,
        log_end,
        ..
    } = offsets;
    Ok(match store.position()?.applied(partition) {
        Some(applied) if applied + 1 < log_start => {
            Some(WipeReason::PositionBelowLogStart { applied, log_start })
        }
        Some(applied) if applied >= log_end => {
            Some(WipeReason::PositionAboveLogEnd { applied, log_end })
        }
        Some(_) => None,
        None if store.all()?.next().is_some() => Some(WipeReason::DataWithoutPosition),
        None => None,
    })
}

fn wipe(
    store: &dyn KeyValueStore,
    target: RestoreTarget<'_>,
    reason: &WipeReason,
    listener: &dyn RestoreListener,
) -> Result<()> {
    log::warn!(
        "wiping store {} (changelog {} partition {}) and restoring from the log start: {reason}",
        target.store,
        target.topic,
        target.partition
    );
    store.wipe()?;
    listener.on_store_wiped(target, reason);
    Ok(())
}
