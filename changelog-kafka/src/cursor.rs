//! [`KafkaCursor`]: reads one changelog partition forward on a thread of its own, copying
//! each record once into chunks the store applies as they are.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::Offset as KafkaOffset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use state_core::{ChangelogChunk, Error, ErrorKind, Offset, Partition, RestoreCursor, Result};

use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};
use crate::fetch_queue::{FetchQueue, ReadyMessage};

/// Chunks waiting in the hand-over channel: with the one being filled and the one the
/// caller is applying, four chunks share the cursor's half of a read-ahead budget.
pub(crate) const CHUNKS_AHEAD: usize = 2;

/// What the reading thread hands over: a chunk and the position after it.
type Fetched = Result<(ChangelogChunk, Offset)>;

/// Reads one partition forward from an offset. A dedicated thread takes the partition's
/// records from its own librdkafka queue in batches (`fetch_queue.rs`) and copies each
/// record once, into a [`ChangelogChunk`] the store can apply as it is, and
/// keeps up to [`CHUNKS_AHEAD`] chunks ready, so fetching overlaps with the store applying
/// the previous chunk (a poll handed to the blocking pool per batch cost ~3 ms of thread
/// hand-offs a batch on a busy 2-core machine: restore ran at a third of a raw consumer's
/// speed). The thread ends when the cursor is dropped.
pub(crate) struct KafkaCursor {
    partition: Partition,
    fetched: tokio::sync::mpsc::Receiver<Fetched>,
    /// Where applied chunks go back to the reading thread.
    recycle: std::sync::mpsc::SyncSender<ChangelogChunk>,
    /// The current fetched chunk and how many of its records were handed out.
    pending: Option<(ChangelogChunk, usize)>,
    /// The position after the current fetched chunk.
    pending_end: Offset,
    position: Offset,
    topic: String,
}

/// How the reading thread cuts chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLimits {
    /// At most this many records.
    pub(crate) records: usize,
    /// Closed once its [`ChangelogChunk::footprint`] reaches this.
    pub(crate) bytes: usize,
    /// Key and value bytes to reserve up front.
    pub(crate) data_hint: usize,
    /// Whether records' headers are copied ([`ReadAhead::headers`](state_core::ReadAhead)).
    pub(crate) headers: bool,
}

impl ChunkLimits {
    /// Records to make room for up front: a chunk's record limit, unless its byte limit
    /// stops it sooner even for empty records (a huge batch size must not reserve
    /// gigabytes).
    fn reserved_records(&self) -> usize {
        let per_record = ChangelogChunk::RECORD_OVERHEAD.max(1);
        self.records.min(self.bytes / per_record + 1)
    }
}

impl KafkaCursor {
    /// Starts reading `partition` from `from` through `fetch`, the partition's queue split
    /// off an assigned consumer.
    pub(crate) fn start(
        mut fetch: FetchQueue,
        topic: String,
        partition: Partition,
        from: Offset,
        poll_timeout: Duration,
        limits: ChunkLimits,
    ) -> Result<Self> {
        let (sender, fetched) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        // Applied chunks come back to be filled again: no allocation per chunk, and no
        // buffer freed on another thread than the one that allocated it.
        let (recycle, spares) = std::sync::mpsc::sync_channel::<ChangelogChunk>(CHUNKS_AHEAD + 2);
        let thread_topic = topic.clone();
        std::thread::Builder::new()
            .name(format!("restore-{partition}"))
            .spawn(move || {
                let mut position = from;
                let mut limits = limits;
                while !sender.is_closed() {
                    let empty = match spares.try_recv() {
                        Ok(mut spare) => {
                            spare.clear();
                            spare
                        }
                        Err(_) => ChangelogChunk::with_capacity(
                            partition,
                            limits.reserved_records(),
                            limits.data_hint,
                        ),
                    };
                    let chunk = poll_chunk(
                        &mut fetch,
                        &thread_topic,
                        empty,
                        position,
                        limits,
                        poll_timeout,
                    );
                    let failed = chunk.is_err();
                    if let Ok((chunk, next)) = &chunk {
                        position = *next;
                        // Reserve what the last chunk needed: records tend to keep their size.
                        limits.data_hint = chunk.data_bytes().min(limits.bytes);
                    }
                    if sender.blocking_send(chunk).is_err() || failed {
                        break;
                    }
                }
            })
            .map_err(|err| {
                Error::internal(format!(
                    "starting the reading thread for topic {topic} partition {partition}: {err}"
                ))
            })?;
        Ok(Self {
            partition,
            fetched,
            recycle,
            pending: None,
            pending_end: from,
            position: from,
            topic,
        })
    }
}

#[async_trait]
impl RestoreCursor for KafkaCursor {
    async fn next_chunk(&mut self, max: usize) -> Result<ChangelogChunk> {
        if max == 0 {
            return Ok(ChangelogChunk::new(self.partition));
        }
        let (chunk, taken) = match self.pending.take() {
            Some((chunk, taken)) if taken < chunk.len() => (chunk, taken),
            _ => {
                let (chunk, end) = self.fetched.recv().await.ok_or_else(|| {
                    Error::internal(format!(
                        "the reading thread of topic {} stopped after an earlier error",
                        self.topic
                    ))
                })??;
                self.pending_end = end;
                (chunk, 0)
            }
        };
        // The common case hands the whole chunk over as it is; a caller asking for fewer
        // records than a chunk holds gets copies of them.
        if taken == 0 && chunk.len() <= max {
            self.position = self.position.max(self.pending_end);
            return Ok(chunk);
        }
        let until = chunk.len().min(taken + max);
        let out = chunk.copy_range(taken..until);
        self.position = match chunk.get(until) {
            Some((next, _)) => next,
            None => self.pending_end,
        };
        self.pending = Some((chunk, until));
        Ok(out)
    }

    fn position(&self) -> Offset {
        self.position
    }

    fn recycle(&mut self, chunk: ChangelogChunk) {
        // A full spare queue (or a stopped thread) just drops the chunk.
        let _ = self.recycle.try_send(chunk);
    }
}

/// The first wait for a record before asking the consumer whether its position moved
/// without one; doubled after each empty wait.
const FIRST_IDLE_CHECK: Duration = Duration::from_millis(5);

/// Waits for the first record until the timeout, then takes what is already fetched, up
/// to `limits`, into `chunk` (empty). Returns it and the consumer's position afterwards.
/// Records `fetch` took earlier come first; the client's own events (its errors and log
/// lines, on the consumer's queue) are served once per chunk and while waiting.
///
/// While nothing arrives it asks the consumer for its position after 5 ms, then after
/// waits that double: a partition whose last offsets are a transaction marker or a
/// compacted gap yields no record, and only the position shows the restore has reached
/// its end (waiting out the whole poll timeout instead added 500 ms to every restore of an
/// exactly-once changelog).
fn poll_chunk(
    fetch: &mut FetchQueue,
    topic: &str,
    mut chunk: ChangelogChunk,
    position: Offset,
    limits: ChunkLimits,
    timeout: Duration,
) -> Result<(ChangelogChunk, Offset)> {
    let partition = chunk.partition();
    let deadline = deadline_after(timeout);
    let mut idle_check = FIRST_IDLE_CHECK;
    serve_client_events(fetch.consumer(), topic, partition, position)?;
    while chunk.len() < limits.records && chunk.footprint() < limits.bytes {
        let wait = if chunk.is_empty() && !fetch.holds_records() {
            idle_check.min(deadline.saturating_duration_since(Instant::now()))
        } else {
            Duration::ZERO
        };
        let up_to = records_to_fill(&chunk, limits);
        // The message is destroyed at the end of this statement, before `fetch` is used
        // again.
        let taken = match fetch.next(wait, up_to) {
            Some(message) => match message.error() {
                None => {
                    append(&mut chunk, topic, &message, limits.headers)?;
                    Taken::Record
                }
                Some(err) => Taken::Error(err),
            },
            None => Taken::Nothing,
        };
        let failed = match taken {
            Taken::Record => continue,
            Taken::Error(err) => err,
            Taken::Nothing if !chunk.is_empty() => break,
            Taken::Nothing => {
                let consumer = fetch.consumer();
                serve_client_events(consumer, topic, partition, position)?;
                let now_at = consumer_position(consumer, topic, partition)?;
                if now_at > position || Instant::now() >= deadline {
                    return Ok((chunk, now_at.max(position)));
                }
                idle_check = idle_check.saturating_mul(2);
                continue;
            }
        };
        if !is_transient(&failed) {
            return Err(read_error(
                fetch.consumer(),
                topic,
                partition,
                position,
                failed,
            ));
        }
        // librdkafka reconnects by itself; the poll deadline bounds the wait.
        log::debug!("reading topic {topic} partition {partition}: {failed}");
    }
    // After a record, reading resumes right behind it; a gap after it (markers, aborted
    // or compacted records) is crossed by the next call. Only a wait that brought nothing
    // asks the consumer for its position, which moves over such gaps — asking every time
    // costs a round trip through librdkafka's main thread (~3 ms a batch).
    match chunk.last_offset() {
        Some(last) => Ok((chunk, (last + 1).max(position))),
        None => Ok((chunk, position)),
    }
}

/// What one take from the fetch queue brought.
enum Taken {
    /// A record, now in the chunk.
    Record,
    /// A consumer error.
    Error(KafkaError),
    /// Nothing within the wait.
    Nothing,
}

/// Serves what the consumer's own queue holds: rust-rdkafka logs the client's log lines,
/// connection errors librdkafka recovers from are logged here, any other error ends the
/// read. Records never arrive there: the partition has a queue of its own.
fn serve_client_events(
    consumer: &BaseConsumer,
    topic: &str,
    partition: Partition,
    position: Offset,
) -> Result<()> {
    while let Some(event) = consumer.poll(Duration::ZERO) {
        match event {
            Ok(message) => {
                return Err(Error::internal(format!(
                    "a record of topic {} partition {} offset {} arrived on the consumer's \
                     queue instead of its partition's",
                    message.topic(),
                    message.partition(),
                    message.offset()
                )));
            }
            Err(err) if is_transient(&err) => {
                log::debug!("reading topic {topic} partition {partition}: {err}");
            }
            Err(err) => return Err(read_error(consumer, topic, partition, position, err)),
        }
    }
    Ok(())
}

/// How many more records `chunk` takes before it closes, if the next ones are as large as
/// those it holds: what a batch from the fetch queue may take at once. One for an empty
/// chunk, which has nothing to go by.
fn records_to_fill(chunk: &ChangelogChunk, limits: ChunkLimits) -> usize {
    if chunk.is_empty() {
        return 1;
    }
    let by_count = limits.records.saturating_sub(chunk.len());
    let per_record = (chunk.footprint() / chunk.len().max(1)).max(1);
    let by_bytes = limits
        .bytes
        .saturating_sub(chunk.footprint())
        .div_ceil(per_record);
    by_count.min(by_bytes).max(1)
}

/// The consumer's position in `partition` (the offset after the last message it
/// delivered or skipped), or -1 when it has none yet.
fn consumer_position(consumer: &BaseConsumer, topic: &str, partition: Partition) -> Result<Offset> {
    let assigned = consumer
        .position()
        .map_err(|err| kafka_error("reading the position", At::partition(topic, partition), err))?;
    Ok(
        match assigned
            .find_partition(topic, partition)
            .map(|e| e.offset())
        {
            Some(KafkaOffset::Offset(offset)) => offset,
            _ => -1,
        },
    )
}

/// Connection errors librdkafka reports while it reconnects on its own. "All broker
/// connections are down" is one of them: it fires whenever the last connection drops, even
/// for a moment (a CI run saw it abort a restore from a healthy single broker under load);
/// a broker that stays away ends the restore at its stall timeout instead.
fn is_transient(err: &KafkaError) -> bool {
    matches!(
        err,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    )
}

fn read_error(
    consumer: &BaseConsumer,
    topic: &str,
    partition: Partition,
    position: Offset,
    err: KafkaError,
) -> Error {
    let error = kafka_error("reading", At::offset(topic, partition, position), err);
    if error.kind() != ErrorKind::OutOfRange {
        return error;
    }
    // Name the log's extent so the operator sees why the offset is outside it.
    match consumer.fetch_watermarks(topic, partition, Duration::from_secs(2)) {
        Ok((start, end)) => error.context(format!("log start {start}, end {end}")),
        Err(_) => error,
    }
}

/// Copies one record into `chunk`: key and value once, and with `headers` its headers
/// when there are any.
fn append(
    chunk: &mut ChangelogChunk,
    topic: &str,
    message: &ReadyMessage<'_>,
    headers: bool,
) -> Result<()> {
    let offset = message.offset();
    let Some(key) = message.key() else {
        return Err(Error::corruption(format!(
            "changelog record without a key at topic {topic} partition {} offset {offset}",
            chunk.partition()
        )));
    };
    chunk.push(offset, key, message.payload(), message.timestamp());
    if !headers {
        return Ok(());
    }
    match message.headers() {
        Ok(read) if read.is_empty() => {}
        Ok(read) => chunk.set_last_headers(read),
        Err(name) => {
            return Err(Error::corruption(format!(
                "changelog record with a header name that is not UTF-8 ({name:?}) at topic \
                 {topic} partition {} offset {offset}",
                chunk.partition()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_takes_what_the_chunk_has_room_for_by_records_and_by_bytes() {
        let mut chunk = ChangelogChunk::new(0);
        chunk.push(0, b"key-0", Some(&[0u8; 100]), 1);
        let per_record = chunk.footprint();
        let limits = |records, bytes| ChunkLimits {
            records,
            bytes,
            data_hint: 0,
            headers: false,
        };
        assert_eq!(records_to_fill(&chunk, limits(10, 1 << 20)), 9);
        assert_eq!(records_to_fill(&chunk, limits(1000, per_record * 5)), 4);
        assert_eq!(records_to_fill(&chunk, limits(1000, per_record * 5 + 1)), 5);
        // A full chunk still takes one record: the loop closes it before asking.
        assert_eq!(records_to_fill(&chunk, limits(1, per_record)), 1);
    }

    #[test]
    fn dropped_connections_are_waited_out_and_record_errors_are_not() {
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::Resolve,
        ] {
            assert!(
                is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
        }
        for code in [
            RDKafkaErrorCode::OffsetOutOfRange,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert!(
                !is_transient(&KafkaError::MessageConsumption(code)),
                "{code:?}"
            );
        }
        assert!(!is_transient(&KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::AllBrokersDown
        )));
    }
}
