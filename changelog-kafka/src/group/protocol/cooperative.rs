//! The cooperative protocol ([`StandbyPolicy::None`](crate::StandbyPolicy::None) and
//! [`AllUnowned`](crate::StandbyPolicy::AllUnowned)): librdkafka's cooperative-sticky
//! assignor picks the owners, and a callback covers only the partitions that move
//! (incremental assign and unassign); the other partitions keep being processed through
//! the rebalance. Under `AllUnowned` a revoked partition stays open as a standby, and
//! after every callback this member opens a standby of every partition it does not own.
//!
//! An eager assignor set in the consumer settings still works: the same callbacks then
//! assign and unassign the whole list, as the eager protocol requires.

use std::collections::BTreeSet;
use std::sync::Arc;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use state_core::{AfterRevoke, Partition};

use super::GroupProtocol;
use crate::group::context::GroupContext;
use crate::group::handover;
use crate::group::member::Member;

/// The cooperative protocol, with or without standbys of every unowned partition.
pub(super) struct Cooperative {
    /// Standbys of every partition not owned here (`AllUnowned`).
    all_unowned: bool,
}

impl Cooperative {
    pub(super) fn new(all_unowned: bool) -> Self {
        Self { all_unowned }
    }

    /// Under `AllUnowned`, opens a standby of every partition not assigned here (on the
    /// runtime; the callback returns at once).
    fn refresh_standbys(&self, member: &Arc<Member>) {
        if !self.all_unowned {
            return;
        }
        let member = member.clone();
        member.runtime.clone().spawn(async move {
            // The manager leaves the partitions it owns alone.
            let all: BTreeSet<Partition> = (0..member.partitions).collect();
            if let Err(err) = member.manager.set_standbys(&all).await {
                log::warn!("starting standbys of {}: {err}", member.topic);
            }
        });
    }
}

impl GroupProtocol for Cooperative {
    fn assignment_strategy(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn heartbeats_per_session(&self) -> u128 {
        3
    }

    fn keeps_standbys(&self) -> bool {
        self.all_unowned
    }

    fn assigned(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()> {
        let applied = if incremental(consumer) {
            consumer.incremental_assign(list)
        } else {
            consumer.assign(list)
        };
        if handover::assign(member, consumer, list, &handover::ours(&member.topic, list)) {
            self.refresh_standbys(member);
        }
        applied
    }

    fn revoked(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()> {
        let after = if self.all_unowned {
            AfterRevoke::KeepAsStandby
        } else {
            AfterRevoke::Close
        };
        handover::revoke(
            member,
            consumer,
            &handover::ours(&member.topic, list),
            after,
        );
        self.refresh_standbys(member);
        unassign(consumer, list)
    }

    fn failed(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        list: &TopicPartitionList,
    ) -> KafkaResult<()> {
        unassign(consumer, list)
    }
}

/// Gives up `list`: only it under the cooperative protocol, everything under the eager one.
fn unassign(consumer: &BaseConsumer<GroupContext>, list: &TopicPartitionList) -> KafkaResult<()> {
    if incremental(consumer) {
        consumer.incremental_unassign(list)
    } else {
        consumer.unassign()
    }
}

/// Whether librdkafka runs the cooperative protocol (the assignor in effect decides).
fn incremental(consumer: &BaseConsumer<GroupContext>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
}
