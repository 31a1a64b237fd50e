//! `Stores`: the factory a Kafka Streams user knows.

use std::sync::Arc;

use state_core::serde::Serde;
use state_core::{KeyValueBytesStoreSupplier, Result, StoreBuilder};

/// Store suppliers and builders, named after Kafka Streams' `Stores` class.
#[derive(Debug, Clone, Copy)]
pub struct Stores;

impl Stores {
    /// A builder for a typed key-value store over `supplier`, logging enabled by default.
    pub fn key_value_store_builder<K: 'static, V: 'static>(
        supplier: impl KeyValueBytesStoreSupplier + 'static,
        keys: impl Serde<K> + 'static,
        values: impl Serde<V> + 'static,
    ) -> StoreBuilder<K, V> {
        StoreBuilder::new(supplier, keys, values)
    }

    /// A store of the backend called `backend` (one of [`backends()`](crate::backends)),
    /// with that backend's default configuration: for choosing the backend at run time,
    /// from configuration or a command line.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an unknown name,
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for a backend whose
    /// cargo feature is off; both name the backends there are.
    pub fn key_value_store(
        backend: &str,
        name: &str,
    ) -> Result<Arc<dyn KeyValueBytesStoreSupplier>> {
        Ok(crate::backends().get(backend)?.supplier(name))
    }

    /// An in-memory store (dashmap); not durable, restores from the changelog start.
    /// Returns a [`MemorySupplier`](crate::memory::MemorySupplier).
    ///
    /// Available with the `memory` feature (on by default).
    #[cfg(feature = "memory")]
    pub fn in_memory_key_value_store(name: impl Into<String>) -> backend_memory::MemorySupplier {
        backend_memory::MemorySupplier::new(name)
    }

    /// A persistent RocksDB store, like Kafka Streams' default persistent store.
    /// Configure it with [`RocksDbSupplier::with_config`](crate::rocksdb::RocksDbSupplier::with_config).
    ///
    /// Available with the `rocksdb` feature.
    #[cfg(feature = "rocksdb")]
    pub fn persistent_key_value_store(name: impl Into<String>) -> backend_rocksdb::RocksDbSupplier {
        backend_rocksdb::RocksDbSupplier::new(name)
    }

    /// A persistent redb store (pure Rust, one file per store).
    /// Configure it with [`RedbSupplier::with_config`](crate::redb::RedbSupplier::with_config).
    ///
    /// Available with the `redb` feature.
    #[cfg(feature = "redb")]
    pub fn redb_key_value_store(name: impl Into<String>) -> backend_redb::RedbSupplier {
        backend_redb::RedbSupplier::new(name)
    }
}
