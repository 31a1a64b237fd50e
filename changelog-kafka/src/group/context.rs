//! The rebalance callbacks: where the group protocol meets the store manager. They only
//! translate: a revoke becomes [`StoreManager::revoke`](state_core::StoreManager::revoke)
//! (or [`lose`](state_core::StoreManager::lose)), an assignment becomes
//! [`assign`](state_core::StoreManager::assign) with its restore jobs spawned, and every
//! callback refreshes the standbys.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use state_core::{AfterRevoke, ErrorKind, Partition};

use super::StandbyPolicy;
use super::member::Member;
use crate::error::{At, kafka_error};

/// The consumer context of a [`StatefulConsumer`](super::StatefulConsumer).
///
/// - Revoke (before the partitions go): the manager commits every active partition —
///   their stores' changes and input offsets — and closes the revoked ones or keeps them
///   as standbys. Lost partitions (the group moved them on already) are closed without
///   committing.
/// - Assign (after the partitions arrive): pause them and start their restores on the
///   runtime; the polling thread resumes a partition when the manager reports it ready,
///   so no record is processed against a store that has not finished restoring.
pub struct GroupContext {
    pub(crate) member: Arc<Member>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            self.revoke(consumer, &self.ours(list));
        }
        if let Rebalance::Error(err) = rebalance {
            self.member.fail(kafka_error(
                "rebalancing",
                At::topic(&self.member.topic),
                err.clone(),
            ));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            self.assign(consumer, list, &self.ours(list));
        }
    }
}

impl GroupContext {
    fn ours(&self, list: &TopicPartitionList) -> Vec<Partition> {
        list.elements_for_topic(&self.member.topic)
            .iter()
            .map(|e| e.partition())
            .collect()
    }

    fn assign(
        &self,
        consumer: &BaseConsumer<Self>,
        list: &TopicPartitionList,
        partitions: &[Partition],
    ) {
        let member = &self.member;
        if let Err(err) = consumer.pause(list) {
            member.fail(kafka_error(
                "pausing newly assigned partitions until restored",
                At::topic(&member.topic),
                err,
            ));
            return;
        }
        for job in member.manager.assign(partitions) {
            // The outcome reaches the polling thread through the manager's ready list.
            member.runtime.spawn(job);
        }
        member.listener.on_assigned(partitions);
        member.refresh_standbys();
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &[Partition]) {
        let member = &self.member;
        let lost = consumer.assignment_lost();
        let after = match member.standbys {
            // Under Replicas the placement that follows closes it unless it is placed here.
            StandbyPolicy::AllUnowned | StandbyPolicy::Replicas(_) => AfterRevoke::KeepAsStandby,
            StandbyPolicy::None => AfterRevoke::Close,
        };
        // Callbacks run on the polling thread, never a runtime worker (checked when
        // polling), so blocking here is allowed — and needed: the partitions must be
        // committed before the group hands them to someone else.
        let closed = member.runtime.block_on(async {
            if lost {
                member.manager.lose(partitions).await
            } else {
                member.manager.revoke(partitions, after).await
            }
        });
        match closed {
            Ok(()) => {}
            // The revoked partitions are closed all the same, holding their last commit;
            // their next owner replays input from it.
            Err(err) if err.kind() == ErrorKind::Rebalancing => log::warn!(
                "the commit of revoked partitions {partitions:?} of {} was refused by the \
                 rebalance: {err}",
                member.topic
            ),
            Err(err) => member.fail(err),
        }
        member.listener.on_revoked(partitions, lost);
        member.refresh_standbys();
    }
}
