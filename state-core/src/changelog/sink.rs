//! The write side of a changelog: one sink per instance, for every store it logs.

use async_trait::async_trait;

use super::{ChangelogPositions, ChangelogRecord, ProcessingGuarantee, SourceOffsets};
use crate::{Partition, Result};

/// What a successful [`ChangelogSink::commit`] made durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCommit {
    /// For each changelog partition the sink has written, the highest acknowledged
    /// offset: what each store records as its position.
    pub positions: ChangelogPositions,
    /// What became of the input offsets handed to the commit.
    pub source: SourceCommit,
}

/// What became of the input offsets of one commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SourceCommit {
    /// The commit carried no input offsets.
    #[default]
    Nothing,
    /// The input offsets were committed: inside the transaction (exactly-once) or right
    /// after the records were flushed (at-least-once).
    Committed,
    /// At-least-once only: the records are durable but the consumer group refused the
    /// offsets because it was rebalancing. They stay pending for the next commit, or
    /// the partition's next owner replays input from the previous commit, which
    /// at-least-once allows.
    Refused,
}

/// Where logged stores send their changes: one producer for any number of changelog
/// topics and partitions — under exactly-once, one transactional producer per instance
/// (Kafka Streams' exactly-once v2, KIP-447), whose every commit is one transaction
/// holding every store's records and the input offsets.
///
/// # Behavior
/// - `append` only enqueues (like Kafka's `Producer.send`) and never waits for the
///   network, so a synchronous store can call it from `put`. Records of one partition
///   keep their order. Under exactly-once the first append after a commit or abort
///   begins the next transaction: callers never begin one.
/// - `commit` is the one place records become durable, together with the input offsets
///   they were computed from: exactly-once, one transaction holds both; at-least-once,
///   the records are flushed, then the offsets committed. Either way it returns each
///   partition's acknowledged offset.
/// - A failed `commit` leaves no transaction open: under exactly-once nothing of the
///   interval is visible to committed-only readers (the transaction is aborted) and the
///   input offsets are not committed; at-least-once, some records may be in the log.
///   [`acknowledged`](Self::acknowledged) then says which, so a caller appends again
///   only what the log lacks.
/// - `abort` ends the interval without committing: exactly-once aborts the open
///   transaction; at-least-once cannot take records back and waits for those in
///   flight, so `acknowledged` is up to date afterwards.
/// - `append`, `commit` and `abort` are not meant to race: a caller serialises them
///   (a logged store's commit takes `&mut self`; the store manager holds every active
///   partition while it commits). An append that races a commit anyway lands in the
///   next interval or fails; it is never silently lost.
#[async_trait]
pub trait ChangelogSink: Send + Sync {
    /// Whether this sink writes plain records or transactions.
    fn guarantee(&self) -> ProcessingGuarantee;

    /// Enqueues `record` for `partition` of `topic`.
    ///
    /// Fails when a previous fatal error made the sink unusable (fenced, ...), when the
    /// enqueue buffer stays full past the sink's bound, or when the topic or partition
    /// does not exist.
    fn append(&self, topic: &str, partition: Partition, record: &ChangelogRecord) -> Result<()>;

    /// Makes every record appended since the last commit durable together with
    /// `source`, the next input offset of each input partition processed since (see
    /// the trait's behaviour list).
    ///
    /// Input offsets need a sink bound to an input: one made with
    /// [`SinkOptions::source`](super::SinkOptions::source), or a consumer group's own.
    /// Offsets handed to a sink without one are an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error, before anything
    /// is committed.
    async fn commit(&self, source: &SourceOffsets) -> Result<SinkCommit>;

    /// Ends the interval without committing (see the trait's behaviour list).
    async fn abort(&self) -> Result<()>;

    /// For each partition this sink has written, the highest acknowledged offset such
    /// that every record appended to that partition before it is in the log (and, under
    /// exactly-once, committed or in the open transaction) — including acknowledgements
    /// that arrived during a commit that then failed. After an aborted transaction it is
    /// back at the last commit. The logging layer uses it after a failed commit to
    /// append again only what the changelog lacks, so replay stays a prefix of the
    /// operations.
    fn acknowledged(&self) -> ChangelogPositions;

    /// Waits until no transaction of another producer that committed input offsets of
    /// input partition `partition` is still pending, so that a restore starting
    /// afterwards sees everything such a transaction committed to the changelogs.
    ///
    /// A partition's previous owner commits its last transaction just before the
    /// partition moves here, and the broker writes the transaction's markers after the
    /// commit returns: a restore that read the changelog's end before the markers
    /// landed would miss that transaction while input resumed after it. Kafka: a
    /// committed-offset fetch that requires stable offsets (KIP-447). The default, for
    /// changelogs whose commits are visible when they return, waits for nothing.
    async fn settle_input(&self, partition: Partition) -> Result<()> {
        let _ = partition;
        Ok(())
    }
}
