//! [`KafkaSink`]: the changelog write side on a librdkafka producer with delivery
//! callbacks, flushed at commit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    ChangelogRecord, ChangelogSink, Error, ErrorKind, Partition, Position, ProcessingGuarantee,
    Result, SinkOptions, SourceOffsets,
};

use crate::config::KafkaChangelogConfig;
use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};

/// What the delivery callbacks learned.
#[derive(Default)]
struct Deliveries {
    /// Highest acknowledged offset per partition.
    acked: BTreeMap<Partition, i64>,
    /// Highest acknowledged offset per partition such that no record appended before it
    /// failed: what [`ChangelogSink::acknowledged`] reports, so a resend after a failed
    /// flush never skips a record missing from the log.
    prefix: BTreeMap<Partition, i64>,
    /// Per partition, the append sequence numbers whose acknowledgements must not move
    /// `prefix`: from the first failed record up to the flush that reported it
    /// (unbounded while unreported).
    gaps: BTreeMap<Partition, (usize, usize)>,
    /// The first failed delivery since the last flush.
    failure: Option<Error>,
    /// Delivery reports received (acknowledged or failed), for `flush` to wait on.
    settled: usize,
}

impl Deliveries {
    /// Ends every open gap at `next_seq`: records appended from now on are resends.
    fn close_gaps(&mut self, next_seq: usize) {
        for gap in self.gaps.values_mut() {
            gap.1 = gap.1.min(next_seq);
        }
    }

    /// Goes back to an earlier acknowledged state (after an aborted transaction).
    fn reset_to(&mut self, acked: BTreeMap<Partition, i64>) {
        self.prefix = acked.clone();
        self.acked = acked;
        self.gaps.clear();
        self.failure = None;
    }
}

/// The producer context: records acknowledgements and the first failure.
pub(crate) struct DeliveryContext {
    topic: String,
    /// Sequence number of the next appended record, passed as the delivery opaque.
    next_seq: AtomicUsize,
    /// Records librdkafka accepted into its queue; each gets exactly one delivery report.
    enqueued: AtomicUsize,
    deliveries: Mutex<Deliveries>,
    /// Signalled on every delivery report.
    settled: Condvar,
}

impl DeliveryContext {
    fn lock(&self) -> MutexGuard<'_, Deliveries> {
        // A panic elsewhere must not hide acknowledgements; the data stays consistent
        // because every update is a single assignment.
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log::warn!(
            "kafka producer for changelog topic {}: {error}: {reason}",
            self.topic
        );
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Self::DeliveryOpaque) {
        let mut deliveries = self.lock();
        deliveries.settled += 1;
        self.settled.notify_all();
        match result {
            Ok(message) => {
                let (partition, offset) = (message.partition(), message.offset());
                let entry = deliveries.acked.entry(partition).or_insert(offset);
                *entry = (*entry).max(offset);
                let in_gap = deliveries
                    .gaps
                    .get(&partition)
                    .is_some_and(|&(from, until)| (from..until).contains(&seq));
                if !in_gap {
                    let entry = deliveries.prefix.entry(partition).or_insert(offset);
                    *entry = (*entry).max(offset);
                }
            }
            Err((err, message)) => {
                let gap = deliveries
                    .gaps
                    .entry(message.partition())
                    .or_insert((seq, usize::MAX));
                if gap.1 != usize::MAX && seq >= gap.1 {
                    // A failure after an already reported gap opens a new one.
                    *gap = (seq, usize::MAX);
                }
                gap.0 = gap.0.min(seq);
                if deliveries.failure.is_none() {
                    let key_len = message.key().map_or(0, <[u8]>::len);
                    let error = kafka_error(
                        &format!("delivering a record (key of {key_len} bytes)"),
                        At::partition(&self.topic, message.partition()),
                        err.clone(),
                    );
                    deliveries.failure = Some(error);
                }
            }
        }
    }
}

type KafkaProducer = ThreadedProducer<DeliveryContext>;

/// A [`ChangelogSink`] on a librdkafka producer (`enable.idempotence=true`,
/// `acks=all`), transactional under exactly-once.
///
/// `append` only enqueues; delivery callbacks record the acknowledged offsets, and
/// [`flush`](ChangelogSink::flush) waits for them off the async executor. A record's
/// timestamp `0` is replaced by the current time (librdkafka's convention).
pub struct KafkaSink {
    topic: String,
    guarantee: ProcessingGuarantee,
    producer: KafkaProducer,
    flush_timeout: Duration,
    enqueue_timeout: Duration,
    in_transaction: AtomicBool,
    /// Acknowledged offsets at the last commit, restored when a transaction aborts.
    committed: Mutex<BTreeMap<Partition, i64>>,
    /// Set once the producer hit a fatal error (fenced, ...): the sink stays unusable.
    broken: Mutex<Option<(ErrorKind, String)>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("guarantee", &self.guarantee)
            .field("in_transaction", &self.in_transaction())
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer; under exactly-once also initialises transactions, which
    /// fences older producers with the same transactional id and aborts their open
    /// transaction.
    pub(crate) async fn create(
        config: &KafkaChangelogConfig,
        topic: &str,
        options: &SinkOptions,
    ) -> Result<Self> {
        let exactly_once = options.guarantee == ProcessingGuarantee::ExactlyOnce;
        let mut ours = vec![("enable.idempotence", "true"), ("acks", "all")];
        if exactly_once {
            let Some(id) = options.transactional_id.as_deref() else {
                return Err(Error::invalid_input(format!(
                    "an exactly-once sink for changelog topic {topic} needs a transactional id"
                )));
            };
            if config
                .producer
                .get("enable.idempotence")
                .is_some_and(|v| v.trim() != "true")
            {
                return Err(Error::invalid_input(format!(
                    "the exactly-once sink for changelog topic {topic} cannot run with enable.idempotence={}",
                    config
                        .producer
                        .get("enable.idempotence")
                        .map_or("", String::as_str)
                )));
            }
            ours.push(("transactional.id", id));
            // The first send of a transaction right after a commit is refused with
            // CONCURRENT_TRANSACTIONS until the broker has written the previous commit's
            // markers; librdkafka then waits retry.backoff.ms (100 ms by default) before
            // asking again, which made every commit interval ~100 ms long. The Java
            // producer retries that request after 20 ms for the same reason.
            ours.push(("retry.backoff.ms", "20"));
        }
        let client_config = config.client_config(&ours, &config.producer);
        let context = DeliveryContext {
            topic: topic.to_owned(),
            next_seq: AtomicUsize::new(0),
            enqueued: AtomicUsize::new(0),
            deliveries: Mutex::default(),
            settled: Condvar::new(),
        };
        let producer = KafkaProducer::from_config_and_context(&client_config, context)
            .map_err(|err| kafka_error("creating a producer", At::topic(topic), err))?;
        let sink = Self {
            topic: topic.to_owned(),
            guarantee: options.guarantee,
            producer,
            flush_timeout: config.flush_timeout,
            enqueue_timeout: config.enqueue_timeout,
            in_transaction: AtomicBool::new(false),
            committed: Mutex::default(),
            broken: Mutex::default(),
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

    fn check_usable(&self) -> Result<()> {
        let broken = self.broken.lock().unwrap_or_else(PoisonError::into_inner);
        match &*broken {
            Some((kind, why)) => Err(Error::new(
                *kind,
                format!(
                    "the sink for changelog topic {} is unusable: {why}",
                    self.topic
                ),
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

    fn require_exactly_once(&self, what: &str) -> Result<()> {
        if self.guarantee == ProcessingGuarantee::ExactlyOnce {
            Ok(())
        } else {
            Err(Error::unsupported(format!(
                "{what} on changelog topic {}: the sink is at-least-once, transactions need exactly-once",
                self.topic
            )))
        }
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
                Error::internal(format!("{op} task for topic {} failed: {err}", self.topic))
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
            return kafka_error(op, At::topic(&self.topic), err);
        }
        // librdkafka keeps the underlying cause (fenced, ...) apart from the error.
        let (code, reason) = self
            .producer
            .client()
            .fatal_error()
            .unwrap_or((RDKafkaErrorCode::Fatal, err.to_string()));
        self.poison(
            kafka_error(op, At::topic(&self.topic), KafkaError::Global(code)).context(format!(
                "fatal producer error ({reason}), the sink is unusable"
            )),
        )
    }

    /// Waits for every enqueued record, then reports the first delivery failure.
    async fn flush_deliveries(&self, op: &'static str) -> Result<()> {
        let timeout = self.flush_timeout;
        // Waits on our own delivery reports rather than `Producer::flush`, whose loop
        // polls in 100 ms steps that the producer's polling thread never cuts short, so
        // every flush took at least 100 ms.
        let flushed = self
            .blocking(op, move |p| {
                let context = p.context();
                let target = context.enqueued.load(Ordering::SeqCst);
                let deadline = deadline_after(timeout);
                let mut deliveries = context.lock();
                while deliveries.settled < target {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
                    }
                    deliveries = context
                        .settled
                        .wait_timeout(deliveries, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                Ok(())
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

    fn acked(&self) -> Position {
        self.producer
            .context()
            .lock()
            .acked
            .iter()
            .map(|(&p, &o)| (p, o))
            .collect()
    }

    /// Aborts after a failure inside a transaction, keeping `cause` as the error.
    async fn abort_after(&self, cause: Error) -> Error {
        match self.abort_transaction().await {
            Ok(()) => cause.context("the transaction was aborted"),
            Err(abort) => cause.context(format!("aborting the transaction failed too ({abort})")),
        }
    }
}

#[async_trait]
impl ChangelogSink for KafkaSink {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn guarantee(&self) -> ProcessingGuarantee {
        self.guarantee
    }

    fn append(&self, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        self.check_usable()?;
        if self.guarantee == ProcessingGuarantee::ExactlyOnce && !self.in_transaction() {
            return Err(Error::invalid_input(format!(
                "append to changelog topic {} partition {partition} outside a transaction (exactly-once)",
                self.topic
            )));
        }
        let seq = self
            .producer
            .context()
            .next_seq
            .fetch_add(1, Ordering::SeqCst);
        let mut message: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, seq)
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
        let deadline = deadline_after(self.enqueue_timeout);
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
                    if Instant::now() < deadline =>
                {
                    // Serve delivery reports so the queue drains, then try again.
                    self.producer.poll(Duration::from_millis(10));
                    message = returned;
                }
                Err((err, _)) => {
                    let at = At::partition(&self.topic, partition);
                    let error = kafka_error("enqueueing a record", at, err);
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

    async fn flush(&self) -> Result<Position> {
        self.check_usable()?;
        self.flush_deliveries("flushing").await?;
        Ok(self.acked())
    }

    fn acknowledged(&self) -> Position {
        let deliveries = self.producer.context().lock();
        deliveries.prefix.iter().map(|(&p, &o)| (p, o)).collect()
    }

    fn begin_transaction(&self) -> Result<()> {
        self.require_exactly_once("begin_transaction")?;
        self.check_usable()?;
        if self.in_transaction() {
            return Err(Error::invalid_input(format!(
                "a transaction is already open on changelog topic {}",
                self.topic
            )));
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

    async fn commit_transaction(&self) -> Result<Position> {
        self.require_exactly_once("commit_transaction")?;
        self.check_usable()?;
        if !self.in_transaction() {
            return Err(Error::invalid_input(format!(
                "commit_transaction on changelog topic {} without an open transaction",
                self.topic
            )));
        }
        // Flush first so a failed record is reported by name, not as a generic abort.
        if let Err(err) = self.flush_deliveries("flushing the transaction").await {
            if err.kind() == ErrorKind::Timeout
                || self
                    .broken
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
            {
                // Still open (a retry may succeed) or unusable anyway.
                return Err(err);
            }
            return Err(self.abort_after(err).await);
        }
        let timeout = self.flush_timeout;
        let producer = self.producer.clone();
        let committed = tokio::task::spawn_blocking(move || producer.commit_transaction(timeout))
            .await
            .map_err(|err| {
                Error::internal(format!(
                    "commit task for topic {} failed: {err}",
                    self.topic
                ))
            })?;
        match committed {
            Ok(()) => {
                self.in_transaction.store(false, Ordering::SeqCst);
                Ok(self.acked())
            }
            Err(KafkaError::Transaction(txn)) if txn.txn_requires_abort() => {
                let err = kafka_error(
                    "committing the transaction",
                    At::topic(&self.topic),
                    KafkaError::Transaction(txn),
                );
                Err(self.abort_after(err).await)
            }
            // Retriable errors leave the transaction open for another commit attempt.
            Err(err) => Err(self.classify("committing the transaction", err)),
        }
    }

    async fn abort_transaction(&self) -> Result<()> {
        self.require_exactly_once("abort_transaction")?;
        self.check_usable()?;
        if !self.in_transaction() {
            return Err(Error::invalid_input(format!(
                "abort_transaction on changelog topic {} without an open transaction",
                self.topic
            )));
        }
        let timeout = self.flush_timeout;
        self.blocking("aborting the transaction", move |p| {
            p.abort_transaction(timeout)?;
            // Serve the purged records' delivery reports before forgetting them.
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

    fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::SeqCst)
    }

    async fn send_source_offsets(&self, source: &SourceOffsets) -> Result<()> {
        self.require_exactly_once("send_source_offsets")?;
        self.check_usable()?;
        if !self.in_transaction() {
            return Err(Error::invalid_input(format!(
                "send_source_offsets on changelog topic {} without an open transaction",
                self.topic
            )));
        }
        let group = source
            .group
            .clone()
            .downcast::<ConsumerGroupMetadata>()
            .map_err(|_| {
                Error::invalid_input(format!(
                    "input offsets of {} for changelog topic {}: the group must be rdkafka's ConsumerGroupMetadata",
                    source.topic, self.topic
                ))
            })?;
        let mut offsets = TopicPartitionList::new();
        for (&partition, &offset) in &source.offsets {
            offsets
                .add_partition_offset(&source.topic, partition, KafkaOffset::Offset(offset))
                .map_err(|err| {
                    kafka_error(
                        "listing input offsets",
                        At::offset(&source.topic, partition, offset),
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
}
