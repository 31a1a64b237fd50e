//! Ordered scans: the index yields the keys of a range in order, each with its value cell.

use state_core::{KeyRange, KeyValue, KvIter};

use crate::index::{self, OrderedKeys};
use crate::store::lock;

/// Which way a scan returns its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Ascending,
    Descending,
}

/// The entries inside `range`, in `order`, cloned: O(log n) to find the first key, then
/// one cell lock per match, no hash lookup. An inverted range yields nothing.
///
/// Holds the index's read lock throughout, so no key enters or leaves the store meanwhile
/// (the store adds and purges keys under the index's write lock); each value is read
/// under its cell's lock, at one moment, and a buried key (deleted, not yet purged) is
/// skipped.
pub(crate) fn collect(keys: &OrderedKeys, range: &KeyRange, order: Order) -> Vec<KeyValue> {
    let mut entries = Vec::new();
    if range.is_empty() {
        return entries;
    }
    let keys = keys.read();
    index::visit(
        &keys,
        range.as_slices(),
        order == Order::Descending,
        |key, cell| {
            if let Some(value) = lock(cell).live() {
                entries.push((key.to_vec(), value.to_vec()));
            }
        },
    );
    entries
}

/// A snapshot as the iterator type the store trait returns.
pub(crate) fn into_iter(entries: Vec<KeyValue>) -> KvIter<'static> {
    Box::new(entries.into_iter().map(Ok))
}
