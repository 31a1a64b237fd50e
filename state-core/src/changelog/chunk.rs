//! Records read from one changelog partition in one go, kept ready to apply.

use super::{ChangelogRecord, ConsumedRecord};
use crate::{Offset, Partition, WriteBatch, WriteOp};

/// Headers of one record, by name, in order.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Consecutive records of one changelog partition, in offset order.
///
/// Keys and values live in one [`WriteBatch`] (put for a value, delete for a tombstone),
/// so restore hands the chunk's batch to the store without copying or allocating per
/// record; offsets and timestamps sit in parallel vectors, and the rare headers in a
/// sparse list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogChunk {
    partition: Partition,
    batch: WriteBatch,
    offsets: Vec<Offset>,
    timestamps: Vec<i64>,
    /// `(index, headers)` for the records that carry any, by ascending index.
    headers: Vec<(usize, Headers)>,
}

impl ChangelogChunk {
    /// Bytes of bookkeeping per record besides its key and value.
    pub const RECORD_OVERHEAD: usize = WriteBatch::OP_OVERHEAD + 2 * std::mem::size_of::<i64>();

    /// An empty chunk of `partition`.
    pub fn new(partition: Partition) -> Self {
        Self::with_capacity(partition, 0, 0)
    }

    /// An empty chunk with room for `records` records of `bytes` key and value bytes.
    pub fn with_capacity(partition: Partition, records: usize, bytes: usize) -> Self {
        Self {
            partition,
            batch: WriteBatch::with_capacity_and_bytes(records, bytes),
            offsets: Vec::with_capacity(records),
            timestamps: Vec::with_capacity(records),
            headers: Vec::new(),
        }
    }

    /// Appends the record at `offset`: a put of `value`, or a tombstone when `value` is
    /// `None`. Offsets must ascend (restore cuts a chunk at its end offset by binary
    /// search).
    pub fn push(&mut self, offset: Offset, key: &[u8], value: Option<&[u8]>, timestamp: i64) {
        self.batch.append(key, value);
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
    }

    /// Removes every record, keeping the allocated room, so a reader can fill the chunk
    /// again instead of allocating a new one.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Sets the headers of the record appended last.
    pub fn set_last_headers(&mut self, headers: Headers) {
        if let Some(index) = self.offsets.len().checked_sub(1)
            && !headers.is_empty()
        {
            self.headers.retain(|(i, _)| *i != index);
            self.headers.push((index, headers));
        }
    }

    /// Appends a record read back as a [`ConsumedRecord`].
    pub fn push_record(&mut self, consumed: &ConsumedRecord) {
        let record = &consumed.record;
        self.push(
            consumed.offset,
            &record.key,
            record.value.as_deref(),
            record.timestamp,
        );
        self.set_last_headers(record.headers.clone());
    }

    /// The changelog partition the records come from.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The records as store operations, in offset order.
    pub fn batch(&self) -> &WriteBatch {
        &self.batch
    }

    /// The offset of each record, ascending.
    pub fn offsets(&self) -> &[Offset] {
        &self.offsets
    }

    /// The offset of the last record.
    pub fn last_offset(&self) -> Option<Offset> {
        self.offsets.last().copied()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn data_bytes(&self) -> usize {
        self.batch.data_bytes()
    }

    /// Bytes the records take in memory: keys and values plus each record's bookkeeping
    /// (for small records the bookkeeping is the larger part).
    pub fn footprint(&self) -> usize {
        self.data_bytes() + self.len() * Self::RECORD_OVERHEAD
    }

    /// The `index`-th record: its offset and its operation.
    pub fn get(&self, index: usize) -> Option<(Offset, WriteOp<'_>)> {
        Some((*self.offsets.get(index)?, self.batch.get(index)?))
    }

    /// Drops every record at or after offset `end`.
    pub fn truncate_at(&mut self, end: Offset) {
        let keep = self.offsets.partition_point(|&offset| offset < end);
        self.truncate(keep);
    }

    fn truncate(&mut self, len: usize) {
        if len == 0 {
            self.batch.clear();
        }
        self.batch.truncate(len);
        self.offsets.truncate(len);
        self.timestamps.truncate(len);
        self.headers.retain(|(index, _)| *index < len);
    }

    /// A new chunk with a copy of the records at indexes `range`.
    pub fn copy_range(&self, range: std::ops::Range<usize>) -> Self {
        let range = range.start.min(self.len())..range.end.min(self.len());
        let mut out = Self::with_capacity(self.partition, range.len(), 0);
        for index in range {
            if let Some((offset, op)) = self.get(index) {
                out.push(offset, op.key(), op.value(), self.timestamps[index]);
                if let Some((_, headers)) = self.headers.iter().find(|(i, _)| *i == index) {
                    out.set_last_headers(headers.clone());
                }
            }
        }
        out
    }

    /// The records, each copied out as a [`ConsumedRecord`].
    pub fn into_records(self) -> Vec<ConsumedRecord> {
        let mut headers = self.headers.into_iter().peekable();
        self.batch
            .iter()
            .zip(self.offsets.iter().zip(&self.timestamps))
            .enumerate()
            .map(|(index, (op, (&offset, &timestamp)))| {
                let record_headers = match headers.peek() {
                    Some((i, _)) if *i == index => headers.next().map(|(_, h)| h),
                    _ => None,
                };
                ConsumedRecord {
                    partition: self.partition,
                    offset,
                    record: ChangelogRecord {
                        key: op.key().to_vec(),
                        value: op.value().map(<[u8]>::to_vec),
                        timestamp,
                        headers: record_headers.unwrap_or_default(),
                    },
                }
            })
            .collect()
    }
}

impl Extend<ConsumedRecord> for ChangelogChunk {
    fn extend<I: IntoIterator<Item = ConsumedRecord>>(&mut self, records: I) {
        for record in records {
            self.push_record(&record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumed(offset: Offset, key: &[u8], value: Option<&[u8]>) -> ConsumedRecord {
        ConsumedRecord {
            partition: 3,
            offset,
            record: ChangelogRecord {
                key: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
                timestamp: offset * 10,
                headers: if offset == 5 {
                    vec![("h".to_owned(), b"x".to_vec())]
                } else {
                    Vec::new()
                },
            },
        }
    }

    fn sample() -> Vec<ConsumedRecord> {
        vec![
            consumed(2, b"a", Some(b"1")),
            consumed(5, b"b", None),
            consumed(6, b"a", Some(b"")),
        ]
    }

    #[test]
    fn records_round_trip_with_offsets_timestamps_and_headers() {
        let mut chunk = ChangelogChunk::new(3);
        chunk.extend(sample());
        assert_eq!(chunk.len(), 3);
        assert_eq!(chunk.offsets(), [2, 5, 6]);
        assert_eq!(chunk.last_offset(), Some(6));
        assert_eq!(chunk.get(1), Some((5, WriteOp::Delete { key: b"b" })));
        assert_eq!(chunk.into_records(), sample());
    }

    #[test]
    fn truncate_at_drops_records_at_and_after_the_end() {
        let mut chunk = ChangelogChunk::new(3);
        chunk.extend(sample());
        chunk.truncate_at(6);
        assert_eq!(chunk.clone().into_records(), sample()[..2]);
        chunk.truncate_at(5);
        assert_eq!(chunk.clone().into_records(), sample()[..1]);
        chunk.truncate_at(0);
        assert!(chunk.is_empty());
    }

    #[test]
    fn copy_range_keeps_the_selected_records_whole() {
        let mut chunk = ChangelogChunk::new(3);
        chunk.extend(sample());
        assert_eq!(chunk.copy_range(1..3).into_records(), sample()[1..]);
        assert_eq!(chunk.copy_range(2..9).into_records(), sample()[2..]);
        assert!(chunk.copy_range(4..9).is_empty());
    }
}
