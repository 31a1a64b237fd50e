//! Helpers shared by the backend-redb integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use backend_redb::{RedbConfig, RedbSupplier};
use state_core::{KeyValue, KeyValueBytesStoreSupplier, KeyValueStore, KvIter};

pub fn supplier() -> RedbSupplier {
    RedbSupplier::new("test-store")
}

pub fn supplier_with(config: RedbConfig) -> RedbSupplier {
    RedbSupplier::new("test-store").with_config(config)
}

pub fn open(dir: &Path) -> Arc<dyn KeyValueStore> {
    supplier().open(dir).unwrap()
}

pub fn collect(iter: KvIter<'_>) -> Vec<KeyValue> {
    iter.collect::<state_core::Result<Vec<_>>>().unwrap()
}

pub fn all(store: &dyn KeyValueStore) -> Vec<KeyValue> {
    collect(store.all().unwrap())
}

pub fn model_entries(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<KeyValue> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The store's redb file under `dir` with the default config.
pub fn file(dir: &Path) -> std::path::PathBuf {
    dir.join(backend_redb::DEFAULT_FILE_NAME)
}
