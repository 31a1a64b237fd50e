//! The input a sink commits offsets for: a consumer in the input's consumer group.
//!
//! At-least-once, the offsets are committed through that consumer after the records are
//! flushed. Exactly-once, they travel inside the transaction (`send_offsets_to_transaction`)
//! with the consumer's group metadata — group id, generation and member id — with which
//! the broker fences a member of an older generation (KIP-447). A sink of a
//! [`StatefulConsumer`](crate::StatefulConsumer) uses the group consumer itself, so the
//! generation is always the current one; a sink made by
//! [`KafkaChangelog::sink`](crate::KafkaChangelog) with an input binding has a consumer of
//! its own in the group, outside its membership.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, ConsumerGroupMetadata,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{Error, ErrorKind, Partition, Result, SourceOffsets};

use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};

/// What became of an offset commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetCommit {
    /// The group stored the offsets.
    Done,
    /// The group was rebalancing and refused them; they stay pending for the next
    /// commit, or the next owner replays from the previous commit (at-least-once).
    RefusedByRebalance,
}

/// How long a settle waits between committed-offset fetches that found the offsets of a
/// pending transaction.
const UNSTABLE_RETRY: Duration = Duration::from_millis(20);

/// A consumer of the input's group, seen by a sink.
pub(crate) trait InputGroup: Send + Sync {
    /// The input topic.
    fn topic(&self) -> &str;

    /// The group's identity now, for `send_offsets_to_transaction`.
    fn metadata(&self) -> Result<ConsumerGroupMetadata>;

    /// Commits `offsets` synchronously (at-least-once).
    fn commit(&self, offsets: &SourceOffsets) -> Result<OffsetCommit>;

    /// Waits until no pending transaction holds offsets of `partition`, at most
    /// `timeout`.
    fn wait_stable(&self, partition: Partition, timeout: Duration) -> Result<()>;
}

/// An [`InputGroup`] on a consumer owned elsewhere (or by `own`).
pub(crate) struct ConsumerInput<C: ConsumerContext + 'static> {
    topic: String,
    consumer: Weak<BaseConsumer<C>>,
    /// The consumer, when this input made it (a sink's own); `None` when the group
    /// consumer it watches belongs to a `StatefulConsumer`.
    _own: Option<Arc<BaseConsumer<C>>>,
}

impl<C: ConsumerContext + 'static> ConsumerInput<C> {
    /// Watches `consumer`, which its owner keeps alive.
    pub(crate) fn member(topic: &str, consumer: &Arc<BaseConsumer<C>>) -> Self {
        Self {
            topic: topic.to_owned(),
            consumer: Arc::downgrade(consumer),
            _own: None,
        }
    }

    /// Owns `consumer`.
    pub(crate) fn owned(topic: &str, consumer: BaseConsumer<C>) -> Self {
        let consumer = Arc::new(consumer);
        Self {
            topic: topic.to_owned(),
            consumer: Arc::downgrade(&consumer),
            _own: Some(consumer),
        }
    }

    fn consumer(&self) -> Result<Arc<BaseConsumer<C>>> {
        self.consumer.upgrade().ok_or_else(|| {
            Error::new(
                ErrorKind::Closed,
                format!(
                    "the consumer of input topic {} is closed: no offsets can be committed",
                    self.topic
                ),
            )
        })
    }

    fn list(
        &self,
        offsets: impl IntoIterator<Item = (Partition, Option<i64>)>,
    ) -> Result<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for (partition, offset) in offsets {
            let at = At::partition(&self.topic, partition);
            match offset {
                Some(offset) => list
                    .add_partition_offset(&self.topic, partition, KafkaOffset::Offset(offset))
                    .map_err(|err| kafka_error("listing input offsets", at, err))?,
                None => {
                    list.add_partition(&self.topic, partition);
                }
            }
        }
        Ok(list)
    }
}

impl<C: ConsumerContext + 'static> InputGroup for ConsumerInput<C> {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn metadata(&self) -> Result<ConsumerGroupMetadata> {
        self.consumer()?.group_metadata().ok_or_else(|| {
            Error::internal(format!(
                "the consumer of input topic {} has no group metadata to commit offsets with",
                self.topic
            ))
        })
    }

    fn commit(&self, offsets: &SourceOffsets) -> Result<OffsetCommit> {
        let list = self.list(offsets.iter().map(|(p, o)| (p, Some(o))))?;
        match self.consumer()?.commit(&list, CommitMode::Sync) {
            Ok(()) => Ok(OffsetCommit::Done),
            Err(err) if refused_by_rebalance(&err) => {
                log::info!(
                    "input offsets of {} not committed, the group is rebalancing: {err}",
                    self.topic
                );
                Ok(OffsetCommit::RefusedByRebalance)
            }
            Err(err) => Err(kafka_error(
                "committing input offsets",
                At::topic(&self.topic),
                err,
            )),
        }
    }

    fn wait_stable(&self, partition: Partition, timeout: Duration) -> Result<()> {
        let consumer = self.consumer()?;
        let deadline = deadline_after(timeout);
        let at = At::partition(&self.topic, partition);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A read-committed consumer asks for stable offsets (KIP-447): the broker
            // answers UNSTABLE_OFFSET_COMMIT while a transaction holding offsets of the
            // partition is pending, and librdkafka retries a few times before it hands
            // that answer back.
            let fetched = consumer
                .committed_offsets(self.list([(partition, None)])?, left)
                .map_err(|err| kafka_error("fetching the committed input offset", at, err));
            let unstable = match fetched {
                Ok(fetched) => fetched.elements().iter().any(|e| {
                    e.error().err().and_then(|err| err.rdkafka_error_code())
                        == Some(RDKafkaErrorCode::UnstableOffsetCommit)
                }),
                // The group's coordinator moving or loading (NotCoordinator right after
                // a broker starts): ask again.
                Err(err) if err.is_retriable() && Instant::now() < deadline => {
                    log::info!("{err}; asking again");
                    true
                }
                Err(err) => return Err(err),
            };
            if !unstable {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the committed offset of input topic {} partition {partition} stayed \
                         unstable for {timeout:?}: a transaction holding it neither committed \
                         nor aborted (a dead producer's is aborted after its \
                         transaction.timeout.ms)",
                        self.topic
                    ),
                ));
            }
            std::thread::sleep(UNSTABLE_RETRY.min(left));
        }
    }
}

fn refused_by_rebalance(err: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        err.rdkafka_error_code(),
        Some(
            C::IllegalGeneration
                | C::RebalanceInProgress
                | C::UnknownMemberId
                | C::FencedInstanceId
                | C::StaleMemberEpoch
        )
    )
}
