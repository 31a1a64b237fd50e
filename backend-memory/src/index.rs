//! The ordered index beside the hash map: every key of the store, in unsigned-byte order,
//! with the key's value cell (the one the map holds too), so a scan seeks to its first key
//! in O(log n) and walks only its matches, in either direction, reading each value from
//! its cell without a hash lookup.
//!
//! A `BTreeMap` behind a reader-writer lock, not a lock-free skip list: on 100,000 16-byte
//! keys (`BENCHMARKS.md`) `crossbeam-skiplist` took 1.8–2.5 µs to remove and re-insert a
//! key against 0.77 µs here, 4.9 µs against 2.1 µs to walk 100 keys forward, and 28 µs
//! against 3 µs backward (its nodes link one way, so each step back is a new search).
//! The lock is taken for writing only when a key enters or leaves the store; gets and
//! overwrites of existing keys never touch it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::store::Cell;

/// A key as the store holds it: one allocation, shared by the hash map and the index.
pub(crate) type Key = Arc<[u8]>;

/// A key in the index: its first sixteen bytes inline, then the key itself.
///
/// Ordered by (head, key), which is the keys' own order: zero padding keeps a key's head
/// at or below the head of every key above it. Most comparisons end at the heads, inside
/// the tree's node, instead of following every key's pointer to the heap: with keys behind
/// pointers, a delete and re-insert of one key among 100,000 spent most of its time in
/// cache misses on those pointers. Sixteen bytes, not eight: keys often share a prefix
/// longer than eight bytes (`customer-`, a tenant or a type name), and with eight every
/// comparison of two such keys went to the heap; restoring 20M records over 10M keys
/// `customer-N` spent a tenth of its time there (`BENCHMARKS.md`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IndexKey {
    head: u128,
    key: Key,
}

impl IndexKey {
    pub(crate) fn new(key: Key) -> Self {
        let mut head = [0u8; 16];
        let len = key.len().min(head.len());
        head[..len].copy_from_slice(&key[..len]);
        Self {
            head: u128::from_be_bytes(head),
            key,
        }
    }

    pub(crate) fn key(&self) -> &Key {
        &self.key
    }
}

/// Every key of the store, ordered, with its value cell.
#[derive(Debug, Default)]
pub(crate) struct OrderedKeys(RwLock<BTreeMap<IndexKey, Cell>>);

impl OrderedKeys {
    // No code panics while holding the lock with the map half-changed (a `BTreeMap`
    // operation completes or unwinds before changing it), so poisoning is recovered.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, BTreeMap<IndexKey, Cell>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<IndexKey, Cell>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Calls `visit` with each key of `keys` within `bounds` and its cell, ascending or
/// descending. Bounds must not be inverted (the caller checks `KeyRange::is_empty`
/// first).
pub(crate) fn visit(
    keys: &BTreeMap<IndexKey, Cell>,
    (start, end): (Bound<&[u8]>, Bound<&[u8]>),
    descending: bool,
    mut visit: impl FnMut(&Key, &Cell),
) {
    let bound = |bound: Bound<&[u8]>| bound.map(|key| IndexKey::new(Key::from(key)));
    let range = keys.range((bound(start), bound(end)));
    if descending {
        range.rev().for_each(|(key, cell)| visit(key.key(), cell));
    } else {
        range.for_each(|(key, cell)| visit(key.key(), cell));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Index keys sort as their bytes do, for keys around the inline head's length,
        /// sharing long prefixes, ending in the zero bytes that pad a short head.
        #[test]
        fn index_keys_sort_as_their_bytes(
            keys in proptest::collection::vec(
                proptest::collection::vec(prop::sample::select(vec![0u8, 1, b'c', 0xff]), 0..20),
                0..40,
            )
        ) {
            let mut by_bytes = keys.clone();
            by_bytes.sort();
            let mut by_index: Vec<IndexKey> =
                keys.iter().map(|key| IndexKey::new(Key::from(&key[..]))).collect();
            by_index.sort();
            let by_index: Vec<Vec<u8>> = by_index.iter().map(|key| key.key().to_vec()).collect();
            prop_assert_eq!(by_index, by_bytes);
        }
    }
}
