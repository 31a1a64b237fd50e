//! The changelogs under test: the in-process log (with fault injection) and, with the
//! `kafka` feature, a real Apache Kafka broker.

use std::collections::BTreeMap;
use std::sync::Arc;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{Changelog, InputBinding, Offset, Partition};
use test_support::unique_name;

/// Reads back the input offsets committed for a consumer group and input topic.
pub type OffsetsReader =
    Box<dyn Fn(&InputBinding) -> state_core::Result<BTreeMap<Partition, Offset>> + Send + Sync>;

/// A fresh changelog per test case.
pub struct ChangelogUnderTest {
    /// The service handing out sinks and readers.
    pub changelog: Arc<dyn Changelog>,
    /// The in-process log behind it, when there is one: the fault and admin knobs.
    pub faults: Option<InMemoryChangelog>,
    /// A topic name no other case uses.
    pub topic: String,
    /// The committed input offsets, as the changelog's consumer groups hold them.
    pub committed_offsets: OffsetsReader,
}

/// A changelog kind the suite runs against.
pub trait ChangelogFactory: Send + Sync {
    /// A short name for test names and messages.
    fn name(&self) -> &'static str;
    /// A fresh changelog and an unused topic name.
    fn create(&self) -> ChangelogUnderTest;
}

/// The in-process changelog.
pub struct InProcess;

impl ChangelogFactory for InProcess {
    fn name(&self) -> &'static str {
        "in_process"
    }
    fn create(&self) -> ChangelogUnderTest {
        let log = InMemoryChangelog::new();
        let offsets = log.clone();
        ChangelogUnderTest {
            changelog: Arc::new(log.clone()),
            faults: Some(log),
            topic: unique_name("model"),
            committed_offsets: Box::new(move |input| Ok(offsets.committed_offsets(input))),
        }
    }
}

/// The in-process changelog factory.
pub fn in_process() -> InProcess {
    InProcess
}

#[cfg(feature = "kafka")]
pub use kafka::{Kafka, kafka};

#[cfg(feature = "kafka")]
mod kafka {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use state_core::{Error, InputBinding, Offset, Partition};
    use test_support::{try_eventually, unique_name};

    use super::{ChangelogFactory, ChangelogUnderTest};

    /// How long the group's coordinator may take to answer after the broker started.
    const COORDINATOR_WITHIN: Duration = Duration::from_secs(30);

    /// The offsets `input`'s group committed for partitions 0 and 1, stable ones only
    /// (a read-committed consumer waits out pending transactions).
    fn committed_offsets(
        consumer: &std::sync::OnceLock<BaseConsumer>,
        bootstrap: &str,
        input: &InputBinding,
    ) -> state_core::Result<BTreeMap<Partition, Offset>> {
        if consumer.get().is_none() {
            let created: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap)
                .set("group.id", &input.group_id)
                .set("isolation.level", "read_committed")
                .set("enable.auto.commit", "false")
                .create()
                .map_err(|err| Error::unavailable(format!("offsets consumer: {err}")))?;
            let _ = consumer.set(created);
        }
        let consumer = consumer
            .get()
            .ok_or_else(|| Error::internal("offsets consumer missing"))?;
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in [0, 1] {
            list.add_partition(&input.topic, partition);
        }
        // The group's coordinator may still be moving (NotCoordinator right after the
        // broker started): ask again until it answers; any other error is final.
        let fetched = try_eventually(
            COORDINATOR_WITHIN,
            &format!("the coordinator of group {} answering", input.group_id),
            || match consumer.committed_offsets(list.clone(), COORDINATOR_WITHIN) {
                Err(err) if retriable(&err) => Err(err),
                answer => Ok(answer),
            },
        );
        let committed = fetched
            .map_err(|timed_out| {
                Error::unavailable(format!("fetching committed offsets: {timed_out}"))
            })?
            .map_err(|err| Error::unavailable(format!("fetching committed offsets: {err}")))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect())
    }

    /// A real Apache Kafka broker at `KAFKA_BOOTSTRAP_SERVERS` (default
    /// `127.0.0.1:9092`, started by `scripts/kafka.sh start`).
    pub struct Kafka {
        bootstrap: String,
    }

    /// The Kafka factory, or `None` after a skip notice when no broker answers. Under
    /// `CI=true` a missing broker fails instead: Kafka tests never skip in CI (the rule
    /// of [`test_support::single_broker`]).
    pub fn kafka() -> Option<Kafka> {
        test_support::single_broker().map(|bootstrap| Kafka { bootstrap })
    }

    impl Kafka {
        /// The broker's bootstrap servers.
        pub fn bootstrap(&self) -> &str {
            &self.bootstrap
        }
    }

    /// Whether a committed-offset fetch may succeed when asked again.
    fn retriable(err: &rdkafka::error::KafkaError) -> bool {
        use rdkafka::error::RDKafkaErrorCode as C;
        matches!(
            err.rdkafka_error_code(),
            Some(
                C::NotCoordinator
                    | C::CoordinatorLoadInProgress
                    | C::CoordinatorNotAvailable
                    | C::WaitingForCoordinator
                    | C::BrokerTransportFailure
            )
        )
    }

    impl ChangelogFactory for Kafka {
        fn name(&self) -> &'static str {
            "kafka"
        }
        fn create(&self) -> ChangelogUnderTest {
            let config = KafkaChangelogConfig::new(self.bootstrap.clone());
            let changelog = KafkaChangelog::new(config)
                .unwrap_or_else(|err| panic!("Kafka changelog at {}: {err}", self.bootstrap));
            let bootstrap = self.bootstrap.clone();
            // One consumer per case: each check of a case asks the same group.
            let consumer = std::sync::OnceLock::new();
            ChangelogUnderTest {
                changelog: Arc::new(changelog),
                faults: None,
                topic: unique_name("conformance"),
                committed_offsets: Box::new(move |input| {
                    committed_offsets(&consumer, &bootstrap, input)
                }),
            }
        }
    }
}
