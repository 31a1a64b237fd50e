//! A changelog view that stops at the last committed offsets: read-committed isolation
//! for the embedded mock cluster, which has no transaction markers.
//!
//! On Kafka, a killed exactly-once writer's open transaction is aborted when its
//! successor initialises transactions, and read-committed readers never see its
//! records. The mock keeps them readable, so restore would apply work that was never
//! committed. The demo knows the killed instance's last committed offset per partition
//! (nothing else writes), which is exactly where a read-committed reader would stop.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use state_core::{
    Changelog, ChangelogReader, ChangelogSink, IsolationLevel, LogOffsets, Offset, Partition,
    ReadAhead, RestoreCursor, Result, SinkOptions, TopicSpec,
};

/// `inner`, with every reader's end offset capped per partition.
pub struct CommittedView {
    inner: Arc<dyn Changelog>,
    /// One past the last committed offset, per partition.
    ends: BTreeMap<Partition, Offset>,
}

impl CommittedView {
    /// Caps partition `p`'s end at `ends[p]` (0 when absent: nothing committed).
    pub fn new(inner: Arc<dyn Changelog>, ends: BTreeMap<Partition, Offset>) -> Self {
        Self { inner, ends }
    }
}

#[async_trait]
impl Changelog for CommittedView {
    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()> {
        self.inner.ensure_topic(spec).await
    }

    async fn sink(&self, options: &SinkOptions) -> Result<Arc<dyn ChangelogSink>> {
        self.inner.sink(options).await
    }

    async fn reader(
        &self,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<Arc<dyn ChangelogReader>> {
        Ok(Arc::new(CappedReader {
            inner: self.inner.reader(topic, isolation).await?,
            ends: self.ends.clone(),
        }))
    }
}

struct CappedReader {
    inner: Arc<dyn ChangelogReader>,
    ends: BTreeMap<Partition, Offset>,
}

#[async_trait]
impl ChangelogReader for CappedReader {
    fn topic(&self) -> &str {
        self.inner.topic()
    }

    fn isolation(&self) -> IsolationLevel {
        self.inner.isolation()
    }

    async fn offsets(&self, partition: Partition) -> Result<LogOffsets> {
        let offsets = self.inner.offsets(partition).await?;
        let cap = self.ends.get(&partition).copied().unwrap_or(0);
        Ok(LogOffsets {
            start: offsets.start.min(cap),
            end: offsets.end.min(cap),
            log_end: offsets.log_end,
        })
    }

    async fn open(&self, partition: Partition, from: Offset) -> Result<Box<dyn RestoreCursor>> {
        self.inner.open(partition, from).await
    }

    async fn open_with(
        &self,
        partition: Partition,
        from: Offset,
        read_ahead: ReadAhead,
    ) -> Result<Box<dyn RestoreCursor>> {
        self.inner.open_with(partition, from, read_ahead).await
    }
}
