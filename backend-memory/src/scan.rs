//! Ordered scans: the index yields the keys of a range in order, the hash map their values.

use state_core::{KeyRange, KeyValue, KvIter};

use crate::index::{self, OrderedKeys};
use crate::store::Map;

/// Which way a scan returns its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Ascending,
    Descending,
}

/// The entries inside `range`, in `order`, cloned: O(log n) to find the first key plus one
/// hash lookup per match. An inverted range yields nothing.
///
/// Holds the index's read lock throughout, so no key enters or leaves the map meanwhile
/// (the store adds and purges keys under the index's write lock): every key the index
/// yields is in the map, with a value or a tombstone, which is skipped.
pub(crate) fn collect(
    data: &Map,
    keys: &OrderedKeys,
    range: &KeyRange,
    order: Order,
) -> Vec<KeyValue> {
    let mut entries = Vec::new();
    if range.is_empty() {
        return entries;
    }
    let keys = keys.read();
    index::visit(
        &keys,
        range.as_slices(),
        order == Order::Descending,
        |key| {
            if let Some(slot) = data.get(&**key)
                && let Some(value) = slot.live()
            {
                entries.push((key.to_vec(), value.clone()));
            }
        },
    );
    entries
}

/// A snapshot as the iterator type the store trait returns.
pub(crate) fn into_iter(entries: Vec<KeyValue>) -> KvIter<'static> {
    Box::new(entries.into_iter().map(Ok))
}
