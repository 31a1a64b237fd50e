//! Typed handles to the stores a manager opens for every partition.

use std::sync::Arc;

use crate::Serde;

/// One store of a [`StoreManager`](super::StoreManager), with its key and value types:
/// what [`ActivePartition::store`](super::ActivePartition::store) takes to hand out that
/// store of a partition. Cheap to clone; valid only with the manager that issued it.
pub struct StoreHandle<K, V> {
    pub(crate) manager: u64,
    pub(crate) index: usize,
    pub(crate) name: Arc<str>,
    pub(crate) keys: Arc<dyn Serde<K>>,
    pub(crate) values: Arc<dyn Serde<V>>,
}

impl<K, V> StoreHandle<K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The store's key serde: the bytes a key is stored, logged and partitioned by.
    pub fn key_serde(&self) -> &Arc<dyn Serde<K>> {
        &self.keys
    }

    /// The store's value serde.
    pub fn value_serde(&self) -> &Arc<dyn Serde<V>> {
        &self.values
    }
}

impl<K, V> Clone for StoreHandle<K, V> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager,
            index: self.index,
            name: self.name.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for StoreHandle<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}
