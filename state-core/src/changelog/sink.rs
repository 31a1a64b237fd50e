//! The write side of a changelog.

use async_trait::async_trait;

use super::{ChangelogRecord, ProcessingGuarantee, SourceOffsets};
use crate::{Error, Partition, Position, Result};

/// Where a logged store sends its changes: one changelog topic.
///
/// `append` only enqueues (like Kafka's `Producer.send`) and never waits for the network,
/// so a synchronous store can call it from `put`. Waiting happens in the async
/// [`flush`](Self::flush) / [`commit_transaction`](Self::commit_transaction), which report
/// the acknowledged offsets the store records as its position.
#[async_trait]
pub trait ChangelogSink: Send + Sync {
    /// The changelog topic.
    fn topic(&self) -> &str;

    /// Whether this sink writes plain records or transactions.
    fn guarantee(&self) -> ProcessingGuarantee;

    /// Enqueues `record` for `partition`. Records of one partition keep their order.
    ///
    /// Fails when a previous fatal error made the sink unusable, when the enqueue buffer
    /// stays full past the sink's bound, or (exactly-once) outside a transaction.
    fn append(&self, partition: Partition, record: &ChangelogRecord) -> Result<()>;

    /// Waits until every appended record is acknowledged, and returns for each partition
    /// this sink has written the highest acknowledged offset so far.
    ///
    /// On error some records may have been written and others not; the caller must
    /// append again what it needs durable (at-least-once replays tolerate duplicates).
    async fn flush(&self) -> Result<Position>;

    /// For each partition this sink has written, the highest offset acknowledged so far —
    /// including acknowledgements that arrived during a flush that then failed. The
    /// logging layer uses it after a failed flush to append again only what the changelog
    /// lacks, so replay stays a prefix of the operations.
    fn acknowledged(&self) -> Position;

    /// Starts a transaction (exactly-once only): appends until
    /// [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction) become visible to committed-only
    /// readers together or never.
    fn begin_transaction(&self) -> Result<()>;

    /// Flushes and commits the open transaction; returns the highest acknowledged offset
    /// per partition, as [`flush`](Self::flush).
    async fn commit_transaction(&self) -> Result<Position>;

    /// Aborts the open transaction: its records are never visible to committed-only
    /// readers.
    async fn abort_transaction(&self) -> Result<()>;

    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool;

    /// Adds a processor's input offsets to the open transaction (exactly-once), so they
    /// are committed or aborted with its records. Changelogs that have no notion of a
    /// consumer group return [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    async fn send_source_offsets(&self, source: &SourceOffsets) -> Result<()> {
        Err(Error::unsupported(format!(
            "changelog topic {} cannot commit input offsets of {} in its transactions",
            self.topic(),
            source.topic
        )))
    }
}
