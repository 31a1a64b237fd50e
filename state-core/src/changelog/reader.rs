//! The read side of a changelog, used by restore.

use async_trait::async_trait;

use super::{ChangelogChunk, ConsumedRecord, IsolationLevel};
use crate::{Offset, Partition, Result};

/// The readable extent of one changelog partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// The first offset still in the log (Kafka's log start offset; above 0 after
    /// retention or delete-records).
    pub start: Offset,
    /// One past the last readable offset (Kafka's high watermark, or the last stable
    /// offset under read-committed). `start == end` means nothing to read.
    pub end: Offset,
    /// One past the last offset in the log whatever the isolation (Kafka's high
    /// watermark): equal to `end` read-uncommitted, and above it read-committed while a
    /// transaction is open. A store position at or past `end` but below `log_end` sits
    /// after an open transaction, not in a recreated topic.
    pub log_end: Offset,
}

/// Reads changelog partitions back, for restore.
#[async_trait]
pub trait ChangelogReader: Send + Sync {
    /// The changelog topic.
    fn topic(&self) -> &str;

    /// Which records this reader returns.
    fn isolation(&self) -> IsolationLevel;

    /// The current start and end offsets of `partition`.
    async fn offsets(&self, partition: Partition) -> Result<LogOffsets>;

    /// A cursor over `partition` starting at `from`. `from` below the log start or past the
    /// end yields an [`ErrorKind::OutOfRange`](crate::ErrorKind::OutOfRange) error, either
    /// here or from the cursor's first read.
    async fn open(&self, partition: Partition, from: Offset) -> Result<Box<dyn RestoreCursor>>;

    /// [`open`](Self::open), telling the cursor how far it may read ahead of its caller.
    /// A reader that fetches over a network sizes its prefetching by `read_ahead`; the
    /// default ignores it.
    async fn open_with(
        &self,
        partition: Partition,
        from: Offset,
        read_ahead: ReadAhead,
    ) -> Result<Box<dyn RestoreCursor>> {
        let _ = read_ahead;
        self.open(partition, from).await
    }
}

/// How much a cursor may fetch before its caller asks for it (restore's memory bound),
/// and what of each record it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAhead {
    /// Records per chunk the caller will ask for (its store write size).
    pub chunk_records: usize,
    /// Bytes of records the cursor and its client may hold fetched and not yet handed
    /// out, chunks in flight included.
    pub max_bytes: usize,
    /// Whether chunks carry the records' headers. A restore applies keys and values
    /// only; a Kafka client parses a record's header section (allocating, even when it
    /// holds no header) only when asked, which took a quarter of the reading thread's
    /// time at 10M records (`BENCHMARKS.md`).
    pub headers: bool,
}

/// A position in one changelog partition that reads forward in batches.
#[async_trait]
pub trait RestoreCursor: Send {
    /// Reads up to `max` records at or after [`position`](Self::position), waiting at
    /// most the reader's poll timeout. May return no record while still advancing the
    /// position (over transaction markers, aborted or compacted-away offsets), or without
    /// advancing when nothing arrived in time.
    async fn next_chunk(&mut self, max: usize) -> Result<ChangelogChunk>;

    /// Hands back a chunk this cursor returned, once its records are applied, so the
    /// cursor can fill it again instead of allocating (restore recycles every chunk). The
    /// default drops it.
    fn recycle(&mut self, chunk: ChangelogChunk) {
        drop(chunk);
    }

    /// [`next_chunk`](Self::next_chunk), each record copied out on its own.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<ConsumedRecord>> {
        Ok(self.next_chunk(max).await?.into_records())
    }

    /// The next offset this cursor will read. Restore is complete when it reaches the end
    /// offset captured at restore start — not when a record at `end - 1` is seen, since
    /// markers and compaction leave gaps.
    fn position(&self) -> Offset;
}
