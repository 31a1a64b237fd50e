//! Opening RocksDB stores by directory.

use std::path::Path;
use std::sync::Arc;

use rocksdb::Options;
use state_core::{Capability, Error, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Result};

use crate::config::RocksDbConfig;
use crate::error::map_rocksdb_error;
use crate::open::META_CF;
use crate::probe::{Contents, probe};
use crate::scan::Db;
use crate::store::RocksDbStore;

/// Opens [`RocksDbStore`]s of one store name, one directory per (store, partition), like
/// Kafka Streams' `Stores.persistentKeyValueStore(name)`.
#[derive(Debug, Clone)]
pub struct RocksDbSupplier {
    name: String,
    config: RocksDbConfig,
}

impl RocksDbSupplier {
    /// A supplier for the store `name` with the default [`RocksDbConfig`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: RocksDbConfig::default(),
        }
    }

    /// Replaces the configuration every opened store uses.
    pub fn with_config(mut self, config: RocksDbConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration every opened store uses.
    pub fn config(&self) -> &RocksDbConfig {
        &self.config
    }
}

impl KeyValueBytesStoreSupplier for RocksDbSupplier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        self.config.capability()
    }

    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Ok(Arc::new(RocksDbStore::open(
            self.name.clone(),
            dir,
            &self.config,
        )?))
    }

    fn open_read_only(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Ok(Arc::new(RocksDbStore::open_read_only(
            self.name.clone(),
            dir,
            &self.config,
        )?))
    }

    fn owns(&self, dir: &Path) -> bool {
        matches!(probe(dir), Ok(Contents::Stamped))
            || (dir.join("CURRENT").is_file()
                && Db::list_cf(&Options::default(), dir)
                    .is_ok_and(|families| families.iter().any(|f| f == META_CF)))
    }

    /// Checks the checkpoint read-only (its stamp, column families, format marker and
    /// position; nothing written), renames the directory into the place of `dir` (which
    /// must be missing or empty) and opens the store with this supplier's configuration.
    /// A directory without statestore's stamp is `Foreign`; a damaged checkpoint
    /// `Corruption`; `dir` already holding a store `InvalidInput`. On `Err` the
    /// checkpoint is left in place (moved back if the store failed to open).
    fn open_checkpoint(&self, checkpoint: &Path, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        let store = crate::checkpoint::open(self.name.clone(), checkpoint, dir, &self.config)?;
        Ok(Arc::new(store))
    }

    fn destroy(&self, dir: &Path) -> Result<()> {
        let io_error = |err: std::io::Error| {
            Error::from(err).context(format!(
                "destroying rocksdb store {} at {}",
                self.name,
                dir.display()
            ))
        };
        match std::fs::symlink_metadata(dir) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(io_error(err)),
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::invalid_input(format!(
                    "cannot destroy rocksdb store {} at {}: not a directory",
                    self.name,
                    dir.display()
                )));
            }
            Ok(_) => {}
        }
        // RocksDB's own destroy takes the LOCK file first, so a database still open
        // (here or in another process) is refused instead of deleted under its owner.
        if let Err(err) = Db::destroy(&Options::default(), dir) {
            let err = map_rocksdb_error(err, dir);
            if err.kind() == ErrorKind::Unavailable {
                return Err(err.context(format!("destroying rocksdb store {}", self.name)));
            }
            // A damaged directory may confuse RocksDB; removing the files below is
            // what destroying it means anyway.
            log::warn!(
                "rocksdb destroy of {} reported {err}; removing the directory",
                dir.display()
            );
        }
        match std::fs::remove_dir_all(dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io_error(err)),
            _ => Ok(()),
        }
    }
}
