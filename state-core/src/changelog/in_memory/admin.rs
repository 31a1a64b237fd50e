//! Admin operations, inspection and fault injection on an `InMemoryChangelog`.

use super::InMemoryChangelog;
use super::log::EntryKind;
use super::state::{Topic, TxnStatus, lock};
use crate::changelog::ChangelogRecord;
use crate::{Error, ErrorKind, Offset, Partition, Result};

/// Whether a record in the log is part of a transaction, and how that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordStatus {
    /// Written outside any transaction (at-least-once); always visible.
    NonTransactional,
    /// In a transaction that is still open: invisible to read-committed readers and
    /// holding the last stable offset back.
    Open,
    /// In a committed transaction.
    Committed,
    /// In an aborted transaction: never visible to read-committed readers.
    Aborted,
}

impl RecordStatus {
    /// Whether a read-committed reader returns the record (once it is below the last
    /// stable offset).
    pub fn is_visible_committed(self) -> bool {
        matches!(
            self,
            RecordStatus::NonTransactional | RecordStatus::Committed
        )
    }
}

/// A data record in the log with its offset and transaction status, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    /// Its offset in the partition.
    pub offset: Offset,
    /// The record.
    pub record: ChangelogRecord,
    /// Its transaction status.
    pub status: RecordStatus,
}

/// A transaction marker (control record) in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// Its offset in the partition.
    pub offset: Offset,
    /// `true` for COMMIT, `false` for ABORT.
    pub commit: bool,
}

impl InMemoryChangelog {
    /// Runs `f` on `topic` under the lock, or fails with `NotFound`.
    fn with_topic<T>(&self, topic: &str, f: impl FnOnce(&mut Topic) -> Result<T>) -> Result<T> {
        f(lock(&self.shared).topic_mut(topic)?)
    }

    /// The log end offset of a partition (the offset the next entry gets), counting
    /// markers and records of open transactions.
    pub fn end_offset(&self, topic: &str, partition: Partition) -> Result<Offset> {
        self.with_topic(topic, |t| Ok(t.partition(partition)?.end()))
    }

    /// The log start offset of a partition (0 until [`truncate_before`](Self::truncate_before)
    /// raises it).
    pub fn log_start(&self, topic: &str, partition: Partition) -> Result<Offset> {
        self.with_topic(topic, |t| Ok(t.partition(partition)?.start()))
    }

    /// The last stable offset of a partition: the first offset of its oldest open
    /// transaction, else the log end. Read-committed readers end here.
    pub fn last_stable_offset(&self, topic: &str, partition: Partition) -> Result<Offset> {
        self.with_topic(topic, |t| Ok(t.partition(partition)?.last_stable()))
    }

    /// A snapshot of the data records still in a partition (markers left out), in offset
    /// order, with their transaction status.
    pub fn records(&self, topic: &str, partition: Partition) -> Result<Vec<LoggedRecord>> {
        let state = lock(&self.shared);
        let log = state.topic(topic)?.partition(partition)?;
        Ok(log
            .entries()
            .iter()
            .filter_map(|entry| match &entry.kind {
                EntryKind::Data { record, txn } => Some(LoggedRecord {
                    offset: entry.offset,
                    record: record.clone(),
                    status: match txn.map(|txn| state.txn_status(txn)) {
                        None => RecordStatus::NonTransactional,
                        Some(TxnStatus::Open) => RecordStatus::Open,
                        Some(TxnStatus::Committed) => RecordStatus::Committed,
                        Some(TxnStatus::Aborted) => RecordStatus::Aborted,
                    },
                }),
                EntryKind::Marker { .. } => None,
            })
            .collect())
    }

    /// The transaction markers still in a partition, in offset order.
    pub fn markers(&self, topic: &str, partition: Partition) -> Result<Vec<TxnMarker>> {
        self.with_topic(topic, |t| {
            Ok(t.partition(partition)?
                .entries()
                .iter()
                .filter_map(|entry| match entry.kind {
                    EntryKind::Marker { commit } => Some(TxnMarker {
                        offset: entry.offset,
                        commit,
                    }),
                    EntryKind::Data { .. } => None,
                })
                .collect())
        })
    }

    /// Kafka's delete-records: removes every entry below `offset` and raises the log
    /// start to it (a no-op when the start is already there). Readers positioned below
    /// the new start get [`ErrorKind::OutOfRange`]. An `offset` past the log end is an
    /// `OutOfRange` error, as in Kafka.
    pub fn truncate_before(&self, topic: &str, partition: Partition, offset: Offset) -> Result<()> {
        self.with_topic(topic, |t| {
            let log = t.partition_mut(partition)?;
            if offset > log.end() {
                return Err(Error::new(
                    ErrorKind::OutOfRange,
                    format!(
                        "cannot delete records of topic {topic} partition {partition} before \
                         offset {offset}: the log ends at {}",
                        log.end()
                    ),
                ));
            }
            log.truncate_before(offset);
            Ok(())
        })
    }

    /// Runs the log cleaner on a partition, as on a `cleanup.policy=compact` topic while
    /// `delete.retention.ms` has not yet passed for its tombstones: below the last stable
    /// offset it keeps only the latest record of each key (a tombstone included), and drops
    /// records of aborted transactions and transaction markers. Kept records keep their
    /// offsets (readers skip the gaps); the log start does not move; nothing at or after
    /// the last stable offset is touched. Returns how many entries were removed.
    pub fn compact(&self, topic: &str, partition: Partition) -> Result<usize> {
        self.clean(topic, partition, false)
    }

    /// [`compact`](Self::compact) once `delete.retention.ms` has passed: a key whose latest
    /// record is a tombstone disappears entirely. A store whose position lies before such
    /// a tombstone can no longer learn of the delete from the changelog — the reason Kafka
    /// keeps tombstones for `delete.retention.ms` (24 h by default), and the bound on how
    /// far behind a store may fall and still catch up by tail restore.
    pub fn compact_purging_tombstones(&self, topic: &str, partition: Partition) -> Result<usize> {
        self.clean(topic, partition, true)
    }

    fn clean(&self, topic: &str, partition: Partition, purge_tombstones: bool) -> Result<usize> {
        let mut state = lock(&self.shared);
        let state = &mut *state;
        let txns = &state.txns;
        let topic = state.topics.get_mut(topic).ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("topic {topic} does not exist"))
        })?;
        let log = topic.partition_mut(partition)?;
        Ok(log.compact(
            |txn| txns.get(&txn) != Some(&TxnStatus::Committed),
            purge_tombstones,
        ))
    }

    /// Deletes `topic` and creates it again, empty, with the same spec: offsets restart
    /// at 0, so a store whose position is past the new end must restore from scratch.
    /// Injected faults stay armed.
    pub fn recreate_topic(&self, topic: &str) -> Result<()> {
        self.with_topic(topic, |t| {
            let mut fresh = Topic::new(t.spec.clone(), t.generation + 1);
            fresh.faults = t.faults;
            *t = fresh;
            Ok(())
        })
    }

    /// Aborts every open transaction (ABORT markers where they wrote) and fences their
    /// sinks, as the transaction coordinator does when a dead producer's
    /// `transaction.timeout.ms` expires. Returns how many transactions were aborted.
    pub fn abort_open_transactions(&self) -> usize {
        lock(&self.shared).abort_all_open_txns()
    }

    /// Makes the next flush or commit of any sink of `topic` fail with
    /// [`ErrorKind::Unavailable`], delivering nothing: its pending records are lost, as
    /// with timed-out deliveries. Inside a transaction the transaction is aborted.
    pub fn fail_next_flush(&self, topic: &str) -> Result<()> {
        self.fail_flush_after(topic, 0)
    }

    /// Makes the next flush or commit of any sink of `topic` deliver only its first `n`
    /// pending records, lose the rest and fail with [`ErrorKind::Unavailable`]: a failure
    /// in the middle of a flush. Inside a transaction the transaction is aborted.
    pub fn fail_flush_after(&self, topic: &str, n: usize) -> Result<()> {
        self.with_topic(topic, |t| {
            t.faults.flush_fails_after = Some(n);
            Ok(())
        })
    }

    /// After `n` more successful appends to `topic` (by any sink), every append fails
    /// with [`ErrorKind::Unavailable`] until [`clear_faults`](Self::clear_faults).
    pub fn fail_appends_after(&self, topic: &str, n: u64) -> Result<()> {
        self.with_topic(topic, |t| {
            t.faults.appends_left = Some(n);
            Ok(())
        })
    }

    /// Disarms every injected fault of `topic`.
    pub fn clear_faults(&self, topic: &str) -> Result<()> {
        self.with_topic(topic, |t| {
            t.faults = Default::default();
            Ok(())
        })
    }
}
