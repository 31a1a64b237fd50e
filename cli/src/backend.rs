//! Choosing a store backend (`--backend`) and locating a store on disk.

use std::path::PathBuf;
use std::sync::Arc;

use state_core::{
    Error, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Partition, Result, StoreContext,
};
use statestore::Stores;

use crate::errors;

/// The backend names `--backend` accepts.
pub const NAMES: [&str; 3] = ["memory", "rocksdb", "redb"];

/// A store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// dashmap, nothing on disk.
    Memory,
    /// RocksDB.
    RocksDb,
    /// redb.
    Redb,
}

impl Backend {
    /// Parses one of [`NAMES`].
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "memory" => Ok(Self::Memory),
            "rocksdb" => Ok(Self::RocksDb),
            "redb" => Ok(Self::Redb),
            other => Err(Error::invalid_input(format!(
                "unknown backend {other}; expected one of {}",
                NAMES.join(", ")
            ))),
        }
    }

    /// The name `--backend` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::RocksDb => "rocksdb",
            Self::Redb => "redb",
        }
    }

    /// A supplier of this backend for store `store`.
    pub fn supplier(self, store: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
        match self {
            Self::Memory => Arc::new(Stores::in_memory_key_value_store(store)),
            Self::RocksDb => Arc::new(Stores::persistent_key_value_store(store)),
            Self::Redb => Arc::new(Stores::redb_key_value_store(store)),
        }
    }
}

/// Where a store lives: `<state_dir>/<application_id>/<partition>/<store>`, as the
/// store builder lays it out.
#[derive(Debug, Clone)]
pub struct Location {
    /// The root state directory.
    pub state_dir: PathBuf,
    /// The backend the store was written with.
    pub backend: Backend,
    /// The store name.
    pub store: String,
    /// The application id.
    pub application_id: String,
}

impl Location {
    /// The directory of `partition`'s store.
    pub fn store_dir(&self, partition: Partition) -> Result<PathBuf> {
        StoreContext::new(&self.application_id, partition, 1, &self.state_dir)?
            .store_dir(&self.store)
    }

    /// Opens an existing store for reading; never creates one.
    pub fn open_existing(&self, partition: Partition) -> Result<Arc<dyn KeyValueStore>> {
        if self.backend == Backend::Memory {
            return Err(Error::unsupported(
                "the memory backend keeps nothing on disk; use --backend rocksdb or redb",
            ));
        }
        errors::require_dir(&self.state_dir, "state directory")?;
        let dir = self.store_dir(partition)?;
        if !dir.exists() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no store {} of application {} partition {partition} in state directory {} (looked for {})",
                    self.store,
                    self.application_id,
                    self.state_dir.display(),
                    dir.display()
                ),
            ));
        }
        self.backend.supplier(&self.store).open(&dir)
    }
}
