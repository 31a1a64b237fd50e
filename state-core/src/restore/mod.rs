//! The restore driver: brings a store up to the end of its changelog.

mod listener;
mod open;
mod progress;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use listener::{NoopRestoreListener, RestoreListener, RestoreTarget, WipeReason};
pub use open::open_or_rebuild;
pub use progress::{FanOutRestoreListener, PartitionProgress, RestorePhase, RestoreProgress};

use crate::{
    ChangelogChunk, ChangelogReader, Error, ErrorKind, KeyValueStore, LogOffsets, Offset,
    Partition, Position, ReadAhead, Result,
};

/// Checks each changelog record before restore applies it, so bytes no serde can read are
/// reported (with topic, partition and offset) instead of landing in the store.
pub trait RecordValidator: Send + Sync {
    /// `Err` rejects the record; the message should say what is wrong with it.
    fn validate(&self, key: &[u8], value: Option<&[u8]>) -> Result<()>;
}

/// Default for [`RestoreOptions::max_bytes_in_flight`]: 32 MiB.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 32 << 20;

/// How restore runs.
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
    /// before it fails with [`ErrorKind::Timeout`] (Kafka Streams' `task.timeout.ms`,
    /// 5 minutes).
    pub stall_timeout: Duration,
    /// Optional per-record check (the typed store plugs its serdes in here).
    pub validator: Option<Arc<dyn RecordValidator>>,
    /// When set and raised, restore stops before its next batch with
    /// [`ErrorKind::Closed`]; what it applied stays, with its position, so the next
    /// restore resumes there. The store manager raises it when a partition is revoked
    /// or lost mid-restore, so the revoke need not wait for the whole restore.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            batch_size: None,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            stall_timeout: Duration::from_secs(300),
            validator: None,
            cancel: None,
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
        }
    }
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("batch_size", &self.batch_size)
            .field("max_bytes_in_flight", &self.max_bytes_in_flight)
            .field("stall_timeout", &self.stall_timeout)
            .field("validator", &self.validator.is_some())
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

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
}

/// Brings `store` up to the end of `partition` of `reader`'s changelog, as captured when
/// restore starts, starting after the store's own position.
///
/// A position below the log start or at/after the log end, or data without a position,
/// wipes the store and restores from the log start — reported to `listener` and logged,
/// never silent. Each batch is applied together with its position, so a restore that is
/// interrupted (crash, error) resumes where it stopped and never applies a record twice.
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
    let end = offsets.end;
    if from >= end {
        return Ok(RestoreSummary {
            restored: 0,
            from,
            end,
            wiped,
            elapsed: started.elapsed(),
        });
    }
    listener.on_restore_start(target, from, end);
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
        let mut last_progress = Instant::now();
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
                if last_progress.elapsed() > options.stall_timeout {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "restore of store {} from {} partition {partition} made no progress for {:?} at offset {before} (end {end})",
                            target.store, target.topic, options.stall_timeout
                        ),
                    ));
                }
                continue;
            }
            last_progress = Instant::now();
            chunk.truncate_at(end);
            validate(&chunk, target, options)?;
            store.write_with_position(chunk.batch(), &Position::of(partition, reached - 1))?;
            let applied = chunk.len() as u64;
            cursor.recycle(chunk);
            restored += applied;
            listener.on_batch_restored(target, reached - 1, applied);
        }
        Ok(())
    }
    .await;
    match outcome.and_then(|()| store.set_bulk_loading(false)) {
        Ok(()) => {
            listener.on_restore_end(target, restored);
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

/// Checks every record of `chunk` with the options' validator, naming the first one it
/// rejects by topic, partition and offset.
pub(crate) fn validate(
    chunk: &ChangelogChunk,
    target: RestoreTarget<'_>,
    options: &RestoreOptions,
) -> Result<()> {
    let Some(validator) = &options.validator else {
        return Ok(());
    };
    for (op, &offset) in chunk.batch().iter().zip(chunk.offsets()) {
        validator.validate(op.key(), op.value()).map_err(|err| {
            Error::corruption(format!(
                "undecodable changelog record at topic {} partition {} offset {offset}: {}",
                target.topic,
                chunk.partition(),
                err.message()
            ))
            .with_source(err)
        })?;
    }
    Ok(())
}
