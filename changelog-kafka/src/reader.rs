//! [`KafkaReader`] and its cursor: the changelog read side, for restore.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    ChangelogChunk, ChangelogReader, Error, ErrorKind, IsolationLevel, LogOffsets, Offset,
    Partition, ReadAhead, RestoreCursor, Result,
};

use crate::config::KafkaChangelogConfig;
use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};

/// Pause between watermark queries that failed with a retriable error.
const WATERMARK_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long the first watermark query may take before it is asked again.
const FIRST_WATERMARK_ATTEMPT: Duration = Duration::from_millis(150);

/// A [`ChangelogReader`] on librdkafka consumers with the reader's `isolation.level`.
///
/// Offsets come from `fetch_watermarks`, which queries with the client's isolation
/// level: under read-committed the end is the last stable offset (librdkafka sends its
/// ListOffsets request with `isolation.level`, checked in `rd_kafka_ListOffsetsRequest`).
pub struct KafkaReader {
    topic: String,
    isolation: IsolationLevel,
    config: Arc<KafkaChangelogConfig>,
    /// A group-less consumer for watermark queries.
    meta: Arc<BaseConsumer>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("topic", &self.topic)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

fn isolation_level(isolation: IsolationLevel) -> &'static str {
    match isolation {
        IsolationLevel::ReadCommitted => "read_committed",
        IsolationLevel::ReadUncommitted => "read_uncommitted",
    }
}

/// A group id no other reader shares: the cursor assigns its partition itself and never
/// commits, but librdkafka refuses `assign` without a group id.
fn unique_group_id(config: &KafkaChangelogConfig, topic: &str, partition: Partition) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-restore-{topic}-{partition}-{}-{nanos}-{}",
        config.client_id,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl KafkaReader {
    pub(crate) fn create(
        config: Arc<KafkaChangelogConfig>,
        topic: &str,
        isolation: IsolationLevel,
        meta: Arc<BaseConsumer>,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            isolation,
            config,
            meta,
        }
    }

    /// A client for watermark queries under `isolation` (under read-committed the high
    /// end is the last stable offset); `topic` only names the error.
    pub(crate) fn watermark_client(
        config: &KafkaChangelogConfig,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<BaseConsumer> {
        let ours = [
            ("isolation.level", isolation_level(isolation)),
            ("allow.auto.create.topics", "false"),
        ];
        BaseConsumer::from_config(&config.client_config(&ours, &config.consumer))
            .map_err(|err| kafka_error("creating a consumer", At::topic(topic), err))
    }
}

#[async_trait]
impl ChangelogReader for KafkaReader {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn isolation(&self) -> IsolationLevel {
        self.isolation
    }

    async fn offsets(&self, partition: Partition) -> Result<LogOffsets> {
        let meta = Arc::clone(&self.meta);
        let topic = self.topic.clone();
        let timeout = self.config.metadata_timeout;
        let (start, end) = tokio::task::spawn_blocking(move || {
            // Right after a topic is created or a leader moves, brokers answer with
            // NotLeader / UnknownTopicOrPartition until metadata settles: retry those until
            // the metadata timeout rather than failing a restore that would succeed.
            let deadline = deadline_after(timeout);
            // Short first attempts, doubling: a query sent while the client's broker
            // connection is still coming up waited out librdkafka's reconnect backoff
            // (500-700 ms, measured one query in ~20 right after another client
            // connected), where asking again answers at once.
            let mut attempt = FIRST_WATERMARK_ATTEMPT;
            loop {
                let wait = attempt.min(deadline.saturating_duration_since(Instant::now()));
                attempt = attempt.saturating_mul(2);
                let asked = Instant::now();
                match meta.fetch_watermarks(&topic, partition, wait) {
                    Ok(watermarks) => return Ok(watermarks),
                    Err(err) => {
                        // A partition whose only broker just came back has no leader for
                        // a moment: librdkafka reports it as an unknown *partition* of a
                        // known topic. A topic missing altogether is reported at once.
                        let settling =
                            err.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownPartition);
                        let mapped = kafka_error(
                            "fetching watermarks",
                            At::partition(&topic, partition),
                            err,
                        );
                        if !(mapped.is_retriable() || settling) || Instant::now() >= deadline {
                            return Err(mapped);
                        }
                        // An attempt that waited out its time has backed off already.
                        std::thread::sleep(WATERMARK_RETRY_BACKOFF.saturating_sub(asked.elapsed()));
                        if settling {
                            // The watermark query trusts the client's cached metadata;
                            // ask the cluster again so a re-elected leader is found, and
                            // so a partition the topic does not have is reported now
                            // rather than after the whole timeout.
                            if let Ok(metadata) = meta.fetch_metadata(Some(&topic), timeout)
                                && let Some(count) = partition_count(&metadata, &topic)
                                && partition >= count
                            {
                                return Err(Error::invalid_input(format!(
                                    "changelog topic {topic} has {count} partition(s), 0 to {}; \
                                     partition {partition} does not exist",
                                    count - 1
                                )));
                            }
                        }
                    }
                }
            }
        })
        .await
        .map_err(|err| {
            Error::internal(format!(
                "watermark task for topic {} failed: {err}",
                self.topic
            ))
        })??;
        Ok(LogOffsets { start, end })
    }

    async fn open(&self, partition: Partition, from: Offset) -> Result<Box<dyn RestoreCursor>> {
        self.open_with(partition, from, DEFAULT_READ_AHEAD).await
    }

    async fn open_with(
        &self,
        partition: Partition,
        from: Offset,
        read_ahead: ReadAhead,
    ) -> Result<Box<dyn RestoreCursor>> {
        let at = At::offset(&self.topic, partition, from);
        if from < 0 {
            return Err(Error::invalid_input(format!(
                "cannot read topic {} partition {partition} from negative offset {from}",
                self.topic
            )));
        }
        let group_id = unique_group_id(&self.config, &self.topic, partition);
        let budget = FetchBudget::new(read_ahead);
        let mut ours = vec![
            ("group.id", group_id),
            (
                "isolation.level",
                isolation_level(self.isolation).to_owned(),
            ),
            ("enable.auto.commit", "false".to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            // A position outside the log must surface as an error, never a silent jump.
            ("auto.offset.reset", "error".to_owned()),
            ("enable.partition.eof", "false".to_owned()),
            ("allow.auto.create.topics", "false".to_owned()),
        ];
        ours.extend(budget.consumer_settings());
        let ours: Vec<(&str, &str)> = ours.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = self.config.client_config(&ours, &self.config.consumer);
        let consumer = BaseConsumer::from_config(&config)
            .map_err(|err| kafka_error("creating a consumer", at, err))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, KafkaOffset::Offset(from))
            .map_err(|err| kafka_error("assigning the partition", at, err))?;
        consumer
            .assign(&assignment)
            .map_err(|err| kafka_error("assigning the partition", at, err))?;
        Ok(Box::new(KafkaCursor::start(
            consumer,
            self.topic.clone(),
            partition,
            from,
            self.config.poll_timeout,
            budget.chunk_limits(),
        )?))
    }
}

/// The read-ahead of a cursor opened with plain [`ChangelogReader::open`].
const DEFAULT_READ_AHEAD: ReadAhead = ReadAhead {
    chunk_records: state_core::DEFAULT_RESTORE_BATCH,
    max_bytes: state_core::DEFAULT_MAX_BYTES_IN_FLIGHT,
};

/// How a cursor splits its read-ahead budget between librdkafka and its own chunks, and
/// the fetch settings that let librdkafka keep up.
///
/// librdkafka holds a fetch response while it decodes it (`max.partition.fetch.bytes`)
/// and a queue of decoded messages (`queued.max.messages.kbytes`, key and value bytes
/// only); the cursor holds the chunk being filled, [`CHUNKS_AHEAD`] chunks waiting and the
/// one being applied. Half the budget goes to librdkafka, half to chunks.
#[derive(Debug, Clone, Copy)]
struct FetchBudget {
    read_ahead: ReadAhead,
}

impl FetchBudget {
    /// librdkafka refuses a fetch size or a queue below 1 KiB.
    const MIN_BYTES: usize = 1 << 10;
    /// librdkafka's default fetch size per partition; larger fetches measured no faster
    /// here and held twice the memory.
    const MAX_FETCH_BYTES: usize = 1 << 20;

    fn new(read_ahead: ReadAhead) -> Self {
        Self { read_ahead }
    }

    fn quarter(&self) -> usize {
        (self.read_ahead.max_bytes / 4).max(Self::MIN_BYTES)
    }

    /// The consumer settings of a restore cursor (and of the raw consumer it is
    /// benchmarked against).
    fn consumer_settings(&self) -> Vec<(&'static str, String)> {
        let fetch = self.quarter().min(Self::MAX_FETCH_BYTES);
        let queued_kbytes = (self.quarter() / 1024).clamp(1, 2_097_151);
        vec![
            ("max.partition.fetch.bytes", fetch.to_string()),
            ("queued.max.messages.kbytes", queued_kbytes.to_string()),
            // librdkafka waits this long before fetching again once its queue is full
            // (default 1 s): with the queue bounded it filled in a few milliseconds and
            // the fetcher then idled, so a million-record read took 4.6-5.5 s instead of
            // 0.8 s (`BENCHMARKS.md`).
            ("fetch.queue.backoff.ms", "10".to_owned()),
        ]
    }

    fn chunk_limits(&self) -> ChunkLimits {
        ChunkLimits {
            records: self.read_ahead.chunk_records.max(1),
            bytes: (self.read_ahead.max_bytes / 2 / (CHUNKS_AHEAD + 2)).max(Self::MIN_BYTES),
            data_hint: 0,
        }
    }
}

/// The librdkafka settings a restore cursor reading ahead by `read_ahead` uses on top of
/// the user's, for tools that read a changelog the same way (the benchmarks' raw
/// consumer).
pub fn restore_consumer_settings(read_ahead: ReadAhead) -> Vec<(&'static str, String)> {
    FetchBudget::new(read_ahead).consumer_settings()
}

/// Chunks waiting in the hand-over channel besides the one being filled: with the
/// one the caller is applying, three chunks share a read-ahead budget.
const CHUNKS_AHEAD: usize = 2;

/// What the reading thread hands over: a chunk and the position after it.
type Fetched = Result<(ChangelogChunk, Offset)>;

/// Reads one partition forward from an offset. A dedicated thread polls the consumer and
/// copies each record once, into a [`ChangelogChunk`] the store can apply as it is, and
/// keeps up to [`CHUNKS_AHEAD`] chunks ready, so fetching overlaps with the store applying
/// the previous chunk (a poll handed to the blocking pool per batch cost ~3 ms of thread
/// hand-offs a batch on a busy 2-core machine: restore ran at a third of a raw consumer's
/// speed). The thread ends when the cursor is dropped.
struct KafkaCursor {
    partition: Partition,
    fetched: tokio::sync::mpsc::Receiver<Fetched>,
    /// The current fetched chunk and how many of its records were handed out.
    pending: Option<(ChangelogChunk, usize)>,
    /// The position after the current fetched chunk.
    pending_end: Offset,
    position: Offset,
    topic: String,
}

/// How the reading thread cuts chunks.
#[derive(Debug, Clone, Copy)]
struct ChunkLimits {
    /// At most this many records.
    records: usize,
    /// Closed once its [`ChangelogChunk::footprint`] reaches this.
    bytes: usize,
    /// Key and value bytes to reserve up front.
    data_hint: usize,
}

impl KafkaCursor {
    fn start(
        consumer: BaseConsumer,
        topic: String,
        partition: Partition,
        from: Offset,
        poll_timeout: Duration,
        limits: ChunkLimits,
    ) -> Result<Self> {
        let (sender, fetched) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
        let thread_topic = topic.clone();
        std::thread::Builder::new()
            .name(format!("restore-{partition}"))
            .spawn(move || {
                let mut position = from;
                let mut limits = limits;
                while !sender.is_closed() {
                    let chunk = poll_chunk(
                        &consumer,
                        &thread_topic,
                        partition,
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
}

/// The number of partitions `metadata` shows for `topic`, when it shows the topic.
fn partition_count(metadata: &rdkafka::metadata::Metadata, topic: &str) -> Option<i32> {
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    if found.error().is_some() || found.partitions().is_empty() {
        return None;
    }
    i32::try_from(found.partitions().len()).ok()
}

/// Polls until the first record or the timeout, then drains what is already fetched, up
/// to `limits`. Returns the records and the consumer's position afterwards.
fn poll_chunk(
    consumer: &BaseConsumer,
    topic: &str,
    partition: Partition,
    position: Offset,
    limits: ChunkLimits,
    timeout: Duration,
) -> Result<(ChangelogChunk, Offset)> {
    let deadline = deadline_after(timeout);
    let mut chunk = ChangelogChunk::with_capacity(partition, limits.records, limits.data_hint);
    while chunk.len() < limits.records && chunk.footprint() < limits.bytes {
        let wait = if chunk.is_empty() {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => append(&mut chunk, &message)?,
            Some(Err(err)) if is_transient(&err) => {
                // librdkafka reconnects by itself; the poll deadline bounds the wait.
                log::debug!("reading topic {topic} partition {partition}: {err}");
            }
            Some(Err(err)) => return Err(read_error(consumer, topic, partition, position, err)),
            None if chunk.is_empty() && Instant::now() < deadline => {}
            None => break,
        }
    }
    // After a record, reading resumes right behind it; a gap after it (markers, aborted
    // or compacted records) is crossed by the next call. Only a poll that returned
    // nothing asks the consumer for its position, which moves over such gaps — asking
    // every time costs a round trip through librdkafka's main thread (~3 ms a batch).
    if let Some(next) = chunk.last_offset().map(|last| (last + 1).max(position)) {
        return Ok((chunk, next));
    }
    let mut next = position;
    let assigned = consumer
        .position()
        .map_err(|err| kafka_error("reading the position", At::partition(topic, partition), err))?;
    if let Some(KafkaOffset::Offset(offset)) = assigned
        .find_partition(topic, partition)
        .map(|e| e.offset())
    {
        next = next.max(offset);
    }
    Ok((chunk, next))
}

fn is_transient(err: &KafkaError) -> bool {
    matches!(
        err,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve
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

/// Copies one message into `chunk`: key and value once, headers only when there are any.
fn append(chunk: &mut ChangelogChunk, message: &BorrowedMessage<'_>) -> Result<()> {
    let Some(key) = message.key() else {
        return Err(Error::corruption(format!(
            "changelog record without a key at topic {} partition {} offset {}",
            message.topic(),
            message.partition(),
            message.offset()
        )));
    };
    // -1 is Kafka's "no timestamp".
    let timestamp = message.timestamp().to_millis().unwrap_or(-1);
    chunk.push(message.offset(), key, message.payload(), timestamp);
    if let Some(headers) = message.headers() {
        // Kafka has no null-valued header in our record model: a null value reads as empty.
        chunk.set_last_headers(
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        h.value.map_or_else(Vec::new, <[u8]>::to_vec),
                    )
                })
                .collect(),
        );
    }
    Ok(())
}
