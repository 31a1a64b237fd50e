//! A typed view over a byte store, with or without changelog logging.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::sync::Arc;

use super::ByteStore;
use crate::logging::CommitSummary;
use crate::restore::RestoreSummary;
use crate::serde::Serde;
use crate::{KeyRange, KeyValueStore, KvIter, Result};

/// A key-value store of `K` -> `V`, encoding with serdes, like Kafka Streams'
/// `KeyValueStore<K, V>`.
///
/// `S` is how the byte store is held: owned (a store built alone, which commits itself)
/// or borrowed from an active partition of the store manager
/// ([`PartitionStore`](crate::PartitionStore), which the manager commits with every
/// other store of the instance).
///
/// Scans order keys by their serialized bytes (as in Kafka Streams): for `String` that is
/// code-point order; for signed numbers, negative values sort after positive ones.
pub struct TypedKeyValueStore<K, V, S = ByteStore> {
    store: S,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
    restore: Option<RestoreSummary>,
    _types: PhantomData<fn(K, V)>,
}

/// A decoded entry.
pub type TypedEntry<K, V> = (K, V);

impl<K, V> TypedKeyValueStore<K, V> {
    /// Wraps `store` with serdes; `restore` is what building it restored, if anything.
    pub fn new(
        store: ByteStore,
        keys: Arc<dyn Serde<K>>,
        values: Arc<dyn Serde<V>>,
        restore: Option<RestoreSummary>,
    ) -> Self {
        Self::over(store, keys, values, restore)
    }

    /// Commits: with logging, makes changes durable in the changelog and applies them to
    /// the store (see [`LoggedStore::commit`](crate::LoggedStore::commit)); without,
    /// applies them to the store as one batch and flushes it.
    pub async fn commit(&mut self) -> Result<CommitSummary> {
        self.store.commit().await
    }

    /// The committed store underneath, without its changelog sink; uncommitted changes are
    /// dropped.
    pub fn into_committed(self) -> Arc<dyn KeyValueStore> {
        self.store.into_committed()
    }

    /// Closes the store. A logged store drops its uncommitted changes (its changelog
    /// keeps only committed ones); an unlogged store applies and flushes them first, as
    /// nothing else holds them.
    pub fn close(self) -> Result<()> {
        self.store.commit_unlogged()?;
        self.committed().close()
    }
}

impl<K, V, S: Borrow<ByteStore>> TypedKeyValueStore<K, V, S> {
    /// Wraps `store`, held as `S`, with serdes; `restore` is what building it restored.
    pub fn over(
        store: S,
        keys: Arc<dyn Serde<K>>,
        values: Arc<dyn Serde<V>>,
        restore: Option<RestoreSummary>,
    ) -> Self {
        Self {
            store,
            keys,
            values,
            restore,
            _types: PhantomData,
        }
    }

    /// The store name.
    pub fn name(&self) -> &str {
        self.committed().name()
    }

    /// The byte store underneath.
    pub fn byte_store(&self) -> &ByteStore {
        self.store.borrow()
    }

    /// The committed store (no uncommitted writes visible).
    pub fn committed(&self) -> &Arc<dyn KeyValueStore> {
        self.byte_store().committed()
    }

    /// What building this store restored from the changelog (`None` when logging is
    /// disabled, and on a partition's store view: the manager reports restores per
    /// partition).
    pub fn restore_summary(&self) -> Option<&RestoreSummary> {
        self.restore.as_ref()
    }

    /// Reads `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let key = self.keys.serialize(key)?;
        let value = self.byte_store().get(&key)?;
        value.map(|bytes| self.value_of(&key, &bytes)).transpose()
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        let (key, value) = (self.keys.serialize(key)?, self.values.serialize(value)?);
        self.byte_store().put(&key, &value)
    }

    /// Sets `key` if absent; returns the existing value otherwise.
    pub fn put_if_absent(&self, key: &K, value: &V) -> Result<Option<V>> {
        let (key, value) = (self.keys.serialize(key)?, self.values.serialize(value)?);
        let existing = self.byte_store().put_if_absent(&key, &value)?;
        existing
            .map(|bytes| self.value_of(&key, &bytes))
            .transpose()
    }

    /// Deletes `key`, returning its value.
    pub fn delete(&self, key: &K) -> Result<Option<V>> {
        let key = self.keys.serialize(key)?;
        let old = self.byte_store().delete(&key)?;
        old.map(|bytes| self.value_of(&key, &bytes)).transpose()
    }

    /// Entries with `from <= key <= to` in serialized-key order.
    pub fn range(
        &self,
        from: &K,
        to: &K,
    ) -> Result<impl Iterator<Item = Result<TypedEntry<K, V>>> + '_> {
        let range = KeyRange::inclusive(self.keys.serialize(from)?, self.keys.serialize(to)?);
        self.decode(self.byte_store().scan(&range, false)?)
    }

    /// Entries with `from <= key <= to` in descending serialized-key order.
    pub fn reverse_range(
        &self,
        from: &K,
        to: &K,
    ) -> Result<impl Iterator<Item = Result<TypedEntry<K, V>>> + '_> {
        let range = KeyRange::inclusive(self.keys.serialize(from)?, self.keys.serialize(to)?);
        self.decode(self.byte_store().scan(&range, true)?)
    }

    /// Entries whose serialized key starts with the serialized `prefix`.
    pub fn prefix_scan(
        &self,
        prefix: &K,
    ) -> Result<impl Iterator<Item = Result<TypedEntry<K, V>>> + '_> {
        let range = KeyRange::prefix(&self.keys.serialize(prefix)?);
        self.decode(self.byte_store().scan(&range, false)?)
    }

    /// Every entry.
    pub fn all(&self) -> Result<impl Iterator<Item = Result<TypedEntry<K, V>>> + '_> {
        self.decode(self.byte_store().scan(&KeyRange::all(), false)?)
    }

    /// The backend's entry estimate (committed entries).
    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.committed().approximate_num_entries()
    }

    fn decode<'a>(
        &'a self,
        iter: KvIter<'a>,
    ) -> Result<impl Iterator<Item = Result<TypedEntry<K, V>>> + 'a> {
        Ok(iter.map(move |entry| {
            let (key, value) = entry?;
            let decoded = self
                .keys
                .deserialize(&key)
                .map_err(|err| err.context(self.at(&key, "key")))?;
            Ok((decoded, self.value_of(&key, &value)?))
        }))
    }

    /// `bytes`, the stored value of `key`, decoded; an error names the store and the key,
    /// as a serde that does not match what a kept directory holds shows here first.
    fn value_of(&self, key: &[u8], bytes: &[u8]) -> Result<V> {
        self.values
            .deserialize(bytes)
            .map_err(|err| err.context(self.at(key, "value")))
    }

    /// Where a stored key or value that the serde cannot read was found.
    fn at(&self, key: &[u8], what: &str) -> String {
        format!(
            "the {what} of key \"{}\" in store {}",
            key.escape_ascii(),
            self.committed().name()
        )
    }
}
