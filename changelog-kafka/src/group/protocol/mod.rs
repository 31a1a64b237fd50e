//! The group protocol, picked once per consumer from its [`StandbyPolicy`]: what the two
//! ways of placing partitions differ in — the consumer settings they need and what a
//! rebalance callback does — behind [`GroupProtocol`].
//!
//! - [`Cooperative`] (`None`, `AllUnowned`): librdkafka's cooperative-sticky assignor
//!   picks the owners and a callback covers only the partitions that move.
//! - [`Planned`] (`Replicas(k)`): statestore's own plan picks owners and standbys; the
//!   group's eager protocol is only a barrier and a roster.

mod cooperative;
mod planned;

use std::sync::Arc;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaResult;
use state_core::Result;

use super::context::GroupContext;
use super::member::Member;
use super::{GroupConfig, StandbyPolicy};
use cooperative::Cooperative;
use planned::Planned;

/// What a group protocol decides; the rest of a member is the same under both.
pub(crate) trait GroupProtocol: Send + Sync {
    /// `partition.assignment.strategy`.
    fn assignment_strategy(&self) -> &'static str;

    /// How many heartbeats fit in one session (`heartbeat.interval.ms` is the session
    /// divided by this).
    fn heartbeats_per_session(&self) -> u128;

    /// Whether this member holds standbys, which a background task keeps tailing.
    fn keeps_standbys(&self) -> bool;

    /// The group assigned `list` here: take the partitions this protocol says are ours.
    fn assigned(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()>;

    /// The group revokes `list` (lost, if the group moved it on already): commit what
    /// this member owns of it and give it up.
    fn revoked(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()>;

    /// The rebalance failed: give up `list` without touching the stores (librdkafka's
    /// rule for a failed rebalance).
    fn failed(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()>;
}

/// The protocol of `config`'s standby policy, for the member known to the group as
/// `identity` (its client id).
pub(crate) fn pick(config: &GroupConfig, identity: &str) -> Result<Box<dyn GroupProtocol>> {
    Ok(match config.standbys {
        StandbyPolicy::None => Box::new(Cooperative::new(false)),
        StandbyPolicy::AllUnowned => Box::new(Cooperative::new(true)),
        StandbyPolicy::Replicas(k) => Box::new(Planned::new(config, identity, k)?),
    })
}
