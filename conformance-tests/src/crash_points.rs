//! Wrappers that fail on purpose at chosen steps, to put a crash point anywhere in the
//! commit and restore protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use state_core::{
    Capability, ChangelogChunk, ChangelogReader, Error, IsolationLevel, KeyRange,
    KeyValueBytesStoreSupplier, KeyValueStore, KvIter, LogOffsets, Offset, Partition, Position,
    RestoreCursor, Result, WriteBatch,
};

/// Wraps a store's supplier, to put a crash point in the stores it opens.
pub type SupplierWrap = Arc<
    dyn Fn(Arc<dyn KeyValueBytesStoreSupplier>) -> Arc<dyn KeyValueBytesStoreSupplier>
        + Send
        + Sync,
>;

/// A store that fails its next [`KeyValueStore::write_with_position`] when armed: the
/// crash point "changelog durable, store not yet written".
pub struct FailingPositionWrite {
    inner: Arc<dyn KeyValueStore>,
    armed: Arc<AtomicBool>,
}

impl FailingPositionWrite {
    /// Wraps `inner`, disarmed.
    pub fn new(inner: Arc<dyn KeyValueStore>) -> Arc<Self> {
        Self::with_switch(inner, Arc::default())
    }

    /// Wraps `inner`, armed whenever `switch` is (several stores may share one).
    pub fn with_switch(inner: Arc<dyn KeyValueStore>, switch: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            armed: switch,
        })
    }

    /// Makes the next `write_with_position` fail without writing.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

impl KeyValueStore for FailingPositionWrite {
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
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(Error::internal("injected crash before the store write"));
        }
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
    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }
    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }
    fn wipe(&self) -> Result<()> {
        self.inner.wipe()
    }
    fn set_bulk_loading(&self, on: bool) -> Result<()> {
        self.inner.set_bulk_loading(on)
    }
}

/// A supplier whose stores fail their next position write while `switch` is raised
/// (the first store to write lowers it): the crash point "between the changelog commit
/// and the store writes", or, armed for one store only, "between two stores' writes".
pub struct ArmedSupplier {
    inner: Arc<dyn KeyValueBytesStoreSupplier>,
    switch: Arc<AtomicBool>,
}

impl ArmedSupplier {
    /// Wraps `inner`; `switch` arms the crash point.
    pub fn new(inner: Arc<dyn KeyValueBytesStoreSupplier>, switch: Arc<AtomicBool>) -> Arc<Self> {
        Arc::new(Self { inner, switch })
    }
}

impl KeyValueBytesStoreSupplier for ArmedSupplier {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capability(&self) -> Capability {
        self.inner.capability()
    }
    fn open(&self, dir: &std::path::Path) -> Result<Arc<dyn KeyValueStore>> {
        Ok(FailingPositionWrite::with_switch(
            self.inner.open(dir)?,
            self.switch.clone(),
        ))
    }
    fn open_checkpoint(
        &self,
        checkpoint: &std::path::Path,
        dir: &std::path::Path,
    ) -> Result<Arc<dyn KeyValueStore>> {
        Ok(FailingPositionWrite::with_switch(
            self.inner.open_checkpoint(checkpoint, dir)?,
            self.switch.clone(),
        ))
    }
    fn destroy(&self, dir: &std::path::Path) -> Result<()> {
        self.inner.destroy(dir)
    }
}

/// A reader whose cursors fail after a number of batches: the crash point "mid-restore".
pub struct FailingReader {
    inner: Arc<dyn ChangelogReader>,
    batches_before_failure: usize,
}

impl FailingReader {
    /// Wraps `inner`; each cursor returns `batches_before_failure` batches, then errors.
    pub fn new(inner: Arc<dyn ChangelogReader>, batches_before_failure: usize) -> Self {
        Self {
            inner,
            batches_before_failure,
        }
    }
}

#[async_trait]
impl ChangelogReader for FailingReader {
    fn topic(&self) -> &str {
        self.inner.topic()
    }
    fn isolation(&self) -> IsolationLevel {
        self.inner.isolation()
    }
    async fn offsets(&self, partition: Partition) -> Result<LogOffsets> {
        self.inner.offsets(partition).await
    }
    async fn open(&self, partition: Partition, from: Offset) -> Result<Box<dyn RestoreCursor>> {
        Ok(Box::new(FailingCursor {
            inner: self.inner.open(partition, from).await?,
            remaining: AtomicUsize::new(self.batches_before_failure),
        }))
    }
}

struct FailingCursor {
    inner: Box<dyn RestoreCursor>,
    remaining: AtomicUsize,
}

#[async_trait]
impl RestoreCursor for FailingCursor {
    async fn next_chunk(&mut self, max: usize) -> Result<ChangelogChunk> {
        if self.remaining.load(Ordering::SeqCst) == 0 {
            return Err(Error::unavailable("injected crash during restore"));
        }
        self.remaining.fetch_sub(1, Ordering::SeqCst);
        self.inner.next_chunk(max).await
    }
    fn position(&self) -> Offset {
        self.inner.position()
    }
}
