//! An in-process changelog that models a Kafka topic closely enough for the conformance
//! suite, for tests and embedded use.
//!
//! [`InMemoryChangelog`] holds topics of N partitions. Each partition is a log of entries
//! at offsets from 0: data records and transaction markers (a marker takes an offset, as
//! in Kafka), between a log start offset and a log end offset (the next offset). It hands
//! out [`InMemorySink`]s (a producer for every topic: `append` buffers, `commit` writes) and
//! [`InMemoryReader`]s (a consumer with an isolation level), and offers the admin and
//! fault knobs the conformance suite needs: delete-records ([`truncate_before`]),
//! compaction ([`compact`]), topic recreation ([`recreate_topic`]), a coordinator timeout
//! ([`abort_open_transactions`]) and injected flush and append failures
//! ([`fail_next_flush`], [`fail_flush_after`], [`fail_appends_after`]).
//!
//! Transactions follow Kafka: records flushed inside a transaction enter the log at once
//! (read-uncommitted readers see them), commit and abort write a marker to every
//! partition of every topic the transaction touched, the last stable offset (the first
//! offset of the oldest open transaction) bounds read-committed readers, and a new sink
//! with the same transactional id aborts the old one's open transaction and fences it.
//! Input offsets sent into a transaction are committed with it, as Kafka's
//! `sendOffsetsToTransaction`; [`committed_offsets`](InMemoryChangelog::committed_offsets)
//! reads them back.
//!
//! Nothing here waits: the async methods finish without suspending, and no lock is held
//! across an `await`.
//!
//! [`truncate_before`]: InMemoryChangelog::truncate_before
//! [`compact`]: InMemoryChangelog::compact
//! [`recreate_topic`]: InMemoryChangelog::recreate_topic
//! [`abort_open_transactions`]: InMemoryChangelog::abort_open_transactions
//! [`fail_next_flush`]: InMemoryChangelog::fail_next_flush
//! [`fail_flush_after`]: InMemoryChangelog::fail_flush_after
//! [`fail_appends_after`]: InMemoryChangelog::fail_appends_after

mod admin;
mod log;
mod reader;
mod sink;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::changelog::{
    Changelog, ChangelogReader, ChangelogSink, InputBinding, IsolationLevel, ProcessingGuarantee,
    SinkOptions, TopicSpec,
};
use crate::{Error, Offset, Partition, Result};

pub use admin::{LoggedRecord, RecordStatus, TxnMarker};
pub use reader::{InMemoryCursor, InMemoryReader};
pub use sink::InMemorySink;
use state::{State, Topic, lock};

/// An in-process changelog service. Cloning is cheap and every clone shares the same
/// topics, so a test can keep one handle for assertions and fault injection while the
/// code under test writes through another.
#[derive(Debug, Clone, Default)]
pub struct InMemoryChangelog {
    shared: Arc<Mutex<State>>,
}

impl InMemoryChangelog {
    /// An empty changelog with no topics.
    pub fn new() -> Self {
        Self::default()
    }

    /// The spec `topic` was created with, or `None` when it does not exist.
    pub fn topic_config(&self, topic: &str) -> Option<TopicSpec> {
        lock(&self.shared).topics.get(topic).map(|t| t.spec.clone())
    }

    /// Whether `topic` exists.
    pub fn has_topic(&self, topic: &str) -> bool {
        lock(&self.shared).topics.contains_key(topic)
    }

    /// Creates `spec.name` if it is missing (see [`Changelog::ensure_topic`]), without
    /// an executor.
    pub fn ensure_topic_now(&self, spec: &TopicSpec) -> Result<()> {
        if spec.name.is_empty() || spec.partitions <= 0 {
            return Err(Error::invalid_input(format!(
                "topic spec {:?} with {} partitions: a topic needs a name and at least one \
                 partition",
                spec.name, spec.partitions
            )));
        }
        let mut state = lock(&self.shared);
        match state.topics.get(&spec.name) {
            Some(existing) if existing.spec.partitions != spec.partitions => {
                Err(Error::invalid_input(format!(
                    "topic {} exists with {} partitions, but {} were requested",
                    spec.name, existing.spec.partitions, spec.partitions
                )))
            }
            // Like Kafka Streams, leave an existing topic's configuration alone.
            Some(_) => Ok(()),
            None => {
                state
                    .topics
                    .insert(spec.name.clone(), Topic::new(spec.clone(), 0));
                Ok(())
            }
        }
    }

    /// A sink (see [`Changelog::sink`]), without an executor. Under exactly-once it
    /// fences an older sink with the same transactional id and aborts its open
    /// transaction.
    pub fn sink_now(&self, options: &SinkOptions) -> Result<InMemorySink> {
        let transactional_id = match (options.guarantee, options.transactional_id.as_deref()) {
            (ProcessingGuarantee::ExactlyOnce, Some(id)) if !id.is_empty() => Some(id),
            (ProcessingGuarantee::ExactlyOnce, _) => {
                return Err(Error::invalid_input(
                    "an exactly-once sink needs a non-empty transactional id",
                ));
            }
            // An at-least-once sink writes plain records; a transactional id means nothing.
            (ProcessingGuarantee::AtLeastOnce, _) => None,
        };
        let mut state = lock(&self.shared);
        let producer = transactional_id.map(|id| (id.to_owned(), state.register_producer(id)));
        Ok(InMemorySink::new(
            Arc::clone(&self.shared),
            options.guarantee,
            producer,
            options.source.clone(),
        ))
    }

    /// The input offsets committed for `input` so far (as Kafka's `__consumer_offsets`
    /// holds them for a group): the next offset to consume per partition.
    pub fn committed_offsets(&self, input: &InputBinding) -> BTreeMap<Partition, Offset> {
        lock(&self.shared)
            .group_offsets
            .get(input)
            .cloned()
            .unwrap_or_default()
    }

    /// A reader of `topic` (see [`Changelog::reader`]), without an executor.
    pub fn reader_now(&self, topic: &str, isolation: IsolationLevel) -> Result<InMemoryReader> {
        lock(&self.shared).topic(topic)?;
        Ok(InMemoryReader::new(
            Arc::clone(&self.shared),
            topic.to_owned(),
            isolation,
        ))
    }
}

#[async_trait]
impl Changelog for InMemoryChangelog {
    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()> {
        self.ensure_topic_now(spec)
    }

    async fn sink(&self, options: &SinkOptions) -> Result<Arc<dyn ChangelogSink>> {
        Ok(Arc::new(self.sink_now(options)?))
    }

    async fn reader(
        &self,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<Arc<dyn ChangelogReader>> {
        Ok(Arc::new(self.reader_now(topic, isolation)?))
    }
}
