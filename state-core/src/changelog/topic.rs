//! Changelog topics and the factory that hands out sinks and readers.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ChangelogReader, ChangelogSink, InputBinding, IsolationLevel, ProcessingGuarantee};
use crate::Result;

/// The changelog topic name Kafka Streams uses: `<application.id>-<store>-changelog`.
pub fn changelog_topic_name(application_id: &str, store_name: &str) -> String {
    format!("{application_id}-{store_name}-changelog")
}

/// The layout and configuration a changelog topic must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic name.
    pub name: String,
    /// Number of partitions (one per input partition).
    pub partitions: i32,
    /// Replication factor, or `None` for the cluster default.
    pub replication_factor: Option<i16>,
    /// Topic configuration; always holds `cleanup.policy`, and the store's
    /// `with_logging_enabled` config wins over the defaults.
    pub config: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A compacted changelog topic with `partitions` partitions and `user_config` laid
    /// over the default `cleanup.policy=compact`.
    pub fn changelog(
        name: impl Into<String>,
        partitions: i32,
        user_config: &BTreeMap<String, String>,
    ) -> Self {
        let mut config = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
        config.extend(user_config.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            name: name.into(),
            partitions,
            replication_factor: None,
            config,
        }
    }
}

/// How a sink is set up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkOptions {
    /// Plain or transactional writes.
    pub guarantee: ProcessingGuarantee,
    /// The transactional id for exactly-once; a new sink with the same id fences the old
    /// one and aborts its open transaction. Required for exactly-once.
    pub transactional_id: Option<String>,
    /// The input whose offsets this sink's commits carry, if any (see
    /// [`ChangelogSink::commit`]).
    pub source: Option<InputBinding>,
}

impl SinkOptions {
    /// Options for a sink with `guarantee` and, for exactly-once, `transactional_id`.
    pub fn new(guarantee: ProcessingGuarantee, transactional_id: impl Into<String>) -> Self {
        Self {
            guarantee,
            transactional_id: Some(transactional_id.into()),
            source: None,
        }
    }

    /// Commits also carry the input offsets of `source`.
    pub fn with_source(mut self, source: InputBinding) -> Self {
        self.source = Some(source);
        self
    }
}

/// A changelog service (Kafka, or the in-process log): creates topics and hands out
/// sinks (each writes any of its topics) and readers (each reads one topic).
#[async_trait]
pub trait Changelog: Send + Sync {
    /// Creates the topic if it is missing; an existing topic with another partition count
    /// is an [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error.
    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()>;

    /// A sink writing to any of this changelog's topics. Under exactly-once, creating it
    /// fences an older sink with the same transactional id and waits until that sink's
    /// open transaction is aborted.
    async fn sink(&self, options: &SinkOptions) -> Result<Arc<dyn ChangelogSink>>;

    /// A reader of `topic`.
    async fn reader(
        &self,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<Arc<dyn ChangelogReader>>;
}
