//! The handle to an active partition's store.

use std::ops::{Deref, DerefMut};

use tokio::sync::{OwnedMappedMutexGuard, OwnedMutexGuard};

use super::Slot;
use crate::TypedKeyValueStore;

/// Exclusive access to an active partition's store. While held, that partition cannot
/// be revoked or committed by the manager; hold it for a record or a commit, not longer.
pub struct ActiveStore<K, V>(OwnedMappedMutexGuard<Slot<K, V>, TypedKeyValueStore<K, V>>);

impl<K, V> ActiveStore<K, V> {
    pub(super) fn of(slot: OwnedMutexGuard<Slot<K, V>>) -> Option<Self> {
        OwnedMutexGuard::try_map(slot, |slot| match slot {
            Slot::Active(store) => Some(&mut **store),
            _ => None,
        })
        .ok()
        .map(Self)
    }
}

impl<K, V> Deref for ActiveStore<K, V> {
    type Target = TypedKeyValueStore<K, V>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<K, V> DerefMut for ActiveStore<K, V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
