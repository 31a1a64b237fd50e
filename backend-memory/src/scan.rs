//! Ordered scans over an unordered map: filter every entry, then sort the matches.

use dashmap::DashMap;
use state_core::{KeyRange, KeyValue, KvIter};

/// Which way a scan returns its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Ascending,
    Descending,
}

/// The entries whose key `matches`, cloned and sorted by unsigned key bytes (`Vec<u8>`
/// orders lexicographically by `u8`). Costs a pass over every entry plus a sort of the
/// matches; the result is a snapshot, so no map lock outlives the call.
pub(crate) fn collect(
    data: &DashMap<Vec<u8>, Vec<u8>>,
    matches: impl Fn(&[u8]) -> bool,
    order: Order,
) -> Vec<KeyValue> {
    let mut entries: Vec<KeyValue> = data
        .iter()
        .filter(|entry| matches(entry.key()))
        .map(|entry| (entry.key().clone(), entry.value().clone()))
        .collect();
    // Keys are unique, so an unstable sort gives the one correct order.
    match order {
        Order::Ascending => entries.sort_unstable_by(|a, b| a.0.cmp(&b.0)),
        Order::Descending => entries.sort_unstable_by(|a, b| b.0.cmp(&a.0)),
    }
    entries
}

/// Entries inside `range`, in `order`; an inverted range yields nothing.
pub(crate) fn range(
    data: &DashMap<Vec<u8>, Vec<u8>>,
    range: &KeyRange,
    order: Order,
) -> Vec<KeyValue> {
    if range.is_empty() {
        return Vec::new();
    }
    collect(data, |key| range.contains(key), order)
}

/// Entries whose key starts with `prefix`, ascending.
pub(crate) fn prefix(data: &DashMap<Vec<u8>, Vec<u8>>, prefix: &[u8]) -> Vec<KeyValue> {
    collect(data, |key| key.starts_with(prefix), Order::Ascending)
}

/// A snapshot as the iterator type the store trait returns.
pub(crate) fn into_iter(entries: Vec<KeyValue>) -> KvIter<'static> {
    Box::new(entries.into_iter().map(Ok))
}
