//! One partition's log: entries at offsets, the last stable offset, reading, truncation and
//! compaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::changelog::ChangelogRecord;
use crate::{IsolationLevel, Offset};

/// Identifies one transaction across the whole in-memory changelog.
pub(super) type TxnId = u64;

/// What sits at one offset.
#[derive(Debug, Clone)]
pub(super) enum EntryKind {
    /// A record, inside a transaction or not.
    Data {
        record: ChangelogRecord,
        txn: Option<TxnId>,
    },
    /// A COMMIT (`commit: true`) or ABORT control record ending a transaction here.
    Marker { commit: bool },
}

/// An entry of the log.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) offset: Offset,
    pub(super) kind: EntryKind,
}

/// A partition: entries sorted by offset, with gaps where compaction removed some.
#[derive(Debug, Default)]
pub(super) struct PartitionLog {
    start: Offset,
    end: Offset,
    entries: Vec<Entry>,
    /// The first offset of each still-open transaction that wrote here. Its minimum is the
    /// last stable offset; kept as a map so LSO is cheap and a marker is written only to
    /// partitions the transaction touched.
    open_txns: BTreeMap<TxnId, Offset>,
}

/// The result of one read: visible records and the offset to read from next.
pub(super) struct ReadBatch {
    pub(super) records: Vec<(Offset, ChangelogRecord)>,
    pub(super) next: Offset,
}

impl PartitionLog {
    /// The log start offset.
    pub(super) fn start(&self) -> Offset {
        self.start
    }

    /// The log end offset: the offset the next entry gets.
    pub(super) fn end(&self) -> Offset {
        self.end
    }

    /// The first offset of the oldest open transaction, else the log end; never below the
    /// log start (delete-records may have removed an open transaction's first records).
    pub(super) fn last_stable(&self) -> Offset {
        self.open_txns
            .values()
            .min()
            .map_or(self.end, |&first| first.min(self.end))
            .max(self.start)
    }

    /// The end offset a reader with `isolation` sees.
    pub(super) fn end_for(&self, isolation: IsolationLevel) -> Offset {
        match isolation {
            IsolationLevel::ReadUncommitted => self.end,
            IsolationLevel::ReadCommitted => self.last_stable(),
        }
    }

    /// The entries still in the log, in offset order.
    pub(super) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends a data record, returning its offset.
    pub(super) fn append_data(&mut self, record: ChangelogRecord, txn: Option<TxnId>) -> Offset {
        let offset = self.end;
        self.end += 1;
        if let Some(txn) = txn {
            self.open_txns.entry(txn).or_insert(offset);
        }
        self.entries.push(Entry {
            offset,
            kind: EntryKind::Data { record, txn },
        });
        offset
    }

    /// Ends `txn` here with a marker if it wrote to this partition; a marker takes an
    /// offset, as in Kafka. Returns whether a marker was written.
    pub(super) fn end_txn(&mut self, txn: TxnId, commit: bool) -> bool {
        if self.open_txns.remove(&txn).is_none() {
            return false;
        }
        let offset = self.end;
        self.end += 1;
        self.entries.push(Entry {
            offset,
            kind: EntryKind::Marker { commit },
        });
        true
    }

    /// Reads up to `max` data records in `[from, end)` that `visible` accepts (it is given
    /// the record's transaction). Markers and rejected records are skipped, and `next`
    /// moves past them: when every entry below `end` was examined, `next` is `end`.
    pub(super) fn read(
        &self,
        from: Offset,
        end: Offset,
        max: usize,
        visible: impl Fn(Option<TxnId>) -> bool,
    ) -> ReadBatch {
        let mut batch = ReadBatch {
            records: Vec::new(),
            next: from,
        };
        if max == 0 {
            return batch;
        }
        let first = self.entries.partition_point(|entry| entry.offset < from);
        for entry in self.entries.iter().skip(first) {
            if entry.offset >= end {
                break;
            }
            if batch.records.len() == max {
                return batch;
            }
            batch.next = entry.offset + 1;
            if let EntryKind::Data { record, txn } = &entry.kind
                && visible(*txn)
            {
                batch.records.push((entry.offset, record.clone()));
            }
        }
        batch.next = batch.next.max(end);
        batch
    }

    /// Delete-records: drops every entry below `offset` and raises the log start to it.
    /// The caller checks `offset <= end`.
    pub(super) fn truncate_before(&mut self, offset: Offset) {
        if offset <= self.start {
            return;
        }
        self.start = offset;
        let cut = self.entries.partition_point(|entry| entry.offset < offset);
        self.entries.drain(..cut);
    }

    /// Log-cleaner pass over the stable part of the log (below the last stable offset,
    /// where every transaction is decided): drops records of aborted transactions, every
    /// record superseded by a later one with the same key, latest records that are
    /// tombstones (as once `delete.retention.ms` has passed) and the markers. Offsets of
    /// the kept entries and the log start do not change. Returns how many entries went.
    pub(super) fn compact(
        &mut self,
        is_aborted: impl Fn(TxnId) -> bool,
        purge_tombstones: bool,
    ) -> usize {
        let stable = self.last_stable();
        let live = |txn: &Option<TxnId>| txn.is_none_or(|txn| !is_aborted(txn));
        let mut latest: HashMap<&[u8], (Offset, bool)> = HashMap::new();
        for entry in self
            .entries
            .iter()
            .take_while(|entry| entry.offset < stable)
        {
            if let EntryKind::Data { record, txn } = &entry.kind
                && live(txn)
            {
                latest.insert(&record.key, (entry.offset, record.is_tombstone()));
            }
        }
        let keep: HashSet<Offset> = latest
            .into_values()
            .filter(|&(_, tombstone)| !(purge_tombstones && tombstone))
            .map(|(offset, _)| offset)
            .collect();
        let before = self.entries.len();
        self.entries
            .retain(|entry| entry.offset >= stable || keep.contains(&entry.offset));
        before - self.entries.len()
    }
}
