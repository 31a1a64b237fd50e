//! Connection settings and timeouts of a [`KafkaChangelog`](crate::KafkaChangelog).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;

/// Default for [`KafkaChangelogConfig::flush_timeout`].
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`KafkaChangelogConfig::metadata_timeout`].
pub const DEFAULT_METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`KafkaChangelogConfig::poll_timeout`].
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Default for [`KafkaChangelogConfig::enqueue_timeout`].
pub const DEFAULT_ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the cluster and how long to wait for it.
///
/// The `producer`, `consumer` and `admin` maps are librdkafka properties laid over the
/// ones this crate sets, so the user wins (for example `message.timeout.ms`,
/// `security.protocol`), with one exception: an exactly-once sink refuses
/// `enable.idempotence=false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaChangelogConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// `client.id` of every client this changelog creates.
    pub client_id: String,
    /// Extra librdkafka properties for sinks (producers).
    pub producer: BTreeMap<String, String>,
    /// Extra librdkafka properties for readers (consumers).
    pub consumer: BTreeMap<String, String>,
    /// Extra librdkafka properties for the admin client (topic creation).
    pub admin: BTreeMap<String, String>,
    /// How long a flush or a transaction commit/abort/init may take (default 30 s).
    pub flush_timeout: Duration,
    /// How long an admin or metadata request may take, including waiting for a new
    /// topic's partitions to get leaders (default 10 s).
    pub metadata_timeout: Duration,
    /// How long one restore read waits for records (default 500 ms).
    pub poll_timeout: Duration,
    /// How long `append` keeps retrying while the producer queue is full before it
    /// fails (default 10 s).
    pub enqueue_timeout: Duration,
}

impl KafkaChangelogConfig {
    /// A configuration for `bootstrap_servers` with the default timeouts and client id
    /// `statestore`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "statestore".to_owned(),
            producer: BTreeMap::new(),
            consumer: BTreeMap::new(),
            admin: BTreeMap::new(),
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            metadata_timeout: DEFAULT_METADATA_TIMEOUT,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            enqueue_timeout: DEFAULT_ENQUEUE_TIMEOUT,
        }
    }

    /// Sets the `client.id`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Adds a librdkafka property for producers.
    pub fn with_producer_setting(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.producer.insert(key.into(), value.into());
        self
    }

    /// Adds a librdkafka property for consumers.
    pub fn with_consumer_setting(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.consumer.insert(key.into(), value.into());
        self
    }

    /// Adds a librdkafka property for the admin client.
    pub fn with_admin_setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.admin.insert(key.into(), value.into());
        self
    }

    /// Sets [`flush_timeout`](Self::flush_timeout).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Sets [`metadata_timeout`](Self::metadata_timeout).
    pub fn with_metadata_timeout(mut self, timeout: Duration) -> Self {
        self.metadata_timeout = timeout;
        self
    }

    /// Sets [`poll_timeout`](Self::poll_timeout).
    pub fn with_poll_timeout(mut self, timeout: Duration) -> Self {
        self.poll_timeout = timeout;
        self
    }

    /// Sets [`enqueue_timeout`](Self::enqueue_timeout).
    pub fn with_enqueue_timeout(mut self, timeout: Duration) -> Self {
        self.enqueue_timeout = timeout;
        self
    }

    /// The base client config: ours first, then `user` on top.
    pub(crate) fn client_config(
        &self,
        ours: &[(&str, &str)],
        user: &BTreeMap<String, String>,
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id);
        for (key, value) in ours {
            config.set(*key, *value);
        }
        for (key, value) in user {
            config.set(key, value);
        }
        config
    }
}
