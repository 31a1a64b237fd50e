//! The store: the engine handle behind the `KeyValueStore` contract.

use state_core::{Capability, KeyRange, KeyValueStore, KvIter, Position, Result, WriteBatch};

use crate::error::todo;
use crate::scan::scan;

/// The store. A real backend holds its engine handle and the store's path here.
#[derive(Debug)]
pub struct TemplateStore {
    name: String,
}

impl TemplateStore {
    pub(crate) fn new(name: String) -> Self {
        Self { name }
    }
}

impl KeyValueStore for TemplateStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        crate::CAPABILITY
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

    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        scan(range, false)
    }

    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        scan(range, true)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        // Exact only if `exact_count` says so in the capability.
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
