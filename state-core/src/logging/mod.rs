//! The logging layer: a store whose every change also goes to a changelog.
//!
//! Writes between commits live in a write buffer that reads see (read-your-writes) and are
//! appended to the changelog as they happen (put = value, delete = tombstone). A commit
//! makes the changelog durable first — one [`ChangelogSink::commit`], a flush or a
//! transaction, the sink decides — and only then applies the buffer to the store together
//! with the new changelog position, in one atomic store write. A crash before that leaves
//! the store at its previous position, and restore brings it forward from the changelog.
//! Every 10,000 committed records or 30 s a commit also flushes the store, so an engine
//! that keeps writes in memory (RocksDB without its write-ahead log) loses at most that
//! much to a crash (see `flushes`).
//!
//! Several stores may log through one sink (the store manager gives every store of an
//! instance the same one); they then commit together, with the input offsets, through
//! [`commit_together`]: one sink commit, then each store's write (see `commit`). This
//! layer never asks which guarantee the sink keeps: after a failed commit the sink's
//! [`acknowledged`](ChangelogSink::acknowledged) offsets say what the changelog holds —
//! a delivered prefix at-least-once, the last commit after an aborted transaction — and
//! the next commit appends again exactly the rest.

mod buffer;
mod commit;
mod flushes;
mod merge;
mod unlogged;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use buffer::WriteBuffer;
pub(crate) use commit::abort_together;
pub use commit::{JointCommit, commit_together};
use flushes::FlushSchedule;
use merge::MergeIter;
pub(crate) use unlogged::UnloggedStore;

use crate::{
    ChangelogPositions, ChangelogRecord, ChangelogSink, Error, KeyRange, KeyValueStore, KvIter,
    Offset, Partition, Position, Result, SourceOffsets, WriteBatch, WriteOp,
};

/// What a successful commit did to one store.
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
    topic: String,
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
    /// When a commit also flushes the store.
    flushes: FlushSchedule,
}

impl LoggedStore {
    /// Wraps `store`, logging its changes to `partition` of changelog `topic` through
    /// `sink`. The store should already be restored up to the changelog's end. One
    /// logged store per changelog partition and sink: the sink's acknowledged offsets of
    /// that partition are this store's alone.
    pub fn new(
        store: Arc<dyn KeyValueStore>,
        sink: Arc<dyn ChangelogSink>,
        topic: impl Into<String>,
        partition: Partition,
    ) -> Self {
        let topic = topic.into();
        // Restore leaves the store's position at the changelog's last offset, so the next
        // record this store appends lands right after it. A fresh sink has acknowledged
        // nothing yet, so the sink alone cannot say where this interval starts.
        let interval_start_ack = store
            .position()
            .ok()
            .and_then(|position| position.applied(partition))
            .max(sink.acknowledged().applied(&topic, partition));
        Self {
            store,
            sink,
            topic,
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

    /// The changelog topic this store logs to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The changelog partition this store logs to.
    pub fn partition(&self) -> Partition {
        self.partition
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
    /// them to the store atomically with the new changelog position — for a store that
    /// has its sink to itself (built alone by
    /// [`StoreBuilder::build`](crate::StoreBuilder::build)). Stores sharing a sink commit
    /// together with [`commit_together`], as the store manager does: a commit of one of
    /// them alone would commit the others' records without their input offsets.
    ///
    /// On error nothing is applied to the store and the buffered writes are kept (reads
    /// still see them); the next `commit` appends again what the changelog lacks, so
    /// nothing committed is lost and replay stays a prefix of the operations.
    pub async fn commit(&mut self) -> Result<CommitSummary> {
        if self.is_clean() {
            return Ok(CommitSummary {
                records: 0,
                position: self.store.position()?,
            });
        }
        let sink = self.sink.clone();
        let mut joint = commit_together(sink.as_ref(), &mut [self], &SourceOffsets::none()).await?;
        joint.stores.pop().unwrap_or_else(|| {
            Err(Error::internal(
                "a joint commit of one store reported no store",
            ))
        })
    }

    /// Whether nothing awaits a commit: no buffered write, no resend.
    fn is_clean(&mut self) -> bool {
        let state = self.state_mut();
        state.buffer.is_empty() && state.resend_from.is_none()
    }

    /// First step of a commit: appends again what a failed commit left out of the
    /// changelog, so the sink's commit covers the whole interval.
    fn resend(&mut self) -> Result<()> {
        let (sink, topic, partition) = (self.sink.clone(), self.topic.clone(), self.partition);
        let state = self.state_mut();
        if let Some(from) = state.resend_from {
            for record in &state.buffer.records()[from..] {
                sink.append(&topic, partition, record)?;
            }
            state.resend_from = None;
        }
        Ok(())
    }

    /// After a commit or abort that did not make the interval durable: notes from the
    /// sink's acknowledged offsets where the changelog's copy of the interval stops, so
    /// the next commit appends the rest again.
    fn rebase(&mut self) {
        let acknowledged = self
            .sink
            .acknowledged()
            .applied(&self.topic, self.partition);
        let state = self.state_mut();
        if !state.buffer.is_empty() {
            state.resend_from = Some(delivered_prefix(state, acknowledged));
        }
    }

    /// Last step of a commit whose sink side succeeded: writes the interval to the store
    /// at the position `positions` acknowledged for this store's partition.
    fn apply(&mut self, positions: &ChangelogPositions) -> Result<CommitSummary> {
        let (topic, partition) = (self.topic.clone(), self.partition);
        let store = self.store.clone();
        let state = self.state_mut();
        if state.buffer.is_empty() {
            return Ok(CommitSummary {
                records: 0,
                position: store.position()?,
            });
        }
        let offset = positions.applied(&topic, partition).ok_or_else(|| {
            Error::internal(format!(
                "the changelog sink acknowledged no offset for topic {topic} partition \
                 {partition} after {} appends",
                state.buffer.len()
            ))
        })?;
        let position = Position::of(partition, offset);
        store
            .write_with_position(&state.buffer.to_batch(), &position)
            .map_err(|err| {
                err.context(format!(
                    "writing the commit of store {} (changelog {topic} partition {partition}, \
                     durable there)",
                    store.name()
                ))
            })?;
        let records = state.buffer.len();
        crate::metrics::store_committed(store.as_ref(), partition, records);
        state.buffer.clear();
        state.interval_start_ack = Some(offset);
        let now = Instant::now();
        if state.flushes.committed(records, now) {
            // The commit stands either way: an engine that cannot flush now is asked
            // again at the next commit, and meanwhile a crash replays a longer tail.
            match store.flush() {
                Ok(()) => state.flushes.flushed(now),
                Err(err) => log::warn!(
                    "flushing store {} after a commit (tried again at the next one): {err}",
                    store.name()
                ),
            }
        }
        Ok(CommitSummary { records, position })
    }

    fn state_mut(&mut self) -> &mut LogState {
        // A panic while holding the lock cannot leave the buffer half-updated in a way
        // that matters more than losing the process, so keep serving.
        self.state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn log(&self, state: &mut LogState, record: ChangelogRecord) -> Result<()> {
        if state.resend_from.is_none() {
            self.sink.append(&self.topic, self.partition, &record)?;
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

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
