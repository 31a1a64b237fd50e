//! # backend-template
//!
//! The skeleton of a statestore backend: every method a backend must provide, each
//! returning [`ErrorKind::Unsupported`](state_core::ErrorKind::Unsupported) with its name.
//! Copy this crate to start a new backend; see `README.md` for the steps and
//! `state-core/src/store/mod.rs` for the contract each method must meet.

use std::path::Path;
use std::sync::Arc;

use state_core::{
    Capability, Error, KeyRange, KeyValueBytesStoreSupplier, KeyValueStore, KvIter, Position,
    Result, WriteBatch,
};

/// The store. A real backend holds its engine handle and the store's path here.
#[derive(Debug)]
pub struct TemplateStore {
    name: String,
}

fn todo(method: &str) -> Error {
    Error::unsupported(format!("backend-template: {method} is not implemented"))
}

impl KeyValueStore for TemplateStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        // Say what the engine really offers: the suite and restore read these flags.
        Capability::new("template")
            .durable(false)
            .ordered_index(false)
    }

    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Err(todo("get"))
    }

    fn put(&self, _key: &[u8], _value: &[u8]) -> Result<()> {
        Err(todo("put"))
    }

    fn put_if_absent(&self, _key: &[u8], _value: &[u8]) -> Result<Option<Vec<u8>>> {
        // Must be atomic against concurrent writers of the same store.
        Err(todo("put_if_absent"))
    }

    fn delete(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Err(todo("delete"))
    }

    fn write(&self, _batch: &WriteBatch) -> Result<()> {
        // All or nothing, in order; readers never see part of it.
        Err(todo("write"))
    }

    fn write_with_position(&self, _batch: &WriteBatch, _position: &Position) -> Result<()> {
        // ONE atomic engine write for the data and the position.
        Err(todo("write_with_position"))
    }

    fn position(&self) -> Result<Position> {
        Err(todo("position"))
    }

    fn range(&self, _range: &KeyRange) -> Result<KvIter<'_>> {
        // Ascending unsigned-byte order; an inverted range is empty, not an error.
        Err(todo("range"))
    }

    fn reverse_range(&self, _range: &KeyRange) -> Result<KvIter<'_>> {
        Err(todo("reverse_range"))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Err(todo("approximate_num_entries"))
    }

    fn flush(&self) -> Result<()> {
        Err(todo("flush"))
    }

    fn wipe(&self) -> Result<()> {
        Err(todo("wipe"))
    }

    // Optional: `prefix_scan` and `all` have defaults built on `range`; override them
    // when the engine has something faster. `set_bulk_loading` (restore hint) and `close`
    // have defaults too.
}

/// The supplier: opens the store kept under a directory.
#[derive(Debug, Clone)]
pub struct TemplateSupplier {
    name: String,
}

impl TemplateSupplier {
    /// A supplier of stores called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl KeyValueBytesStoreSupplier for TemplateSupplier {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        Capability::new("template")
    }

    fn open(&self, _dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        // A real backend creates the engine at `dir` only where nothing is, and otherwise
        // checks that what is there is its own, intact store: Corruption (its own, damaged)
        // or Foreign (not its own), naming `dir` and what was found.
        Ok(Arc::new(TemplateStore {
            name: self.name.clone(),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unimplemented_method_says_which_it_is() {
        let store = TemplateSupplier::new("s")
            .open(Path::new("unused"))
            .unwrap();
        let err = store.get(b"k").unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Unsupported);
        assert!(err.to_string().contains("get"), "{err}");
        assert!(
            store
                .write_with_position(&WriteBatch::new(), &Position::empty())
                .is_err()
        );
    }
}
