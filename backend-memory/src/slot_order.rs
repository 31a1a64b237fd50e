//! Filling an empty, presized hash map with millions of keys in the order of the slots
//! they land in, rather than in key order.
//!
//! A map of ten million keys is a table of hundreds of megabytes. Inserted in key order,
//! each key's slot is anywhere in it: a cache miss and a TLB miss per key, the largest
//! cost of opening a memory checkpoint (`BENCHMARKS.md`). Sorted by slot first, the
//! inserts walk each shard's table front to back and the misses mostly vanish.
//!
//! The slot of a key is where `dashmap` and the `hashbrown` table beneath it start
//! looking: the shard from the hash's high bits (`DashMap::determine_shard`), then the
//! hash's low bits within the shard's bucket count. The entries go into the shard's
//! table directly (`dashmap`'s `raw-api`), with the hash computed while the key was
//! still in cache, so the sorted walk touches the tables and nothing else: inserting
//! through `DashMap::insert` would hash each key again, reading keys scattered over the
//! heap in slot order. The hash is the map's own (`BuildHasher::hash_one` of its hasher,
//! which is what `dashmap` computes), so a get finds every key.

use std::hash::BuildHasher;

use dashmap::SharedValue;

use crate::index::Key;
use crate::store::{Cell, Map};

/// How many groups each shard's table is cut into: keys are sorted by group, not by exact
/// slot, which is as good for the caches (a group of a ten-million-key store spans a few
/// pages) and lets a counting sort do it in two passes.
const GROUP_BITS: u32 = 12;

/// An entry bound for the map, with its key's hash.
#[derive(Debug)]
pub(crate) struct Hashed {
    hash: u64,
    key: Key,
    cell: Cell,
}

impl Hashed {
    /// `key` and `cell` for `map`, hashed now: call it while the key is in cache.
    pub(crate) fn new(map: &Map, key: Key, cell: Cell) -> Self {
        Self {
            hash: map.hasher().hash_one(&key),
            key,
            cell,
        }
    }
}

/// Inserts every entry into `map`, which holds none of their keys (each key once), in
/// slot order.
pub(crate) fn insert_in_slot_order(map: &Map, runs: Vec<Vec<Hashed>>) {
    let shards = map.shards();
    let buckets: Vec<usize> = shards.iter().map(|shard| shard.read().buckets()).collect();
    let group = |hash: u64| -> usize {
        let shard = map.determine_shard(hash as usize);
        // Bucket counts are powers of two.
        let shard_buckets = buckets[shard];
        let slot = hash as usize & (shard_buckets - 1);
        let within = slot >> shard_buckets.trailing_zeros().saturating_sub(GROUP_BITS);
        (shard << GROUP_BITS) | within
    };
    // A counting sort: where each group starts, then every entry moved to its place.
    let mut starts = vec![0usize; (buckets.len() << GROUP_BITS) + 1];
    for entry in runs.iter().flatten() {
        starts[group(entry.hash) + 1] += 1;
    }
    for at in 1..starts.len() {
        starts[at] += starts[at - 1];
    }
    let mut sorted: Vec<Option<Hashed>> = Vec::new();
    sorted.resize_with(runs.iter().map(Vec::len).sum(), || None);
    for entry in runs.into_iter().flatten() {
        let at = &mut starts[group(entry.hash)];
        sorted[*at] = Some(entry);
        *at += 1;
    }
    drop(starts);
    // Sorted by shard first: each shard's lock is taken once.
    let mut current: Option<(usize, dashmap::RwLockWriteGuard<'_, _>)> = None;
    for Hashed { hash, key, cell } in sorted.into_iter().flatten() {
        let shard = map.determine_shard(hash as usize);
        let table = match &mut current {
            Some((held, table)) if *held == shard => table,
            _ => &mut current.insert((shard, shards[shard].write())).1,
        };
        // The hasher rehashes entries only if the table has to grow.
        table.insert(hash, (key, SharedValue::new(cell)), |(key, _)| {
            map.hasher().hash_one(key)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Slot;
    use crate::value::Value;
    use std::sync::{Arc, Mutex};

    /// Every entry arrives, once, with its own cell, whatever the map's capacity.
    #[test]
    fn every_entry_is_inserted_once_with_its_cell() {
        for (capacity, count) in [(0, 0), (0, 1_000), (10_000, 10_000), (100, 5_000)] {
            let map = Map::with_capacity_and_hasher(capacity, Default::default());
            let entries: Vec<(Key, Cell)> = (0..count)
                .map(|i: u32| {
                    let key = Key::from(format!("key-{i:05}").as_bytes());
                    let cell = Arc::new(Mutex::new(Slot::Live(Value::new(&i.to_be_bytes()))));
                    (key, cell)
                })
                .collect();
            let hashed = entries
                .iter()
                .map(|(key, cell)| Hashed::new(&map, Key::clone(key), Arc::clone(cell)))
                .collect();
            insert_in_slot_order(&map, vec![hashed]);
            assert_eq!(map.len(), entries.len());
            for (key, cell) in &entries {
                let held = map.get(key).expect("every key is in the map");
                assert!(Arc::ptr_eq(held.value(), cell), "{key:?} keeps its cell");
            }
        }
    }
}
