//! The supplier: opens the store kept under a directory, one per (store, partition).

use std::path::Path;
use std::sync::Arc;

use state_core::{Capability, KeyValueBytesStoreSupplier, KeyValueStore, Result};

use crate::config::TemplateConfig;
use crate::error::todo;
use crate::store::TemplateStore;

/// Opens [`TemplateStore`]s of one store name.
#[derive(Debug, Clone)]
pub struct TemplateSupplier {
    name: String,
    config: TemplateConfig,
}

impl TemplateSupplier {
    /// A supplier of stores called `name` with the default [`TemplateConfig`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: TemplateConfig::default(),
        }
    }

    /// Replaces the configuration of the stores it opens.
    pub fn with_config(mut self, config: TemplateConfig) -> Self {
        self.config = config;
        self
    }
}

impl KeyValueBytesStoreSupplier for TemplateSupplier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        crate::CAPABILITY
    }

    fn open(&self, _dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        // A real backend creates the engine at `dir` only where nothing is, and otherwise
        // checks that what is there is its own, intact store: Corruption (its own, damaged)
        // or Foreign (not its own), naming `dir` and what was found.
        self.config.validate()?;
        Ok(Arc::new(TemplateStore::new(self.name.clone())))
    }

    fn open_read_only(&self, _dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        // The engine's read-only mode: nothing created or written, NotFound where nothing
        // is, Unavailable while a writer holds the store, writes refused as Unsupported.
        Err(todo("open_read_only"))
    }

    fn owns(&self, _dir: &Path) -> bool {
        // Whether `dir` holds this backend's store, intact or damaged; reads only.
        false
    }

    fn destroy(&self, _dir: &Path) -> Result<()> {
        Err(todo("destroy"))
    }
}
