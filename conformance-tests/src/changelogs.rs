//! The changelogs under test: the in-process log (with fault injection) and, with the
//! `kafka` feature, a real Apache Kafka broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use state_core::Changelog;
use state_core::changelog::in_memory::InMemoryChangelog;

/// A fresh changelog per test case.
pub struct ChangelogUnderTest {
    /// The service handing out sinks and readers.
    pub changelog: Arc<dyn Changelog>,
    /// The in-process log behind it, when there is one: the fault and admin knobs.
    pub faults: Option<InMemoryChangelog>,
    /// A topic name no other case uses.
    pub topic: String,
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
        ChangelogUnderTest {
            changelog: Arc::new(log.clone()),
            faults: Some(log),
            topic: unique_topic("model"),
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

    use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};

    use super::{ChangelogFactory, ChangelogUnderTest, unique_topic};

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

    impl ChangelogFactory for Kafka {
        fn name(&self) -> &'static str {
            "kafka"
        }
        fn create(&self) -> ChangelogUnderTest {
            let config = KafkaChangelogConfig::new(self.bootstrap.clone());
            let changelog = KafkaChangelog::new(config)
                .unwrap_or_else(|err| panic!("Kafka changelog at {}: {err}", self.bootstrap));
            ChangelogUnderTest {
                changelog: Arc::new(changelog),
                faults: None,
                topic: unique_topic("conformance"),
            }
        }
    }
}
