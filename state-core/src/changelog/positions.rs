//! Acknowledged offsets across every changelog topic one sink writes.

use std::collections::BTreeMap;

use crate::{Offset, Partition, Position};

/// For each changelog topic a sink has written, the [`Position`] it acknowledged: the
/// highest offset per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangelogPositions {
    topics: BTreeMap<String, Position>,
}

impl ChangelogPositions {
    /// No acknowledged offset anywhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// The acknowledged offset of `partition` of `topic`, if any.
    pub fn applied(&self, topic: &str, partition: Partition) -> Option<Offset> {
        self.topics.get(topic)?.applied(partition)
    }

    /// The position acknowledged for `topic` (empty when nothing was).
    pub fn topic(&self, topic: &str) -> Position {
        self.topics.get(topic).cloned().unwrap_or_default()
    }

    /// Records `offset` as acknowledged for `partition` of `topic`, replacing what was.
    pub fn set(&mut self, topic: &str, partition: Partition, offset: Offset) {
        match self.topics.get_mut(topic) {
            Some(position) => position.set(partition, offset),
            None => {
                self.topics
                    .insert(topic.to_owned(), Position::of(partition, offset));
            }
        }
    }

    /// Raises `partition` of `topic` to at least `offset`.
    pub fn raise(&mut self, topic: &str, partition: Partition, offset: Offset) {
        if self
            .applied(topic, partition)
            .is_none_or(|now| now < offset)
        {
            self.set(topic, partition, offset);
        }
    }

    /// Forgets every offset of `topic` (a recreated topic starts over).
    pub fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Whether no offset was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.topics.values().all(Position::is_empty)
    }

    /// `(topic, partition, offset)` triples in topic, then partition order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Partition, Offset)> + '_ {
        self.topics
            .iter()
            .flat_map(|(topic, position)| position.iter().map(move |(p, o)| (topic.as_str(), p, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_keep_their_own_offsets() {
        let mut positions = ChangelogPositions::new();
        assert!(positions.is_empty());
        positions.set("a", 0, 5);
        positions.raise("a", 0, 3);
        positions.raise("b", 1, 7);
        assert_eq!(positions.applied("a", 0), Some(5));
        assert_eq!(positions.applied("b", 1), Some(7));
        assert_eq!(positions.applied("b", 0), None);
        assert_eq!(positions.topic("a"), Position::of(0, 5));
        positions.forget("a");
        assert_eq!(positions.applied("a", 0), None);
        assert_eq!(positions.iter().collect::<Vec<_>>(), vec![("b", 1, 7)]);
    }
}
