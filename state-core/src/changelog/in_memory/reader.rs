//! The read side: a reader per topic and isolation level, and its cursors.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::state::{State, TxnStatus, lock};
use crate::changelog::{
    ChangelogChunk, ChangelogReader, IsolationLevel, LogOffsets, RestoreCursor,
};
use crate::{Error, ErrorKind, Offset, Partition, Result};

/// A [`ChangelogReader`] over one topic of an
/// [`InMemoryChangelog`](super::InMemoryChangelog).
///
/// Read-committed readers end at the last stable offset and skip records of aborted
/// transactions; read-uncommitted readers see every data record up to the log end.
/// Transaction markers are never returned. Reads never wait: when nothing is readable a
/// cursor returns an empty batch at once.
#[derive(Debug, Clone)]
pub struct InMemoryReader {
    shared: Arc<Mutex<State>>,
    topic: String,
    isolation: IsolationLevel,
}

impl InMemoryReader {
    pub(super) fn new(shared: Arc<Mutex<State>>, topic: String, isolation: IsolationLevel) -> Self {
        Self {
            shared,
            topic,
            isolation,
        }
    }

    fn offsets_now(&self, partition: Partition) -> Result<LogOffsets> {
        let state = lock(&self.shared);
        let log = state.topic(&self.topic)?.partition(partition)?;
        Ok(LogOffsets {
            start: log.start(),
            end: log.end_for(self.isolation),
            log_end: log.end(),
        })
    }
}

#[async_trait]
impl ChangelogReader for InMemoryReader {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn isolation(&self) -> IsolationLevel {
        self.isolation
    }

    async fn offsets(&self, partition: Partition) -> Result<LogOffsets> {
        self.offsets_now(partition)
    }

    async fn open(&self, partition: Partition, from: Offset) -> Result<Box<dyn RestoreCursor>> {
        let offsets = self.offsets_now(partition)?;
        check_in_range(&self.topic, partition, from, offsets)?;
        Ok(Box::new(InMemoryCursor {
            reader: self.clone(),
            partition,
            position: from,
        }))
    }
}

/// A [`RestoreCursor`] over one partition of an in-memory topic.
///
/// A position that falls below the log start (delete-records after the cursor opened) or
/// past the log end (the topic was recreated) makes the next read fail with
/// [`ErrorKind::OutOfRange`], as a Kafka consumer without an offset reset policy does.
#[derive(Debug)]
pub struct InMemoryCursor {
    reader: InMemoryReader,
    partition: Partition,
    position: Offset,
}

#[async_trait]
impl RestoreCursor for InMemoryCursor {
    async fn next_chunk(&mut self, max: usize) -> Result<ChangelogChunk> {
        let state = lock(&self.reader.shared);
        let topic = &self.reader.topic;
        let log = state.topic(topic)?.partition(self.partition)?;
        let isolation = self.reader.isolation;
        let end = log.end_for(isolation);
        // The log end, not the isolation's end: a committed-only reader may sit past the
        // last stable offset only if the log shrank, which is the recreated-topic case.
        let offsets = LogOffsets {
            start: log.start(),
            end: log.end(),
            log_end: log.end(),
        };
        check_in_range(topic, self.partition, self.position, offsets)?;
        let batch = log.read(self.position, end, max, |txn| match (isolation, txn) {
            (IsolationLevel::ReadUncommitted, _) | (_, None) => true,
            (IsolationLevel::ReadCommitted, Some(txn)) => {
                state.txn_status(txn) == TxnStatus::Committed
            }
        });
        self.position = batch.next.max(self.position);
        let mut chunk = ChangelogChunk::with_capacity(self.partition, batch.records.len(), 0);
        for (offset, record) in batch.records {
            chunk.push(
                offset,
                &record.key,
                record.value.as_deref(),
                record.timestamp,
            );
            chunk.set_last_headers(record.headers);
        }
        Ok(chunk)
    }

    fn position(&self) -> Offset {
        self.position
    }
}

fn check_in_range(
    topic: &str,
    partition: Partition,
    offset: Offset,
    range: LogOffsets,
) -> Result<()> {
    if offset < range.start || offset > range.end {
        return Err(Error::new(
            ErrorKind::OutOfRange,
            format!(
                "offset {offset} is out of range for topic {topic} partition {partition} \
                 (log start {}, end {})",
                range.start, range.end
            ),
        ));
    }
    Ok(())
}
