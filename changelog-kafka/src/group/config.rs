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
    /// `k` warm copies of each partition, on members other than its owner (Kafka
    /// Streams' `num.standby.replicas = k`), and owners that follow them: statestore,
    /// not librdkafka's assignor, places both. Every member computes the same plan from
    /// the group's members (bounded-load rendezvous hashing, see below), and a
    /// partition's first standby is the member that would own it if its owner left — so
    /// when an owner dies, each of its partitions goes to the member holding its warm
    /// copy, which replays only what it lagged.
    ///
    /// - Every member owns `⌊P/n⌋` or `⌈P/n⌉` of the `P` partitions. When one member
    ///   joins or leaves, about its share of owners and `k/n` of the standbys move
    ///   (measured over 240 partitions: 51 owners and 49 new standby copies when a fifth
    ///   member joins four).
    /// - Standbys are balanced only as the owners' redistribution is: with few
    ///   partitions per member, one member can hold twice its share of them (6
    ///   partitions over 3 members: 3 standbys on the busiest member on average, 2
    ///   even). A plan that is a function of the membership alone and never moves a
    ///   survivor's partitions must be plain rendezvous hashing, whose owners are not
    ///   balanced; we keep owners balanced and take this instead.
    /// - The group runs the eager protocol (`range`, whose choice is ignored) as a
    ///   barrier: every rebalance revokes every partition from every member, which
    ///   commits and keeps its stores open as standbys, before the new generation
    ///   forms; then each member takes the plan's partitions, a kept one with nothing to
    ///   replay. Processing pauses group-wide for each rebalance, as in Kafka Streams
    ///   before KIP-429; `None` and `AllUnowned` stay cooperative. Every member of a
    ///   group must use the same policy (the broker refuses mixed assignors).
    /// - An instance opens the standbys it gains and closes those it loses, keeping
    ///   their directories (a durable store that comes back later replays only the
    ///   changelog tail); it never tails a changelog it holds no copy of. With fewer
    ///   than `k + 1` members, each partition has a standby on every member but its
    ///   owner.
    /// - Members are told apart by their client id, which the consumer makes unique per
    ///   instance (see [`GroupConfig::instance_id`]): a `client.id` set in the consumer
    ///   settings must then be unique in the group too. Static membership keeps a
    ///   restarted member's id, so its plan — and its partitions — are the same.
    Replicas(usize),
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
    /// This instance's stable identity in the group. When set, it is the consumer's
    /// `group.instance.id` (static membership, KIP-345): an instance restarted with the
    /// same id within `session.timeout.ms` gets its partitions back without a
    /// rebalance. Either way the group consumer's `client.id` ends in it, which is how
    /// standby placement tells members apart; unset, a random id is drawn per consumer.
    pub instance_id: Option<String>,
    /// Where this instance serves queries (`host:port`, Kafka Streams'
    /// `application.server`), advertised to the group through its client id so every
    /// instance's [`GroupDirectory`](super::GroupDirectory) can route a key here. A
    /// `client.id` set in the consumer settings replaces ours and with it the endpoint:
    /// such an instance answers its own queries but is never forwarded to.
    pub endpoint: Option<String>,
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
            instance_id: None,
            endpoint: None,
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

    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`instance_id`](Self::instance_id): static membership under this id.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }
}
