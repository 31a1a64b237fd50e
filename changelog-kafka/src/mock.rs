//! [`EmbeddedKafka`]: librdkafka's built-in mock cluster, for demos and error injection.
//!
//! The mock needs no broker install, but it is no evidence of correctness: it ignores
//! topic configs (no compaction), writes no transaction markers and ignores
//! `isolation.level` (so it cannot test exactly-once), has no CreateTopics handler
//! (topics are made through the mock itself), and silently drops a partition's oldest
//! data past 5 MiB or 100,000 message sets. Use it at small sizes and for injected
//! request errors; real-broker tests are the evidence.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use state_core::{Error, Result, TopicSpec};

pub use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use crate::admin::{Created, TopicCreator};
use crate::changelog::KafkaChangelog;
use crate::config::KafkaChangelogConfig;
use crate::error::{At, kafka_error};

type Reply = mpsc::Sender<KafkaResult<()>>;

enum Command {
    CreateTopic {
        name: String,
        partitions: i32,
        replication: i32,
        reply: Reply,
    },
    RequestErrors(RDKafkaApiKey, Vec<RDKafkaRespErr>, Reply),
    ClearRequestErrors(RDKafkaApiKey, Reply),
    BrokerDown(i32, Reply),
    BrokerUp(i32, Reply),
    Shutdown,
}

/// A handle to the mock thread; cheap to clone.
#[derive(Clone)]
struct MockHandle {
    commands: mpsc::Sender<Command>,
}

impl MockHandle {
    /// Sends a command and waits for the mock thread's answer.
    fn call(&self, what: &str, command: impl FnOnce(Reply) -> Command) -> KafkaResult<()> {
        let (reply, answer) = mpsc::channel();
        let closed = || KafkaError::MockCluster(RDKafkaErrorCode::BrokerDestroy);
        self.commands.send(command(reply)).map_err(|_| closed())?;
        let result = answer.recv().map_err(|_| closed())?;
        if let Err(err) = &result {
            log::debug!("mock cluster: {what} failed: {err}");
        }
        result
    }
}

/// A librdkafka mock cluster running on its own thread (the cluster is `!Send`).
/// Dropping it stops the cluster.
pub struct EmbeddedKafka {
    handle: MockHandle,
    bootstrap_servers: String,
    brokers: i32,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedKafka")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("brokers", &self.brokers)
            .finish()
    }
}

impl EmbeddedKafka {
    /// Starts a mock cluster of `brokers` brokers (ids `1..=brokers`).
    pub fn start(brokers: i32) -> Result<Self> {
        if brokers < 1 {
            return Err(Error::invalid_input(format!(
                "a mock cluster needs at least one broker, got {brokers}"
            )));
        }
        let (commands, inbox) = mpsc::channel::<Command>();
        let (ready, started) = mpsc::channel::<KafkaResult<String>>();
        let thread = std::thread::Builder::new()
            .name("statestore-mock-kafka".to_owned())
            .spawn(move || run(brokers, &inbox, &ready))
            .map_err(|err| Error::from(err).context("starting the mock cluster thread"))?;
        let bootstrap_servers = started
            .recv()
            .map_err(|_| Error::internal("the mock cluster thread exited while starting"))?
            .map_err(|err| kafka_error("starting the mock cluster", At::default(), err))?;
        Ok(Self {
            handle: MockHandle { commands },
            bootstrap_servers,
            brokers,
            thread: Some(thread),
        })
    }

    /// The `bootstrap.servers` of the mock brokers.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// A changelog configuration pointing at this cluster, with default timeouts.
    pub fn config(&self) -> KafkaChangelogConfig {
        KafkaChangelogConfig::new(&self.bootstrap_servers)
    }

    /// A changelog on this cluster whose `ensure_topic` creates topics through the mock
    /// (topic configs are ignored by the mock).
    pub fn changelog(&self) -> Result<KafkaChangelog> {
        self.changelog_with(self.config())
    }

    /// As [`changelog`](Self::changelog) with `config`'s settings and timeouts; its
    /// bootstrap servers are replaced by this cluster's.
    pub fn changelog_with(&self, mut config: KafkaChangelogConfig) -> Result<KafkaChangelog> {
        config.bootstrap_servers = self.bootstrap_servers.clone();
        let creator = MockCreator {
            handle: self.handle.clone(),
            brokers: self.brokers,
        };
        KafkaChangelog::with_creator(config, |_, _| Arc::new(creator))
    }

    /// Makes the next requests of kind `api` fail with `errors`, one per request, in
    /// order (librdkafka's `rd_kafka_mock_push_request_errors`).
    pub fn inject_request_errors(
        &self,
        api: RDKafkaApiKey,
        errors: &[RDKafkaRespErr],
    ) -> Result<()> {
        let errors = errors.to_vec();
        self.mock_call("injecting request errors", |reply| {
            Command::RequestErrors(api, errors, reply)
        })
    }

    /// Drops the injected errors still pending for `api`.
    pub fn clear_request_errors(&self, api: RDKafkaApiKey) -> Result<()> {
        self.mock_call("clearing request errors", |reply| {
            Command::ClearRequestErrors(api, reply)
        })
    }

    /// Takes broker `id` down: its connections close and it refuses new ones.
    pub fn broker_down(&self, id: i32) -> Result<()> {
        self.mock_call("taking a broker down", |reply| {
            Command::BrokerDown(id, reply)
        })
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: i32) -> Result<()> {
        self.mock_call("bringing a broker up", |reply| Command::BrokerUp(id, reply))
    }

    fn mock_call(&self, what: &str, command: impl FnOnce(Reply) -> Command) -> Result<()> {
        self.handle
            .call(what, command)
            .map_err(|err| kafka_error(what, At::default(), err))
    }
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        // Ignored: a send error means the thread is gone already.
        let _ = self.handle.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::warn!("the mock cluster thread panicked");
        }
    }
}

/// The mock thread: owns the cluster, serves commands until shutdown.
fn run(brokers: i32, inbox: &mpsc::Receiver<Command>, ready: &mpsc::Sender<KafkaResult<String>>) {
    let cluster = match MockCluster::new(brokers) {
        Ok(cluster) => cluster,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(cluster.bootstrap_servers())).is_err() {
        return;
    }
    while let Ok(command) = inbox.recv() {
        // A dropped reply receiver only means the caller stopped waiting.
        let _ = match command {
            Command::CreateTopic {
                name,
                partitions,
                replication,
                reply,
            } => reply.send(cluster.create_topic(&name, partitions, replication)),
            Command::RequestErrors(api, errors, reply) => {
                cluster.request_errors(api, &errors);
                reply.send(Ok(()))
            }
            Command::ClearRequestErrors(api, reply) => {
                cluster.clear_request_errors(api);
                reply.send(Ok(()))
            }
            Command::BrokerDown(id, reply) => reply.send(cluster.broker_down(id)),
            Command::BrokerUp(id, reply) => reply.send(cluster.broker_up(id)),
            Command::Shutdown => break,
        };
    }
}

/// Creates topics through the mock cluster, which has no CreateTopics handler.
struct MockCreator {
    handle: MockHandle,
    brokers: i32,
}

#[async_trait]
impl TopicCreator for MockCreator {
    async fn create(&self, spec: &TopicSpec) -> Result<Created> {
        let handle = self.handle.clone();
        let name = spec.name.clone();
        let partitions = spec.partitions;
        // The mock cannot place more replicas than it has brokers.
        let replication = spec
            .replication_factor
            .map_or(1, i32::from)
            .min(self.brokers);
        let result = tokio::task::spawn_blocking(move || {
            handle.call("creating a topic", |reply| Command::CreateTopic {
                name,
                partitions,
                replication,
                reply,
            })
        })
        .await
        .map_err(|err| {
            Error::internal(format!("mock topic task for {} failed: {err}", spec.name))
        })?;
        match result {
            Ok(()) => Ok(Created::New),
            Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => {
                Ok(Created::Existing)
            }
            Err(err) => Err(kafka_error(
                "creating the changelog topic",
                At::topic(&spec.name),
                err,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state_core::ErrorKind;

    #[test]
    fn zero_brokers_is_invalid_input() {
        let err = EmbeddedKafka::start(0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
