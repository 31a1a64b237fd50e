//! Input positions committed together with the changelog.

use std::collections::BTreeMap;

use crate::{Offset, Partition};

/// The input a sink commits offsets for: a consumer group reading one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InputBinding {
    /// The consumer group (`group.id`; Kafka Streams uses the application id).
    pub group_id: String,
    /// The input topic; its partitions are the store partitions.
    pub topic: String,
}

impl InputBinding {
    /// Group `group_id` reading `topic`.
    pub fn new(group_id: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            topic: topic.into(),
        }
    }
}

/// The next input offset to consume of each input partition a commit covers (Kafka's
/// `sendOffsetsToTransaction`, or the consumer's commit after a flush at-least-once).
/// The topic and group are the sink's: see [`InputBinding`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOffsets {
    offsets: BTreeMap<Partition, Offset>,
}

impl SourceOffsets {
    /// No input offsets: a commit of changelog records only.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the next offset to consume of `partition`.
    pub fn set(&mut self, partition: Partition, next: Offset) {
        self.offsets.insert(partition, next);
    }

    /// The next offset to consume of `partition`, if the commit covers it.
    pub fn get(&self, partition: Partition) -> Option<Offset> {
        self.offsets.get(&partition).copied()
    }

    /// Whether the commit carries no input offset.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// `(partition, next offset)` pairs in partition order.
    pub fn iter(&self) -> impl Iterator<Item = (Partition, Offset)> + '_ {
        self.offsets.iter().map(|(&p, &o)| (p, o))
    }
}

impl FromIterator<(Partition, Offset)> for SourceOffsets {
    fn from_iter<I: IntoIterator<Item = (Partition, Offset)>>(iter: I) -> Self {
        Self {
            offsets: iter.into_iter().collect(),
        }
    }
}
