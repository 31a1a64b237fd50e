//! The logging layer: a store whose every change also goes to a changelog.
//!
//! Writes between commits live in a write buffer that reads see (read-your-writes) and are
//! appended to the changelog as they happen (put = value, delete = tombstone). `commit`
//! makes the changelog durable first — a flush (at-least-once) or a transaction commit
//! (exactly-once) — and only then applies the buffer to the store together with the new
//! changelog position, in one atomic store write. A crash before that leaves the store at
//! its previous position, and restore brings it forward from the changelog. Every 10,000
//! committed records or 30 s a commit also flushes the store, so an engine that keeps
//! writes in memory (RocksDB without its write-ahead log) loses at most that much to a
//! crash (see `flushes`).

mod buffer;
mod flushes;
mod merge;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use buffer::WriteBuffer;
use flushes::FlushSchedule;
use merge::MergeIter;

use crate::{
    ChangelogRecord, ChangelogSink, Error, KeyRange, KeyValueStore, KvIter, Offset, Partition,
    Position, ProcessingGuarantee, Result, SourceOffsets, WriteBatch, WriteOp,
};

/// What a successful [`LoggedStore::commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    /// Changelog records made durable by this commit.
    pub records: usize,
    /// The store's changelog position after the commit.
    pub position: Position,
}

/// A [`KeyValueStore`] wrapped with changelog logging for one changelog partition.
///
/// Reads see uncommitted writes. [`commit`](Self::commit) takes `&mut self`, so no write
/// can slip between the changelog flush and the store update it records.
pub struct LoggedStore {
    store: Arc<dyn KeyValueStore>,
    sink: Arc<dyn ChangelogSink>,
    partition: Partition,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    buffer: WriteBuffer,
    /// The changelog offset just before this interval's first record.
    interval_start_ack: Option<Offset>,
    /// After a failed commit: the first buffered record the changelog may lack.
    resend_from: Option<usize>,
    /// Input offsets to commit in the next transaction (exactly-once).
    source: Option<SourceOffsets>,
    /// When a commit also flushes the store.
    flushes: FlushSchedule,
}

impl LoggedStore {
    /// Wraps `store`, logging its changes to `partition` of `sink`'s topic. The store
    /// should already be restored up to the changelog's end.
    pub fn new(
        store: Arc<dyn KeyValueStore>,
        sink: Arc<dyn ChangelogSink>,
        partition: Partition,
    ) -> Self {
        // Restore leaves the store's position at the changelog's last offset, so the next
        // record this store appends lands right after it. A fresh sink has acknowledged
        // nothing yet, so the sink alone cannot say where this interval starts.
        let interval_start_ack = store
            .position()
            .ok()
            .and_then(|position| position.applied(partition))
            .max(sink.acknowledged().applied(partition));
        Self {
            store,
            sink,
            partition,
            state: Mutex::new(LogState {
                interval_start_ack,
                ..LogState::default()
            }),
        }
    }

    /// The wrapped store (committed state only).
    pub fn inner(&self) -> &Arc<dyn KeyValueStore> {
        &self.store
    }

    /// The changelog sink.
    pub fn sink(&self) -> &Arc<dyn ChangelogSink> {
        &self.sink
    }

    /// The changelog partition this store logs to.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Input offsets the next commit sends into its transaction (exactly-once), replacing
    /// any set before: the input position then advances with this store's changes or
    /// not at all. At-least-once ignores them — the caller commits its input offsets
    /// after [`commit`](Self::commit) returns.
    pub fn set_source_offsets(&self, source: SourceOffsets) {
        self.lock().source = Some(source);
    }

    /// Number of changelog records appended since the last successful commit.
    pub fn uncommitted(&self) -> usize {
        self.lock().buffer.len()
    }

    /// Reads `key`, seeing uncommitted writes.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(pending) = self.lock().buffer.get(key) {
            return Ok(pending.map(<[u8]>::to_vec));
        }
        self.store.get(key)
    }

    /// Sets `key` to `value` and appends the change to the changelog.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let mut state = self.lock();
        self.log(&mut state, ChangelogRecord::put(key, value, now_millis()))
    }

    /// Sets `key` only if it is absent (seeing uncommitted writes); returns the existing
    /// value otherwise, and then logs nothing.
    pub fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut state = self.lock();
        let existing = match state.buffer.get(key) {
            Some(pending) => pending.map(<[u8]>::to_vec),
            None => self.store.get(key)?,
        };
        if existing.is_none() {
            self.log(&mut state, ChangelogRecord::put(key, value, now_millis()))?;
        }
        Ok(existing)
    }

    /// Deletes `key`, appends a tombstone, and returns the value it had. Deleting an
    /// absent key still logs a tombstone, as Kafka Streams does, so the changelog
    /// converges even if it held a value the store lost.
    pub fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut state = self.lock();
        let old = match state.buffer.get(key) {
            Some(pending) => pending.map(<[u8]>::to_vec),
            None => self.store.get(key)?,
        };
        self.log(&mut state, ChangelogRecord::tombstone(key, now_millis()))?;
        Ok(old)
    }

    /// Logs every operation of `batch`, in order. The batch becomes part of the current
    /// commit interval; the store applies it atomically at commit.
    pub fn write(&self, batch: &WriteBatch) -> Result<()> {
        let mut state = self.lock();
        let timestamp = now_millis();
        for op in batch.iter() {
            let record = match op {
                WriteOp::Put { key, value } => ChangelogRecord::put(key, value, timestamp),
                WriteOp::Delete { key } => ChangelogRecord::tombstone(key, timestamp),
            };
            self.log(&mut state, record)?;
        }
        Ok(())
    }

    /// Entries inside `range` in key order, seeing uncommitted writes.
    pub fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.merged(range, false)
    }

    /// Entries inside `range` in descending key order, seeing uncommitted writes.
    pub fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.merged(range, true)
    }

    /// Entries whose key starts with `prefix`, seeing uncommitted writes.
    pub fn prefix_scan(&self, prefix: &[u8]) -> Result<KvIter<'_>> {
        self.merged(&KeyRange::prefix(prefix), false)
    }

    /// Every entry in key order, seeing uncommitted writes.
    pub fn all(&self) -> Result<KvIter<'_>> {
        self.merged(&KeyRange::all(), false)
    }

    /// The committed store's estimate (uncommitted writes are not counted).
    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.store.approximate_num_entries()
    }

    /// Makes the changes since the last commit durable in the changelog, then applies
    /// them to the store atomically with the new changelog position.
    ///
    /// On error nothing is applied to the store and the buffered writes are kept (reads
    /// still see them); the next `commit` appends again what the changelog lacks — only
    /// the unacknowledged suffix at-least-once, the whole interval in a fresh transaction
    /// exactly-once (the failed one is aborted) — so nothing committed is lost and replay
    /// stays a prefix of the operations.
    pub async fn commit(&mut self) -> Result<CommitSummary> {
        let guarantee = self.sink.guarantee();
        let state = self.state.get_mut().map_err(|_| poisoned())?;
        let exactly_once = guarantee == ProcessingGuarantee::ExactlyOnce;
        if !exactly_once {
            state.source = None;
        }
        if state.buffer.is_empty() && state.source.is_none() {
            return Ok(CommitSummary {
                records: 0,
                position: self.store.position()?,
            });
        }
        if exactly_once && state.buffer.is_empty() && !self.sink.in_transaction() {
            // Input was consumed without changing this store: its offsets still need a
            // transaction to commit in.
            self.sink.begin_transaction()?;
        }
        if let Some(from) = state.resend_from {
            if guarantee == ProcessingGuarantee::ExactlyOnce && !self.sink.in_transaction() {
                self.sink.begin_transaction()?;
            }
            for record in &state.buffer.records()[from..] {
                self.sink.append(self.partition, record)?;
            }
            state.resend_from = None;
        }
        let flushed = match (guarantee, &state.source) {
            (ProcessingGuarantee::AtLeastOnce, _) => self.sink.flush().await,
            (ProcessingGuarantee::ExactlyOnce, None) => self.sink.commit_transaction().await,
            (ProcessingGuarantee::ExactlyOnce, Some(source)) => {
                match self.sink.send_source_offsets(source).await {
                    Ok(()) => self.sink.commit_transaction().await,
                    Err(err) => Err(err),
                }
            }
        };
        let acknowledged = match flushed {
            Ok(acknowledged) => acknowledged,
            Err(err) => {
                let resend_from = match guarantee {
                    ProcessingGuarantee::AtLeastOnce => {
                        delivered_prefix(state, self.sink.acknowledged().applied(self.partition))
                    }
                    ProcessingGuarantee::ExactlyOnce => {
                        if let Err(abort_err) = self.sink.abort_transaction().await {
                            log::warn!(
                                "aborting the failed changelog transaction on {} also failed: {abort_err}",
                                self.sink.topic()
                            );
                        }
                        0
                    }
                };
                state.resend_from = Some(resend_from);
                return Err(err.context(format!(
                    "commit of store {} to changelog {} partition {}",
                    self.store.name(),
                    self.sink.topic(),
                    self.partition
                )));
            }
        };
        state.source = None;
        if state.buffer.is_empty() {
            return Ok(CommitSummary {
                records: 0,
                position: self.store.position()?,
            });
        }
        let offset = acknowledged.applied(self.partition).ok_or_else(|| {
            Error::internal(format!(
                "changelog {} acknowledged no offset for partition {} after {} appends",
                self.sink.topic(),
                self.partition,
                state.buffer.len()
            ))
        })?;
        let position = Position::of(self.partition, offset);
        self.store
            .write_with_position(&state.buffer.to_batch(), &position)?;
        let records = state.buffer.len();
        state.buffer.clear();
        state.interval_start_ack = Some(offset);
        let now = Instant::now();
        if state.flushes.committed(records, now) {
            // The commit stands either way: an engine that cannot flush now is asked
            // again at the next commit, and meanwhile a crash replays a longer tail.
            match self.store.flush() {
                Ok(()) => state.flushes.flushed(now),
                Err(err) => log::warn!(
                    "flushing store {} after a commit (tried again at the next one): {err}",
                    self.store.name()
                ),
            }
        }
        Ok(CommitSummary { records, position })
    }

    fn log(&self, state: &mut LogState, record: ChangelogRecord) -> Result<()> {
        if state.resend_from.is_none() {
            if self.sink.guarantee() == ProcessingGuarantee::ExactlyOnce
                && !self.sink.in_transaction()
            {
                self.sink.begin_transaction()?;
            }
            self.sink.append(self.partition, &record)?;
        }
        // While a failed commit awaits its retry, new records join the buffer and are
        // appended behind the resent ones at the next commit, keeping changelog order.
        state.buffer.record(record);
        Ok(())
    }

    fn merged(&self, range: &KeyRange, descending: bool) -> Result<KvIter<'_>> {
        let pending = self.lock().buffer.scan(range, descending);
        let committed = if descending {
            self.store.reverse_range(range)?
        } else {
            self.store.range(range)?
        };
        Ok(Box::new(MergeIter::new(pending, committed, descending)))
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the buffer half-updated in a way
        // that matters more than losing the process, so keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How many buffered records the changelog already holds after a failed at-least-once
/// flush: the sink delivers a partition's records in order, so the acknowledged ones are
/// a prefix whose length is the distance the acknowledged offset moved. When that cannot
/// be trusted, resend everything: duplicates replay to the same state.
fn delivered_prefix(state: &LogState, acknowledged_now: Option<Offset>) -> usize {
    let before = state.interval_start_ack.unwrap_or(-1);
    let now = acknowledged_now.unwrap_or(-1);
    match usize::try_from(now - before) {
        Ok(delivered) if delivered <= state.buffer.len() => delivered,
        _ => {
            log::warn!(
                "acknowledged offset moved from {before} to {now} for {} buffered records; resending all",
                state.buffer.len()
            );
            0
        }
    }
}

fn poisoned() -> Error {
    Error::internal("logged store state lock poisoned by an earlier panic")
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
