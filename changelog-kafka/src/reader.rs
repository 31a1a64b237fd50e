//! [`KafkaReader`]: the changelog read side, for restore: log extents and cursors (`cursor.rs`)
//! sized by a read-ahead budget (`budget.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    ChangelogReader, Error, IsolationLevel, LogOffsets, Offset, Partition, ReadAhead,
    RestoreCursor, Result,
};

use crate::budget::{DEFAULT_READ_AHEAD, FetchBudget};
use crate::config::KafkaChangelogConfig;
use crate::cursor::KafkaCursor;
use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};
use crate::fetch_queue::FetchQueue;

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
    /// Read-committed only: a read-uncommitted one for the log's end.
    log_end: Option<Arc<BaseConsumer>>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("topic", &self.topic)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
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
        log_end: Option<Arc<BaseConsumer>>,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            isolation,
            config,
            meta,
            log_end,
        }
    }

    /// `(low, high)` watermarks of `partition` from `client`, retried while metadata
    /// settles.
    async fn watermarks(
        &self,
        client: &Arc<BaseConsumer>,
        partition: Partition,
    ) -> Result<(Offset, Offset)> {
        let meta = Arc::clone(client);
        let topic = self.topic.clone();
        let timeout = self.config.metadata_timeout;
        tokio::task::spawn_blocking(move || {
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
        })?
    }

    /// A client for watermark queries under `isolation` (under read-committed the high
    /// end is the last stable offset); `topic` only names the error.
    pub(crate) fn watermark_client(
        config: &KafkaChangelogConfig,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<BaseConsumer> {
        let ours = [
            ("isolation.level", isolation.as_str()),
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
        state_core::runtime::require_tokio(&format!(
            "reading the offsets of changelog {} partition {partition}",
            self.topic
        ))?;
        let (start, end) = self.watermarks(&self.meta, partition).await?;
        // Asked after the stable end, so it is never below it: offsets only grow.
        let log_end = match &self.log_end {
            Some(client) => self.watermarks(client, partition).await?.1,
            None => end,
        };
        Ok(LogOffsets {
            start,
            end,
            log_end,
        })
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
        state_core::runtime::require_tokio(&format!("reading changelog {at}"))?;
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
            ("isolation.level", self.isolation.as_str().to_owned()),
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
        // Before the assignment, so no record of it reaches the consumer's own queue.
        let fetch = FetchQueue::split(consumer, &self.topic, partition)?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, partition, KafkaOffset::Offset(from))
            .map_err(|err| kafka_error("assigning the partition", at, err))?;
        fetch
            .consumer()
            .assign(&assignment)
            .map_err(|err| kafka_error("assigning the partition", at, err))?;
        Ok(Box::new(KafkaCursor::start(
            fetch,
            self.topic.clone(),
            partition,
            from,
            self.config.poll_timeout,
            budget.chunk_limits(),
        )?))
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
