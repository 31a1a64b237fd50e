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
    ChangelogReader, ChangelogRecord, ConsumedRecord, Error, ErrorKind, IsolationLevel, LogOffsets,
    Offset, Partition, RestoreCursor, Result,
};

use crate::config::KafkaChangelogConfig;
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
            let deadline = Instant::now() + timeout;
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
                            // ask the cluster again so a re-elected leader is found.
                            let _ = meta.fetch_metadata(Some(&topic), timeout);
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
        let at = At::offset(&self.topic, partition, from);
        if from < 0 {
            return Err(Error::invalid_input(format!(
                "cannot read topic {} partition {partition} from negative offset {from}",
                self.topic
            )));
        }
        let group_id = unique_group_id(&self.config, &self.topic, partition);
        let ours = [
            ("group.id", group_id.as_str()),
            ("isolation.level", isolation_level(self.isolation)),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            // A position outside the log must surface as an error, never a silent jump.
            ("auto.offset.reset", "error"),
            ("enable.partition.eof", "false"),
            ("allow.auto.create.topics", "false"),
        ];
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
        )?))
    }
}

/// Batches a cursor's reading thread may fetch ahead of the restore.
const PREFETCH_BATCHES: usize = 4;
/// Records per prefetched batch.
const PREFETCH_BATCH: usize = 1000;

/// What the reading thread hands over: records and the position after them.
type Fetched = Result<(Vec<ConsumedRecord>, Offset)>;

/// Reads one partition forward from an offset. A dedicated thread polls the consumer and
/// keeps up to [`PREFETCH_BATCHES`] batches ready, so fetching overlaps with the store
/// applying the previous batch (a poll handed to the blocking pool per batch cost ~3 ms of
/// thread hand-offs a batch on a busy 2-core machine: restore ran at a third of a raw
/// consumer's speed). The thread ends when the cursor is dropped.
struct KafkaCursor {
    fetched: tokio::sync::mpsc::Receiver<Fetched>,
    /// Records of the current fetched batch not yet handed out.
    pending: std::collections::VecDeque<ConsumedRecord>,
    /// The position after the current fetched batch.
    pending_end: Offset,
    position: Offset,
    topic: String,
}

impl KafkaCursor {
    fn start(
        consumer: BaseConsumer,
        topic: String,
        partition: Partition,
        from: Offset,
        poll_timeout: Duration,
    ) -> Result<Self> {
        let (sender, fetched) = tokio::sync::mpsc::channel(PREFETCH_BATCHES);
        let thread_topic = topic.clone();
        std::thread::Builder::new()
            .name(format!("restore-{partition}"))
            .spawn(move || {
                let mut position = from;
                while !sender.is_closed() {
                    let batch = poll_batch(
                        &consumer,
                        &thread_topic,
                        partition,
                        position,
                        PREFETCH_BATCH,
                        poll_timeout,
                    );
                    let failed = batch.is_err();
                    if let Ok((_, next)) = &batch {
                        position = *next;
                    }
                    if sender.blocking_send(batch).is_err() || failed {
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
            fetched,
            pending: std::collections::VecDeque::new(),
            pending_end: from,
            position: from,
            topic,
        })
    }
}

#[async_trait]
impl RestoreCursor for KafkaCursor {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<ConsumedRecord>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if self.pending.is_empty() {
            let (records, end) = self.fetched.recv().await.ok_or_else(|| {
                Error::internal(format!(
                    "the reading thread of topic {} stopped after an earlier error",
                    self.topic
                ))
            })??;
            self.pending = records.into();
            self.pending_end = end;
        }
        let take = max.min(self.pending.len());
        let batch: Vec<ConsumedRecord> = self.pending.drain(..take).collect();
        self.position = match (self.pending.front(), batch.last()) {
            (Some(_), Some(last)) => last.offset + 1,
            _ => self.pending_end,
        };
        Ok(batch)
    }

    fn position(&self) -> Offset {
        self.position
    }
}

/// Polls until the first record or the timeout, then drains what is already fetched,
/// up to `max`. Returns the records and the consumer's position afterwards.
fn poll_batch(
    consumer: &BaseConsumer,
    topic: &str,
    partition: Partition,
    position: Offset,
    max: usize,
    timeout: Duration,
) -> Result<(Vec<ConsumedRecord>, Offset)> {
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < max {
        let wait = if records.is_empty() {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        match consumer.poll(wait) {
            Some(Ok(message)) => records.push(convert(&message)?),
            Some(Err(err)) if is_transient(&err) => {
                // librdkafka reconnects by itself; the poll deadline bounds the wait.
                log::debug!("reading topic {topic} partition {partition}: {err}");
            }
            Some(Err(err)) => return Err(read_error(consumer, topic, partition, position, err)),
            None if records.is_empty() && Instant::now() < deadline => {}
            None => break,
        }
    }
    // After a record, reading resumes right behind it; a gap after it (markers, aborted
    // or compacted records) is crossed by the next call. Only a batch that returned
    // nothing asks the consumer for its position, which moves over such gaps — asking
    // every time costs a round trip through librdkafka's main thread (~3 ms a batch).
    if let Some(next) = records.last().map(|r| (r.offset + 1).max(position)) {
        return Ok((records, next));
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
    Ok((records, next))
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

fn convert(message: &BorrowedMessage<'_>) -> Result<ConsumedRecord> {
    let Some(key) = message.key() else {
        return Err(Error::corruption(format!(
            "changelog record without a key at topic {} partition {} offset {}",
            message.topic(),
            message.partition(),
            message.offset()
        )));
    };
    // Kafka has no null-valued header in our record model: a null value reads as empty.
    let headers = message.headers().map_or_else(Vec::new, |headers| {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    h.value.map_or_else(Vec::new, <[u8]>::to_vec),
                )
            })
            .collect()
    });
    Ok(ConsumedRecord {
        partition: message.partition(),
        offset: message.offset(),
        record: ChangelogRecord {
            key: key.to_vec(),
            value: message.payload().map(<[u8]>::to_vec),
            // -1 is Kafka's "no timestamp".
            timestamp: message.timestamp().to_millis().unwrap_or(-1),
            headers,
        },
    })
}
