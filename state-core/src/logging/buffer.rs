//! The writes of one commit interval: what reads must see, and what the changelog got.
//!
//! Puts and gets find a key by hash, in a table of indices into the interval's records:
//! a key is stored once, in its record, and a put costs one probe. Key order is only
//! needed by scans, so the ordered index is built by the first scan of an interval and
//! then kept up to date scan by scan with the keys that are new since: an interval that
//! is never scanned never sorts. (A `BTreeMap` updated on every put cost a quarter of the
//! logged-put path's CPU, most of it comparing keys.)

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::merge::PendingEntry;
use crate::{ChangelogRecord, KeyRange, WriteBatch};

/// Uncommitted writes since the last successful commit.
#[derive(Default)]
pub(crate) struct WriteBuffer {
    /// For each key, the index in `records` of its latest uncommitted record.
    latest: HashTable<usize>,
    hasher: RandomState,
    /// Every record appended to the changelog in this interval, in order, so a failed
    /// commit can append again exactly what the changelog is missing.
    records: Vec<ChangelogRecord>,
    /// For each record, whether a later record of the interval has the same key.
    superseded: Vec<bool>,
    /// The keys of `latest` in order, as of the last scan.
    ordered: BTreeSet<Vec<u8>>,
    /// Indices in `records` of the records whose key was new to the interval and is not
    /// yet in `ordered`.
    unordered: Vec<usize>,
}

impl std::fmt::Debug for WriteBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBuffer")
            .field("records", &self.records.len())
            .field("keys", &self.latest.len())
            .finish_non_exhaustive()
    }
}

impl WriteBuffer {
    /// The uncommitted state of `key`: `None` if untouched, `Some(None)` if deleted.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        let hash = self.hasher.hash_one(key);
        self.latest
            .find(hash, |&index| self.records[index].key == key)
            .map(|&index| self.value_at(index))
    }

    pub(crate) fn record(&mut self, record: ChangelogRecord) {
        let Self {
            latest,
            hasher,
            records,
            superseded,
            unordered,
            ..
        } = self;
        let index = records.len();
        let hash = hasher.hash_one(record.key.as_slice());
        let entry = latest.entry(
            hash,
            |&at| records[at].key == record.key,
            |&at| hasher.hash_one(records[at].key.as_slice()),
        );
        match entry {
            Entry::Occupied(mut latest) => {
                superseded[*latest.get()] = true;
                *latest.get_mut() = index;
            }
            Entry::Vacant(slot) => {
                slot.insert(index);
                unordered.push(index);
            }
        }
        records.push(record);
        superseded.push(false);
    }

    fn value_at(&self, index: usize) -> Option<&[u8]> {
        self.records.get(index).and_then(|r| r.value.as_deref())
    }

    pub(crate) fn records(&self) -> &[ChangelogRecord] {
        &self.records
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Uncommitted entries inside `range`, in scan order.
    pub(crate) fn scan(&mut self, range: &KeyRange, descending: bool) -> Vec<PendingEntry> {
        if range.is_empty() {
            return Vec::new();
        }
        for index in self.unordered.drain(..) {
            self.ordered.insert(self.records[index].key.clone());
        }
        let entries = self
            .ordered
            .range::<[u8], _>(range.as_slices())
            .map(|key| (key.clone(), self.get(key).flatten().map(<[u8]>::to_vec)));
        if descending {
            entries.rev().collect()
        } else {
            entries.collect()
        }
    }

    /// The net effect of the interval as one store batch: each key's last operation, in
    /// the order of those operations (a backend that gains from key order sorts, as redb
    /// does). The records are walked in order rather than through the hash table: their
    /// keys and values were allocated in that order, so the walk reads memory nearly
    /// sequentially (a million-record interval took a quarter of a second in hash
    /// order, most of it cache misses).
    pub(crate) fn to_batch(&self) -> WriteBatch {
        let latest = || {
            self.records
                .iter()
                .zip(&self.superseded)
                .filter(|&(_, &superseded)| !superseded)
                .map(|(record, _)| record)
        };
        let bytes = latest()
            .map(|record| record.key.len() + record.value.as_ref().map_or(0, Vec::len))
            .sum();
        let mut batch = WriteBatch::with_capacity_and_bytes(self.latest.len(), bytes);
        for record in latest() {
            batch.append(&record.key, record.value.as_deref());
        }
        batch
    }

    pub(crate) fn clear(&mut self) {
        self.latest.clear();
        self.records.clear();
        self.superseded.clear();
        self.ordered.clear();
        self.unordered.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buffer: &mut WriteBuffer, key: &str, value: &str) {
        buffer.record(ChangelogRecord::put(key.as_bytes(), value.as_bytes(), 0));
    }

    fn delete(buffer: &mut WriteBuffer, key: &str) {
        buffer.record(ChangelogRecord::tombstone(key.as_bytes(), 0));
    }

    /// A batch's operations as (key, value) pairs, `None` for a delete, in batch order.
    fn ops(batch: &WriteBatch) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        batch
            .iter()
            .map(|op| (op.key().to_vec(), op.value().map(<[u8]>::to_vec)))
            .collect()
    }

    fn keys(entries: &[PendingEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|(key, _)| String::from_utf8(key.clone()).unwrap())
            .collect()
    }

    #[test]
    fn reads_see_the_latest_write_of_each_key() {
        let mut buffer = WriteBuffer::default();
        put(&mut buffer, "a", "1");
        put(&mut buffer, "a", "2");
        delete(&mut buffer, "b");
        assert_eq!(buffer.get(b"a"), Some(Some(&b"2"[..])));
        assert_eq!(buffer.get(b"b"), Some(None));
        assert_eq!(buffer.get(b"c"), None);
        assert_eq!(buffer.len(), 3);
    }

    /// Keys written between scans join the order; a key written again is not listed
    /// twice, and each scan shows its latest value.
    #[test]
    fn scans_are_in_key_order_across_writes_between_them() {
        let mut buffer = WriteBuffer::default();
        for key in ["m", "c", "x"] {
            put(&mut buffer, key, key);
        }
        assert_eq!(keys(&buffer.scan(&KeyRange::all(), false)), ["c", "m", "x"]);
        put(&mut buffer, "a", "a");
        put(&mut buffer, "m", "again");
        delete(&mut buffer, "x");
        let all = buffer.scan(&KeyRange::all(), false);
        assert_eq!(keys(&all), ["a", "c", "m", "x"]);
        assert_eq!(all[2].1.as_deref(), Some(&b"again"[..]));
        assert_eq!(all[3].1, None);
        let descending = buffer.scan(&KeyRange::prefix(b"c"), true);
        assert_eq!(keys(&descending), ["c"]);
        assert_eq!(
            keys(&buffer.scan(&KeyRange::all(), true)),
            ["x", "m", "c", "a"]
        );
    }

    #[test]
    fn the_batch_holds_each_keys_last_operation_once() {
        let mut buffer = WriteBuffer::default();
        put(&mut buffer, "a", "1");
        put(&mut buffer, "b", "1");
        put(&mut buffer, "a", "2");
        delete(&mut buffer, "b");
        let mut ops = ops(&buffer.to_batch());
        ops.sort();
        assert_eq!(
            ops,
            [(b"a".to_vec(), Some(b"2".to_vec())), (b"b".to_vec(), None)]
        );
    }

    #[test]
    fn a_cleared_buffer_forgets_keys_and_their_order() {
        let mut buffer = WriteBuffer::default();
        put(&mut buffer, "a", "1");
        buffer.scan(&KeyRange::all(), false);
        put(&mut buffer, "b", "1");
        buffer.clear();
        assert!(buffer.is_empty());
        assert_eq!(buffer.get(b"a"), None);
        assert!(buffer.scan(&KeyRange::all(), false).is_empty());
        put(&mut buffer, "c", "1");
        assert_eq!(keys(&buffer.scan(&KeyRange::all(), false)), ["c"]);
    }

    #[test]
    fn the_batch_follows_each_keys_last_operation_and_forgets_cleared_intervals() {
        let mut buffer = WriteBuffer::default();
        put(&mut buffer, "a", "1");
        put(&mut buffer, "b", "1");
        put(&mut buffer, "c", "1");
        put(&mut buffer, "a", "2");
        delete(&mut buffer, "b");
        assert_eq!(
            ops(&buffer.to_batch()),
            [
                (b"c".to_vec(), Some(b"1".to_vec())),
                (b"a".to_vec(), Some(b"2".to_vec())),
                (b"b".to_vec(), None),
            ]
        );
        buffer.clear();
        put(&mut buffer, "c", "3");
        let batch = buffer.to_batch();
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch.iter().next().and_then(|op| op.value()),
            Some(&b"3"[..])
        );
    }
}
