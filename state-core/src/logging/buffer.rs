//! The writes of one commit interval: what reads must see, and what the changelog got.

use std::collections::BTreeMap;

use super::merge::PendingEntry;
use crate::{ChangelogRecord, KeyRange, WriteBatch};

/// Uncommitted writes since the last successful commit.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    /// For each key, the index in `records` of its latest uncommitted record, for reads
    /// (an index rather than a copy of the value: one allocation per write fewer).
    latest: BTreeMap<Vec<u8>, usize>,
    /// Every record appended to the changelog in this interval, in order, so a failed
    /// commit can append again exactly what the changelog is missing.
    records: Vec<ChangelogRecord>,
}

impl WriteBuffer {
    /// The uncommitted state of `key`: `None` if untouched, `Some(None)` if deleted.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.latest.get(key).map(|&index| self.value_at(index))
    }

    pub(crate) fn record(&mut self, record: ChangelogRecord) {
        self.latest.insert(record.key.clone(), self.records.len());
        self.records.push(record);
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
    pub(crate) fn scan(&self, range: &KeyRange, descending: bool) -> Vec<PendingEntry> {
        if range.is_empty() {
            return Vec::new();
        }
        let entries = self
            .latest
            .range::<[u8], _>(range.as_slices())
            .map(|(k, &index)| (k.clone(), self.value_at(index).map(<[u8]>::to_vec)));
        if descending {
            entries.rev().collect()
        } else {
            entries.collect()
        }
    }

    /// The net effect of the interval as one store batch (one op per key).
    pub(crate) fn to_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::with_capacity(self.latest.len());
        for (key, &index) in &self.latest {
            match self.value_at(index) {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            };
        }
        batch
    }

    pub(crate) fn clear(&mut self) {
        self.latest.clear();
        self.records.clear();
    }
}
