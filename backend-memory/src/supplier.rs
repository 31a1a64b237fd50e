//! Hands out fresh in-memory stores, the shape of Kafka Streams' supplier.

use std::path::Path;
use std::sync::Arc;

use state_core::{Capability, KeyValueBytesStoreSupplier, KeyValueStore, Result};

use crate::{CAPABILITY, MemoryStore};

/// A [`KeyValueBytesStoreSupplier`] of [`MemoryStore`]s, like Kafka Streams'
/// `Stores.inMemoryKeyValueStore(name)`.
///
/// Not durable: [`open`](KeyValueBytesStoreSupplier::open) ignores the directory and
/// returns a new empty store each time, and [`destroy`](KeyValueBytesStoreSupplier::destroy)
/// has nothing to delete.
/// [`open_checkpoint`](KeyValueBytesStoreSupplier::open_checkpoint) loads a store from a
/// checkpoint's dump (see [`KeyValueStore::checkpoint`] on [`MemoryStore`]).
#[derive(Debug, Clone)]
pub struct MemorySupplier {
    name: String,
}

impl MemorySupplier {
    /// A supplier of stores named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl KeyValueBytesStoreSupplier for MemorySupplier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        CAPABILITY
    }

    fn open(&self, _dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Ok(Arc::new(MemoryStore::new(self.name.clone())))
    }

    fn destroy(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// Loads the dump in `checkpoint` into a new store and removes `checkpoint`; `dir`
    /// is ignored, as by [`open`](KeyValueBytesStoreSupplier::open). The whole file is
    /// checked before the store is built: a directory holding anything but one dump, or
    /// a file without the dump's magic, is `Foreign`; a dump of another format version
    /// `InvalidInput`; a truncated or garbled one `Corruption` naming the file and the
    /// byte. Refused checkpoints are left as they are.
    fn open_checkpoint(&self, checkpoint: &Path, _dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Ok(Arc::new(crate::checkpoint::open(&self.name, checkpoint)?))
    }
}
