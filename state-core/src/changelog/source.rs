//! Input positions committed together with the changelog under exactly-once.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Offset, Partition};

/// Input offsets a stream processor commits inside the changelog transaction, so its
/// input position and its state advance together or not at all (Kafka's
/// `sendOffsetsToTransaction`).
#[derive(Clone)]
pub struct SourceOffsets {
    /// The input topic.
    pub topic: String,
    /// The next offset to consume, per input partition.
    pub offsets: BTreeMap<Partition, Offset>,
    /// The consumer group's identity in the form the changelog implementation needs —
    /// for Kafka, rdkafka's `ConsumerGroupMetadata` — with which the broker fences an
    /// instance of an older group generation.
    pub group: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for SourceOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceOffsets")
            .field("topic", &self.topic)
            .field("offsets", &self.offsets)
            .finish_non_exhaustive()
    }
}
