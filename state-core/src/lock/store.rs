//! A store that holds its partition's writer lock for as long as it is open.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use super::PartitionLock;
use crate::{
    Capability, Checkpoint, KeyRange, KeyValueStore, KvIter, PendingCheckpoint, Position, Result,
    WriteBatch,
};

/// `inner` with a guard of its partition's lock, dropped when the store is closed or
/// its last handle dropped; every call goes to `inner` unchanged.
pub(crate) struct LockedStore {
    inner: Arc<dyn KeyValueStore>,
    lock: Mutex<Option<PartitionLock>>,
}

impl LockedStore {
    /// `store` holding `lock`.
    pub(crate) fn wrap(
        store: Arc<dyn KeyValueStore>,
        lock: PartitionLock,
    ) -> Arc<dyn KeyValueStore> {
        Arc::new(Self {
            inner: store,
            lock: Mutex::new(Some(lock)),
        })
    }
}

impl KeyValueStore for LockedStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.inner.put(key, value)
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.put_if_absent(key, value)
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.delete(key)
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.inner.write(batch)
    }

    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        self.inner.write_with_position(batch, position)
    }

    fn position(&self) -> Result<Position> {
        self.inner.position()
    }

    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.inner.range(range)
    }

    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.inner.reverse_range(range)
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KvIter<'_>> {
        self.inner.prefix_scan(prefix)
    }

    fn all(&self) -> Result<KvIter<'_>> {
        self.inner.all()
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn wipe(&self) -> Result<()> {
        self.inner.wipe()
    }

    fn set_bulk_loading(&self, bulk_loading: bool) -> Result<()> {
        self.inner.set_bulk_loading(bulk_loading)
    }

    fn checkpoint(&self, dir: &Path) -> Result<Checkpoint> {
        self.inner.checkpoint(dir)
    }

    fn begin_checkpoint(&self, dir: &Path) -> Result<PendingCheckpoint> {
        self.inner.begin_checkpoint(dir)
    }

    /// Closes the store, then lets its lock go: a store that failed to close may still
    /// have its files open, and keeps it.
    fn close(&self) -> Result<()> {
        self.inner.close()?;
        let lock = self
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(lock);
        Ok(())
    }
}
