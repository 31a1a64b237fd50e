//! Changelog records, as written and as read back.

use crate::{Offset, Partition};

/// One change to a store: a put (`value: Some`) or a delete (a tombstone, `value: None`),
/// exactly what goes into a Kafka changelog record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogRecord {
    /// The store key.
    pub key: Vec<u8>,
    /// The new value, or `None` for a delete (a Kafka tombstone: null value).
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch (Kafka's record timestamp).
    pub timestamp: i64,
    /// Record headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ChangelogRecord {
    /// A put of `key` = `value`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>, timestamp: i64) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
            timestamp,
            headers: Vec::new(),
        }
    }

    /// A tombstone for `key`.
    pub fn tombstone(key: impl Into<Vec<u8>>, timestamp: i64) -> Self {
        Self {
            key: key.into(),
            value: None,
            timestamp,
            headers: Vec::new(),
        }
    }

    /// Whether this record deletes its key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// A record read back from a changelog partition, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// The partition it was read from.
    pub partition: Partition,
    /// Its offset in that partition.
    pub offset: Offset,
    /// The record.
    pub record: ChangelogRecord,
}
