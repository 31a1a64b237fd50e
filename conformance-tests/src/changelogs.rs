//! The changelogs under test: the in-process log (with fault injection) and, with the
//! `kafka` feature, a real Apache Kafka broker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{Changelog, InputBinding, Offset, Partition};

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

/// A topic name unique across cases, processes and runs.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}-changelog",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
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
            topic: unique_topic("model"),
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
    use std::net::{TcpStream, ToSocketAddrs};
    use std::sync::Arc;
    use std::time::Duration;

    use std::collections::BTreeMap;

    use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use state_core::{Error, InputBinding, Offset, Partition};

    use super::{ChangelogFactory, ChangelogUnderTest, unique_topic};

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
        // broker started): ask again until a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let committed = loop {
            match consumer.committed_offsets(list.clone(), Duration::from_secs(30)) {
                Ok(committed) => break committed,
                Err(err) if std::time::Instant::now() < deadline && retriable(&err) => {
                    std::thread::park_timeout(Duration::from_millis(100));
                }
                Err(err) => {
                    return Err(Error::unavailable(format!(
                        "fetching committed offsets: {err}"
                    )));
                }
            }
        };
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
    /// `CI=true` a missing broker fails instead: Kafka tests never skip in CI.
    pub fn kafka() -> Option<Kafka> {
        let bootstrap =
            std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let reachable = bootstrap.split(',').all(|server| {
            server
                .trim()
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|addr| {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
                })
        });
        if reachable {
            return Some(Kafka { bootstrap });
        }
        let message = format!(
            "no Kafka broker at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS); start one with `scripts/kafka.sh start single`"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
        None
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
                topic: unique_topic("conformance"),
                committed_offsets: Box::new(move |input| {
                    committed_offsets(&consumer, &bootstrap, input)
                }),
            }
        }
    }
}
