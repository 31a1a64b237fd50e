//! [`KafkaSink`]: the changelog write side on one librdkafka producer for every changelog
//! topic of an instance, with delivery callbacks, committed at commit.
//!
//! Under exactly-once the producer is transactional and every commit is one transaction
//! (Kafka Streams' exactly-once v2, KIP-447): the first append of an interval begins it,
//! the commit flushes it, sends the input offsets into it with the group's metadata and
//! commits it. A failed commit aborts it, so no transaction outlives a failed commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig, ThreadedProducer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    ChangelogPositions, ChangelogRecord, ChangelogSink, Error, ErrorKind, Partition,
    ProcessingGuarantee, Result, SinkCommit, SinkOptions, SourceCommit, SourceOffsets,
};

use crate::config::KafkaChangelogConfig;
use crate::deadline::deadline_after;
use crate::deliveries::DeliveryContext;
use crate::error::{At, kafka_error};
use crate::input::{InputGroup, OffsetCommit};

type KafkaProducer = ThreadedProducer<DeliveryContext>;

/// `transaction.timeout.ms` unless the producer settings say otherwise: how long the
/// coordinator waits before it aborts a dead instance's open transaction, which holds
/// back read-committed readers of its changelogs until then (Kafka Streams sets the same
/// 10 s under exactly-once; librdkafka's default is 60 s). A consumer group's sink takes
/// at least twice its commit interval, so a live instance's transaction never times out
/// between two commits.
pub const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a sink waits for the answers to its requests in flight: a live
/// broker answers in milliseconds; an unreachable one is not worth holding a drop for.
const DROP_SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`ChangelogSink`] on a librdkafka producer (`enable.idempotence=true`, `acks=all`),
/// transactional under exactly-once, writing any changelog topic.
///
/// `append` only enqueues; delivery callbacks record the acknowledged offsets, and a
/// commit waits for them off the async executor. A record's timestamp `0` is replaced
/// by the current time (librdkafka's convention).
pub struct KafkaSink {
    guarantee: ProcessingGuarantee,
    producer: KafkaProducer,
    transactional_id: Option<String>,
    flush_timeout: Duration,
    enqueue_timeout: Duration,
    in_transaction: AtomicBool,
    /// Held while a transaction begins, so two appends never both begin one.
    beginning: Mutex<()>,
    /// Acknowledged offsets at the last commit, restored when a transaction aborts.
    committed: Mutex<ChangelogPositions>,
    /// Set once the producer hit a fatal error (fenced, ...): the sink stays unusable.
    broken: Mutex<Option<(ErrorKind, String)>>,
    /// The input whose offsets commits carry, if any.
    input: Option<Arc<dyn InputGroup>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("guarantee", &self.guarantee)
            .field("transactional_id", &self.transactional_id)
            .field(
                "in_transaction",
                &self.in_transaction.load(Ordering::SeqCst),
            )
            .field("input", &self.input.as_ref().map(|input| input.topic()))
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer; under exactly-once also initialises transactions, which
    /// fences older producers with the same transactional id and aborts their open
    /// transaction. `input` is the consumer group whose offsets commits carry;
    /// `transaction_timeout` is `transaction.timeout.ms` unless the producer settings
    /// set it.
    pub(crate) async fn create(
        config: &KafkaChangelogConfig,
        options: &SinkOptions,
        input: Option<Arc<dyn InputGroup>>,
        transaction_timeout: Duration,
    ) -> Result<Self> {
        let exactly_once = options.guarantee == ProcessingGuarantee::ExactlyOnce;
        let mut ours = vec![("enable.idempotence", "true"), ("acks", "all")];
        let timeout = transaction_timeout.as_millis().to_string();
        let transactional_id = match options.transactional_id.as_deref() {
            Some(id) if exactly_once && !id.is_empty() => Some(id.to_owned()),
            _ if exactly_once => {
                return Err(Error::invalid_input(
                    "an exactly-once changelog sink needs a transactional id",
                ));
            }
            _ => None,
        };
        if let Some(id) = &transactional_id {
            if let Some(value) = config
                .producer
                .get("enable.idempotence")
                .filter(|v| v.trim() != "true")
            {
                return Err(Error::invalid_input(format!(
                    "the exactly-once changelog sink {id} cannot run with enable.idempotence={value}"
                )));
            }
            ours.push(("transactional.id", id));
            ours.push(("transaction.timeout.ms", &timeout));
            // The first send of a transaction right after a commit is refused with
            // CONCURRENT_TRANSACTIONS until the broker has written the previous commit's
            // markers; librdkafka then waits retry.backoff.ms (100 ms by default) before
            // asking again, which made every commit interval ~100 ms long. The Java
            // producer retries that request after 20 ms for the same reason.
            ours.push(("retry.backoff.ms", "20"));
        }
        let client_config = config.client_config(&ours, &config.producer);
        let producer =
            KafkaProducer::from_config_and_context(&client_config, DeliveryContext::new())
                .map_err(|err| kafka_error("creating a changelog producer", At::default(), err))?;
        let sink = Self {
            guarantee: options.guarantee,
            producer,
            transactional_id,
            flush_timeout: config.flush_timeout,
            enqueue_timeout: config.enqueue_timeout,
            in_transaction: AtomicBool::new(false),
            beginning: Mutex::new(()),
            committed: Mutex::default(),
            broken: Mutex::default(),
            input,
        };
        if exactly_once {
            let timeout = sink.flush_timeout;
            sink.blocking("initialising transactions", move |p| {
                p.init_transactions(timeout)
            })
            .await?;
        }
        Ok(sink)
    }

    /// The transactional id, under exactly-once.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// Waits until every appended record is acknowledged, without committing: inside a
    /// transaction the records then sit in the log uncommitted (read-uncommitted readers
    /// see them; the last stable offset stays before them). Returns the acknowledged
    /// offsets.
    pub async fn flush_pending(&self) -> Result<ChangelogPositions> {
        state_core::runtime::require_tokio("flushing a Kafka changelog sink")?;
        self.check_usable()?;
        self.flush_deliveries("flushing").await?;
        Ok(self.acked())
    }

    /// Whether a transaction is open (exactly-once, between the first append of an
    /// interval and its commit or abort).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::SeqCst)
    }

    fn check_usable(&self) -> Result<()> {
        let broken = self.broken.lock().unwrap_or_else(PoisonError::into_inner);
        match &*broken {
            Some((kind, why)) => Err(Error::new(
                *kind,
                format!("the changelog sink is unusable: {why}"),
            )),
            None => Ok(()),
        }
    }

    /// Marks the sink unusable after a fatal error and returns that error.
    fn poison(&self, err: Error) -> Error {
        let mut broken = self.broken.lock().unwrap_or_else(PoisonError::into_inner);
        if broken.is_none() {
            *broken = Some((err.kind(), err.message().to_owned()));
        }
        self.in_transaction.store(false, Ordering::SeqCst);
        err
    }

    /// Runs a blocking producer call on the blocking pool.
    async fn blocking<F>(&self, op: &'static str, call: F) -> Result<()>
    where
        F: FnOnce(&KafkaProducer) -> std::result::Result<(), KafkaError> + Send + 'static,
    {
        let producer = self.producer.clone();
        let result = tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|err| {
                Error::internal(format!("changelog producer task {op} failed: {err}"))
            })?;
        result.map_err(|err| self.classify(op, err))
    }

    /// Maps a producer error; a fatal one poisons the sink.
    fn classify(&self, op: &str, err: KafkaError) -> Error {
        let fatal = match &err {
            KafkaError::Transaction(txn) => txn.is_fatal(),
            other => other.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal),
        };
        if !fatal {
            return kafka_error(op, At::default(), err);
        }
        // librdkafka keeps the underlying cause (fenced, ...) apart from the error.
        let (code, reason) = self
            .producer
            .client()
            .fatal_error()
            .unwrap_or((RDKafkaErrorCode::Fatal, err.to_string()));
        let producer = self
            .transactional_id
            .as_deref()
            .map_or_else(String::new, |id| format!(" of changelog producer {id}"));
        self.poison(
            kafka_error(op, At::default(), KafkaError::Global(code)).context(format!(
                "fatal producer error{producer} ({reason}), the sink is unusable"
            )),
        )
    }

    /// Begins a transaction unless one is open (exactly-once).
    fn begin_if_needed(&self) -> Result<()> {
        if self.transactional_id.is_none() || self.in_transaction() {
            return Ok(());
        }
        let _beginning = self
            .beginning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.in_transaction() {
            return Ok(());
        }
        self.producer
            .begin_transaction()
            .map_err(|err| self.classify("beginning a transaction", err))?;
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.producer.context().lock().acked.clone();
        self.in_transaction.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Waits for every enqueued record, then reports the first delivery failure.
    async fn flush_deliveries(&self, op: &'static str) -> Result<()> {
        let timeout = self.flush_timeout;
        // Waits on our own delivery reports rather than `Producer::flush`, whose loop
        // polls in 100 ms steps that the producer's polling thread never cuts short, so
        // every flush took at least 100 ms.
        let flushed = self
            .blocking(op, move |p| {
                if p.context().wait_settled(timeout) {
                    Ok(())
                } else {
                    Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                }
            })
            .await;
        let context = self.producer.context();
        let mut deliveries = context.lock();
        if let Some(failure) = deliveries.failure.take() {
            deliveries.close_gaps(context.next_seq.load(Ordering::SeqCst));
            return Err(failure);
        }
        drop(deliveries);
        flushed.map_err(|err| {
            if err.kind() == ErrorKind::Timeout {
                err.context(format!(
                    "{} records still unacknowledged after {timeout:?}",
                    self.producer.in_flight_count()
                ))
            } else {
                err
            }
        })
    }

    fn acked(&self) -> ChangelogPositions {
        self.producer.context().lock().acked.clone()
    }

    /// The input binding for `source`, or an error when offsets came without one.
    fn input_for(&self, source: &SourceOffsets) -> Result<Option<Arc<dyn InputGroup>>> {
        if source.is_empty() {
            return Ok(None);
        }
        self.input.clone().map(Some).ok_or_else(|| {
            Error::invalid_input(
                "input offsets handed to a changelog sink without an input: make it with \
                 SinkOptions::source, or use a StatefulConsumer's",
            )
        })
    }

    /// The transactional commit: flush, offsets, commit; aborts on any failure.
    async fn commit_transaction(
        &self,
        source: &SourceOffsets,
        input: Option<Arc<dyn InputGroup>>,
    ) -> Result<SinkCommit> {
        if !self.in_transaction() && input.is_none() {
            // Nothing appended and no offset due: no transaction to commit.
            return Ok(SinkCommit {
                positions: self.acked(),
                source: SourceCommit::Nothing,
            });
        }
        self.begin_if_needed()?;
        // Flush first so a failed record is reported by name, not as a generic abort.
        if let Err(err) = self.flush_deliveries("flushing the transaction").await {
            return Err(self.abort_after(err).await);
        }
        let carries_offsets = input.is_some();
        if let Some(input) = input {
            let sent = self.send_offsets(source, input).await;
            if let Err(err) = sent {
                return Err(self.abort_after(err).await);
            }
        }
        let timeout = self.flush_timeout;
        let producer = self.producer.clone();
        let committed = tokio::task::spawn_blocking(move || {
            wait_released(&producer);
            producer.commit_transaction(timeout)
        })
        .await
        .map_err(|err| Error::internal(format!("changelog commit task failed: {err}")))?;
        if let Err(err) = committed {
            let err = self.classify("committing the transaction", err);
            return Err(self.abort_after(err).await);
        }
        self.in_transaction.store(false, Ordering::SeqCst);
        let positions = self.acked();
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = positions.clone();
        Ok(SinkCommit {
            positions,
            source: if carries_offsets {
                SourceCommit::Committed
            } else {
                SourceCommit::Nothing
            },
        })
    }

    async fn send_offsets(&self, source: &SourceOffsets, input: Arc<dyn InputGroup>) -> Result<()> {
        let group = input.metadata()?;
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in source.iter() {
            offsets
                .add_partition_offset(input.topic(), partition, KafkaOffset::Offset(offset))
                .map_err(|err| {
                    kafka_error(
                        "listing input offsets",
                        At::offset(input.topic(), partition, offset),
                        err,
                    )
                })?;
        }
        let timeout = self.flush_timeout;
        self.blocking(
            "sending input offsets into the transaction",
            move |producer| producer.send_offsets_to_transaction(&offsets, &group, timeout),
        )
        .await
    }

    /// The plain commit: flush, then the offsets through the group's consumer.
    async fn commit_plain(
        &self,
        source: &SourceOffsets,
        input: Option<Arc<dyn InputGroup>>,
    ) -> Result<SinkCommit> {
        self.flush_deliveries("flushing").await?;
        let positions = self.acked();
        *self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = positions.clone();
        let source = match input {
            None => SourceCommit::Nothing,
            Some(input) => {
                let offsets = source.clone();
                let committed = tokio::task::spawn_blocking(move || input.commit(&offsets))
                    .await
                    .map_err(|err| {
                        Error::internal(format!("input offset commit task failed: {err}"))
                    })?;
                match committed? {
                    OffsetCommit::Done => SourceCommit::Committed,
                    OffsetCommit::RefusedByRebalance => SourceCommit::Refused,
                }
            }
        };
        Ok(SinkCommit { positions, source })
    }

    /// Aborts the open transaction after `cause`, keeping `cause` as the error. An abort
    /// that fails leaves the transaction in an unknown state, so the sink is given up.
    async fn abort_after(&self, cause: Error) -> Error {
        if self
            .broken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return cause;
        }
        match self.abort_transaction().await {
            Ok(()) => cause.context("the transaction was aborted"),
            Err(abort) => self.poison(cause.context(format!(
                "aborting the transaction failed too ({abort}), the sink is unusable"
            ))),
        }
    }

    async fn abort_transaction(&self) -> Result<()> {
        if !self.in_transaction() {
            return Ok(());
        }
        let timeout = self.flush_timeout;
        self.blocking("aborting the transaction", move |p| {
            p.abort_transaction(timeout)?;
            // Serve the purged records' delivery reports before forgetting them.
            wait_released(p);
            p.flush(timeout)
        })
        .await?;
        self.in_transaction.store(false, Ordering::SeqCst);
        let committed = self
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        self.producer.context().lock().reset_to(committed);
        Ok(())
    }
}

/// How often [`wait_released`] looks again.
const RELEASE_CHECK_INTERVAL: Duration = Duration::from_micros(50);

/// How long [`wait_released`] waits at most before the flush takes over (with its own
/// timeout and error): records not released by then are not about to be.
const RELEASE_PATIENCE: Duration = Duration::from_secs(1);

/// Waits until librdkafka has released every record whose delivery report was served,
/// for at most [`RELEASE_PATIENCE`]. rust-rdkafka's `commit_transaction` flushes first, and a flush
/// that finds records not yet released polls for the next event for up to 100 ms. The
/// producer's polling thread releases a batch of records just after their reports,
/// which the commit has already waited for, so the flush often came a moment early and
/// then waited for an event that never came: a third of the commits in the two-store
/// benchmark took 100 ms longer. librdkafka signals the release only to its own flush,
/// which is out of reach without `unsafe`; the release takes microseconds, so looking
/// again every 50 µs costs nothing.
fn wait_released(producer: &KafkaProducer) {
    let deadline = deadline_after(RELEASE_PATIENCE);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        std::thread::sleep(RELEASE_CHECK_INTERVAL);
    }
}

#[async_trait]
impl ChangelogSink for KafkaSink {
    fn guarantee(&self) -> ProcessingGuarantee {
        self.guarantee
    }

    fn append(&self, topic: &str, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        self.check_usable()?;
        self.begin_if_needed()?;
        let seq = self
            .producer
            .context()
            .next_seq
            .fetch_add(1, Ordering::SeqCst);
        let mut message: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, seq)
            .partition(partition)
            .key(record.key.as_slice())
            .timestamp(record.timestamp);
        if !record.headers.is_empty() {
            // Most changelog records carry no headers; skip librdkafka's header allocation.
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key: key.as_str(),
                    value: Some(value.as_slice()),
                });
            }
            message = message.headers(headers);
        }
        if let Some(value) = &record.value {
            message = message.payload(value.as_slice());
        }
        // Read the clock only once the queue is full: on the put path a clock read per
        // record was 1-2% of the CPU, for a deadline almost never needed.
        let mut deadline = None;
        loop {
            match self.producer.send(message) {
                Ok(()) => {
                    self.producer
                        .context()
                        .enqueued
                        .fetch_add(1, Ordering::SeqCst);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if Instant::now()
                        < *deadline.get_or_insert_with(|| deadline_after(self.enqueue_timeout)) =>
                {
                    // Serve delivery reports so the queue drains, then try again.
                    self.producer.poll(Duration::from_millis(10));
                    message = returned;
                }
                Err((err, _)) => {
                    let error =
                        kafka_error("enqueueing a record", At::partition(topic, partition), err);
                    return Err(if error.kind() == ErrorKind::Unavailable {
                        error.context(format!(
                            "producer queue full for {:?}",
                            self.enqueue_timeout
                        ))
                    } else {
                        error
                    });
                }
            }
        }
    }

    async fn commit(&self, source: &SourceOffsets) -> Result<SinkCommit> {
        state_core::runtime::require_tokio("committing a Kafka changelog")?;
        self.check_usable()?;
        let input = self.input_for(source)?;
        match self.guarantee {
            ProcessingGuarantee::ExactlyOnce => self.commit_transaction(source, input).await,
            ProcessingGuarantee::AtLeastOnce => self.commit_plain(source, input).await,
        }
    }

    async fn abort(&self) -> Result<()> {
        state_core::runtime::require_tokio("aborting a Kafka changelog transaction")?;
        self.check_usable()?;
        match self.guarantee {
            ProcessingGuarantee::ExactlyOnce => self.abort_transaction().await,
            ProcessingGuarantee::AtLeastOnce => {
                // Plain records cannot be taken back: wait for those in flight, so the
                // acknowledged offsets say what the log kept.
                match self
                    .flush_deliveries("flushing what an abort cannot take back")
                    .await
                {
                    Err(err) if err.kind() == ErrorKind::Timeout => Err(err),
                    Err(err) => {
                        log::warn!("records in flight when the interval was ended failed: {err}");
                        Ok(())
                    }
                    Ok(()) => Ok(()),
                }
            }
        }
    }

    fn acknowledged(&self) -> ChangelogPositions {
        self.producer.context().lock().prefix.clone()
    }

    async fn settle_input(&self, partition: Partition) -> Result<()> {
        let Some(input) = self.input.clone() else {
            return Ok(());
        };
        if self.guarantee != ProcessingGuarantee::ExactlyOnce {
            return Ok(());
        }
        // Long enough for a dead producer's transaction to time out and be aborted
        // (transaction.timeout.ms, then the coordinator's cleanup interval).
        let timeout = self.flush_timeout.max(DEFAULT_TRANSACTION_TIMEOUT * 6);
        tokio::task::spawn_blocking(move || input.wait_stable(partition, timeout))
            .await
            .map_err(|err| Error::internal(format!("input settle task failed: {err}")))?
    }
}

impl Drop for KafkaSink {
    /// Drops the records not sent yet, as a process that died would, and waits for the
    /// answers to those already sent. librdkafka's own drop purges in-flight requests too,
    /// but the broker still appends them, possibly after a restore that starts next has
    /// read the log's end; waiting here means that once a sink is gone, the log holds
    /// everything it will ever hold from it.
    fn drop(&mut self) {
        self.producer.purge(PurgeConfig::default().queue());
        if !self.producer.context().wait_settled(DROP_SETTLE_TIMEOUT) {
            log::warn!(
                "changelog sink dropped with {} records still unanswered after {DROP_SETTLE_TIMEOUT:?}",
                self.producer.in_flight_count()
            );
        }
    }
}
