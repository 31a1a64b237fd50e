//! Changelog topic creation and validation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use state_core::{Error, ErrorKind, Result, TopicSpec};

use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};

/// Whether a create request made the topic or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Created {
    /// The topic was created by this request.
    New,
    /// The topic existed before.
    Existing,
}

/// Makes a topic exist. The broker path uses CreateTopics; the embedded mock cluster,
/// which has no CreateTopics handler, plugs in its own.
#[async_trait]
pub(crate) trait TopicCreator: Send + Sync {
    /// Creates `spec`'s topic, or reports that it exists.
    async fn create(&self, spec: &TopicSpec) -> Result<Created>;
}

/// The admin client of a changelog, shared by its creator and metadata lookups.
pub(crate) type Admin = Arc<AdminClient<DefaultClientContext>>;

/// Creates topics through the Kafka admin API.
pub(crate) struct AdminCreator {
    pub(crate) admin: Admin,
    pub(crate) timeout: Duration,
}

#[async_trait]
impl TopicCreator for AdminCreator {
    async fn create(&self, spec: &TopicSpec) -> Result<Created> {
        let at = At::topic(&spec.name);
        let replication = spec.replication_factor.map_or(-1, i32::from);
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(replication),
        );
        for (key, value) in &spec.config {
            topic = topic.set(key, value);
        }
        let options = AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout));
        let results = self
            .admin
            .create_topics([&topic], &options)
            .await
            .map_err(|err| kafka_error("creating the changelog topic", at, err))?;
        let mut outcome = Err(Error::internal(format!(
            "creating the changelog topic {}: the broker returned no result",
            spec.name
        )));
        for result in results {
            outcome = match result {
                Ok(_) => Ok(Created::New),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(Created::Existing),
                Err((_, code)) => Err(kafka_error(
                    "creating the changelog topic",
                    at,
                    KafkaError::AdminOp(code),
                )),
            };
        }
        outcome
    }
}

/// Creates `spec`'s topic if missing, then waits (until `timeout`) for metadata to show
/// every partition with a leader. An existing topic with another partition count is an
/// [`ErrorKind::InvalidInput`] error, never reused.
pub(crate) async fn ensure_topic(
    creator: &dyn TopicCreator,
    admin: &Admin,
    spec: &TopicSpec,
    timeout: Duration,
) -> Result<()> {
    if spec.partitions < 1 {
        return Err(Error::invalid_input(format!(
            "changelog topic {} needs at least one partition, got {}",
            spec.name, spec.partitions
        )));
    }
    if spec.replication_factor.is_some_and(|rf| rf < 1) {
        return Err(Error::invalid_input(format!(
            "changelog topic {} needs a replication factor of at least 1, got {:?}",
            spec.name, spec.replication_factor
        )));
    }
    let min_insync = min_insync_replicas(spec)?;
    if let (Some(min_insync), Some(replicas)) = (min_insync, spec.replication_factor) {
        check_min_insync(spec, min_insync, usize::try_from(replicas).unwrap_or(0))?;
    }
    let created = creator.create(spec).await?;
    wait_until_ready(admin, spec, created, timeout).await
}

/// The topic's `min.insync.replicas`, when its config sets it.
fn min_insync_replicas(spec: &TopicSpec) -> Result<Option<usize>> {
    let Some(value) = spec.config.get(MIN_INSYNC_REPLICAS) else {
        return Ok(None);
    };
    match value.trim().parse::<usize>() {
        Ok(parsed) if parsed >= 1 => Ok(Some(parsed)),
        _ => Err(Error::invalid_input(format!(
            "changelog topic {}: {MIN_INSYNC_REPLICAS}={value:?} is not a whole number of at \
             least 1",
            spec.name
        ))),
    }
}

/// Refuses a topic whose every write would fail: the changelog's producers write with
/// `acks=all`, which needs `min.insync.replicas` replicas in sync, and a partition never
/// has more in sync than it has replicas.
fn check_min_insync(spec: &TopicSpec, min_insync: usize, replicas: usize) -> Result<()> {
    if min_insync <= replicas {
        return Ok(());
    }
    Err(Error::invalid_input(format!(
        "changelog topic {} would have {replicas} replica(s) per partition but its config asks \
         {MIN_INSYNC_REPLICAS}={min_insync}: every write to it (acks=all) would fail with \
         NOT_ENOUGH_REPLICAS; set {MIN_INSYNC_REPLICAS} to at most {replicas} in \
         with_logging_enabled, or give the topic more replicas",
        spec.name
    )))
}

/// The topic config that sets how many replicas an `acks=all` write needs.
const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

async fn wait_until_ready(
    admin: &Admin,
    spec: &TopicSpec,
    created: Created,
    timeout: Duration,
) -> Result<()> {
    let deadline = deadline_after(timeout);
    let mut last_seen: String;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match fetch_metadata(admin, &spec.name, remaining.max(Duration::from_millis(100))).await {
            Ok(metadata) => match check(&metadata, spec, created)? {
                Ready::Yes => return Ok(()),
                Ready::No(why) => last_seen = why,
            },
            // Metadata can lag right after creation; keep asking until the deadline.
            Err(err) if err.is_retriable() || err.kind() == ErrorKind::NotFound => {
                last_seen = err.to_string();
            }
            Err(err) => return Err(err),
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "changelog topic {} did not get all {} partitions with leaders within {:?}: {last_seen}",
                    spec.name, spec.partitions, timeout
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

enum Ready {
    Yes,
    No(String),
}

fn check(metadata: &Metadata, spec: &TopicSpec, created: Created) -> Result<Ready> {
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == spec.name) else {
        return Ok(Ready::No("topic missing from metadata".to_owned()));
    };
    if let Some(err) = topic.error() {
        return Ok(Ready::No(format!(
            "topic error {}",
            RDKafkaErrorCode::from(err)
        )));
    }
    let found = topic.partitions().len();
    let expected = usize::try_from(spec.partitions).unwrap_or(0);
    if found != expected {
        // A topic someone else made with another layout must never be silently reused;
        // a topic we just made may still be propagating.
        if created == Created::Existing && found > 0 {
            return Err(Error::invalid_input(format!(
                "changelog topic {} exists with {found} partitions, but {expected} are required",
                spec.name
            )));
        }
        return Ok(Ready::No(format!(
            "{found} of {expected} partitions in metadata"
        )));
    }
    let leaderless: Vec<i32> = topic
        .partitions()
        .iter()
        .filter(|p| p.leader() < 0 || p.error().is_some())
        .map(|p| p.id())
        .collect();
    if leaderless.is_empty() {
        // The cluster's default replication factor is only known once the topic exists.
        if let Some(min_insync) = min_insync_replicas(spec)? {
            let replicas = topic
                .partitions()
                .iter()
                .map(|p| p.replicas().len())
                .min()
                .unwrap_or(0);
            check_min_insync(spec, min_insync, replicas)?;
        }
        Ok(Ready::Yes)
    } else {
        Ok(Ready::No(format!(
            "partitions {leaderless:?} have no leader yet"
        )))
    }
}

/// Topic metadata, fetched off the async executor.
pub(crate) async fn fetch_metadata(
    admin: &Admin,
    topic: &str,
    timeout: Duration,
) -> Result<Metadata> {
    let admin = Arc::clone(admin);
    let name = topic.to_owned();
    tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(Some(&name), timeout))
        .await
        .map_err(|err| Error::internal(format!("metadata task for topic {topic} failed: {err}")))?
        .map_err(|err| kafka_error("fetching metadata", At::topic(topic), err))
}
