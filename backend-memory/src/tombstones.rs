//! Deleted keys that stay in the map and the index for a while, so a key deleted and soon
//! written again costs two hash lookups instead of a removal from the ordered index and a
//! re-insertion into it (with the index, a delete followed by a put of the same key took
//! 1.25 µs against 0.50 µs before it; see `BENCHMARKS.md`).
//!
//! A delete leaves `None` in the key's slot and buries the key here; every
//! [`PURGE_EVERY`] burials the store takes the buried keys and removes those still
//! `None` from the map and the index, under one index lock. So at most that many deleted
//! keys linger, a purge does a bounded amount of work, and each delete pays for at most
//! one later check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::index::Key;

/// Burials between purges: the most deleted keys the store keeps, and the most keys one
/// purge checks.
pub(crate) const PURGE_EVERY: usize = 1024;

/// The deleted keys still in the map, and how many slots in the map are empty.
#[derive(Debug, Default)]
pub(crate) struct Tombstones {
    /// Slots holding `None`: the map's length minus this is the number of entries.
    empty: AtomicUsize,
    /// Keys deleted since the last purge; a key written again since is skipped by it.
    buried: Mutex<Vec<Key>>,
}

impl Tombstones {
    /// Records that `key`'s slot became empty. Returns the keys to purge once
    /// [`PURGE_EVERY`] have been buried.
    pub(crate) fn bury(&self, key: &Key) -> Option<Vec<Key>> {
        self.empty.fetch_add(1, Ordering::Relaxed);
        let mut buried = self.buried.lock().unwrap_or_else(PoisonError::into_inner);
        buried.push(Key::clone(key));
        (buried.len() >= PURGE_EVERY).then(|| std::mem::take(&mut *buried))
    }

    /// Records that an empty slot holds a value again.
    pub(crate) fn revived(&self) {
        self.empty.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records that an empty slot left the map.
    pub(crate) fn purged(&self) {
        self.empty.fetch_sub(1, Ordering::Relaxed);
    }

    /// Slots holding `None`.
    pub(crate) fn empty_slots(&self) -> usize {
        self.empty.load(Ordering::Relaxed)
    }

    /// Forgets everything; the caller has emptied the map.
    pub(crate) fn clear(&self) {
        self.buried
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.empty.store(0, Ordering::Relaxed);
    }
}
