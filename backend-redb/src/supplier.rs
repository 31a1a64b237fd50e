//! [`RedbSupplier`]: opens one [`RedbStore`] per (store, partition) directory.

use std::path::Path;
use std::sync::Arc;

use state_core::{Capability, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Result};

use crate::config::RedbConfig;
use crate::error::map_io_error;
use crate::store::RedbStore;

/// Supplies redb stores named `name`, each in its own directory, all with one
/// [`RedbConfig`].
#[derive(Debug, Clone)]
pub struct RedbSupplier {
    name: String,
    config: RedbConfig,
}

impl RedbSupplier {
    /// A supplier of stores called `name` with the default [`RedbConfig`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: RedbConfig::default(),
        }
    }

    /// Replaces the configuration of the stores it opens.
    pub fn with_config(mut self, config: RedbConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration of the stores it opens.
    pub fn config(&self) -> &RedbConfig {
        &self.config
    }
}

impl KeyValueBytesStoreSupplier for RedbSupplier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        self.config.capability()
    }

    /// Opens the redb file in `dir`, creating both when nothing is there.
    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        let store = RedbStore::open(self.name.clone(), dir, &self.config)?;
        Ok(Arc::new(store))
    }

    fn open_read_only(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        let store = RedbStore::open_read_only(self.name.clone(), dir, &self.config)?;
        Ok(Arc::new(store))
    }

    fn owns(&self, dir: &Path) -> bool {
        // The full read-only open decides, so another program's redb file is not ours.
        match RedbStore::open_read_only(self.name.clone(), dir, &self.config) {
            Ok(_) => true,
            Err(err) => !matches!(err.kind(), ErrorKind::Foreign | ErrorKind::NotFound),
        }
    }

    /// Checks the checkpoint's redb file as a read-only open would (integrity as
    /// configured, tables, format marker, position; nothing written), hard-links it
    /// into `dir` under the configured file name, removes `checkpoint`, and opens the
    /// store with this supplier's configuration. A directory holding anything but one
    /// file of the configured name, or a file that is not redb or not statestore's, is
    /// `Foreign`; a damaged file `Corruption`; `dir` already holding a store
    /// `InvalidInput`. On `Err` the checkpoint is left as it was.
    fn open_checkpoint(&self, checkpoint: &Path, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        let store = crate::checkpoint::open(self.name.clone(), checkpoint, dir, &self.config)?;
        Ok(Arc::new(store))
    }

    /// Removes the redb file from `dir` (the directory itself stays). The store must not
    /// be open: on Unix an open handle would keep writing to the unlinked file.
    fn destroy(&self, dir: &Path) -> Result<()> {
        self.config.validate()?;
        let path = dir.join(self.config.file_name());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                log::info!("destroyed redb store {:?} at {}", self.name, path.display());
                Ok(())
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(map_io_error(&path, "remove redb file", err)),
        }
    }
}
