//! Settings of a [`StatefulConsumer`](super::StatefulConsumer).

use std::time::Duration;

use crate::KafkaChangelogConfig;

/// Which partitions an instance keeps standby copies of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandbyPolicy {
    /// No standbys: a partition that moves here restores from its local directory (if
    /// it was here before) or from the whole changelog.
    None,
    /// A standby of every input partition this instance does not own, so with `n`
    /// instances each partition has `n - 1` warm copies (Kafka Streams'
    /// `num.standby.replicas = n - 1`); revoked partitions stay open as standbys.
    AllUnowned,
}

/// How a [`StatefulConsumer`](super::StatefulConsumer) joins its group.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The cluster, and client settings laid over ours (the `consumer` map applies to
    /// the group consumer too).
    pub kafka: KafkaChangelogConfig,
    /// `group.id`; use the application id, as Kafka Streams does.
    pub group_id: String,
    /// The input topic; its partitions are the store partitions.
    pub input_topic: String,
    /// How often stores and input offsets are committed (default 1 s).
    pub commit_interval: Duration,
    /// `session.timeout.ms`: how long a dead instance keeps its partitions (default 10 s;
    /// the broker's minimum is usually 6 s).
    pub session_timeout: Duration,
    /// Standby copies this instance keeps.
    pub standbys: StandbyPolicy,
}

impl GroupConfig {
    /// Group `group_id` consuming `input_topic` on `kafka`'s cluster, no standbys.
    pub fn new(
        kafka: KafkaChangelogConfig,
        group_id: impl Into<String>,
        input_topic: impl Into<String>,
    ) -> Self {
        Self {
            kafka,
            group_id: group_id.into(),
            input_topic: input_topic.into(),
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(10),
            standbys: StandbyPolicy::None,
        }
    }

    /// Sets [`commit_interval`](Self::commit_interval).
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Sets [`session_timeout`](Self::session_timeout).
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Sets [`standbys`](Self::standbys).
    pub fn with_standbys(mut self, standbys: StandbyPolicy) -> Self {
        self.standbys = standbys;
        self
    }
}
