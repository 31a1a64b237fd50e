//! Deleted keys that stay in the map and the index for a while, so a key deleted and soon
//! written again costs two hash lookups instead of a removal from the ordered index and a
//! re-insertion into it (with the index, a delete followed by a put of the same key took
//! 1.25 µs against 0.50 µs before it; see `BENCHMARKS.md`).
//!
//! A delete leaves a [`Grave`] in the key's slot, which points at the key's entry in the
//! graveyard. A put of the key empties that entry again, while the key is still in cache.
//! Every [`PURGE_EVERY`] burials the store takes the graveyard and removes the keys whose
//! entries are still there (and whose slots still hold a grave) from the map and the
//! index, under one index lock. So at most that many deleted keys linger, a purge does a
//! bounded amount of work, and a key written again soon after its delete costs the purge
//! nothing: checking it would be a cache miss per key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::index::Key;

/// Burials between purges: the most deleted keys the store keeps, and the most keys one
/// purge checks.
pub(crate) const PURGE_EVERY: usize = 1024;

/// Where a deleted key's graveyard entry is: which graveyard (one per purge interval) and
/// where in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grave {
    generation: u64,
    index: usize,
}

/// The keys buried since the last purge; `None` where a key was written again since.
#[derive(Debug, Default)]
struct Graveyard {
    generation: u64,
    keys: Vec<Option<Key>>,
}

/// The graveyard, and how many slots in the map hold a grave.
#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    /// Slots holding a grave: the map's length minus this is the number of entries.
    graves: AtomicUsize,
    graveyard: Mutex<Graveyard>,
}

impl Tombstones {
    // Every change to the graveyard is a push, a take or a swap: a panic cannot leave it
    // torn, so poisoning is recovered.
    fn graveyard(&self) -> MutexGuard<'_, Graveyard> {
        self.graveyard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Buries `key`, whose slot the caller is about to set to the grave returned, holding
    /// the slot. Also returns the keys to purge once [`PURGE_EVERY`] have been buried.
    pub(crate) fn bury(&self, key: &Key) -> (Grave, Option<Vec<Option<Key>>>) {
        self.graves.fetch_add(1, Ordering::Relaxed);
        let mut graveyard = self.graveyard();
        graveyard.keys.push(Some(Key::clone(key)));
        let grave = Grave {
            generation: graveyard.generation,
            index: graveyard.keys.len() - 1,
        };
        let due = (graveyard.keys.len() >= PURGE_EVERY).then(|| {
            graveyard.generation += 1;
            std::mem::take(&mut graveyard.keys)
        });
        (grave, due)
    }

    /// Records that the slot holding `grave` holds a value again, and empties the grave's
    /// entry if its graveyard has not been taken for a purge yet (then the purge finds the
    /// slot holds a value and skips it).
    pub(crate) fn revive(&self, grave: Grave) {
        self.graves.fetch_sub(1, Ordering::Relaxed);
        let mut graveyard = self.graveyard();
        if graveyard.generation == grave.generation
            && let Some(entry) = graveyard.keys.get_mut(grave.index)
        {
            let revived = entry.take();
            drop(graveyard);
            // Dropped here, while the key's memory is still in cache from the put.
            drop(revived);
        }
    }

    /// Records that a slot holding a grave left the map.
    pub(crate) fn purged(&self) {
        self.graves.fetch_sub(1, Ordering::Relaxed);
    }

    /// Slots holding a grave.
    pub(crate) fn graves(&self) -> usize {
        self.graves.load(Ordering::Relaxed)
    }

    /// Forgets everything; the caller has emptied the map.
    pub(crate) fn clear(&self) {
        let mut graveyard = self.graveyard();
        graveyard.generation += 1;
        graveyard.keys.clear();
        self.graves.store(0, Ordering::Relaxed);
    }
}
