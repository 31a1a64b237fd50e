//! The rebalance callbacks: where the group protocol meets the store manager. They only
//! translate: a revoke becomes [`StoreManager::revoke`](state_core::StoreManager::revoke)
//! (or [`lose`](state_core::StoreManager::lose)), an assignment becomes
//! [`assign`](state_core::StoreManager::assign) with its restore jobs spawned, and every
//! callback refreshes the standbys.
//!
//! Two protocols, by [`StandbyPolicy`]:
//! - **Cooperative** (`None`, `AllUnowned`): librdkafka's cooperative-sticky assignor
//!   picks the owners; a callback covers only the partitions that move.
//! - **Planned** (`Replicas`): the group runs the eager protocol only as a barrier and a
//!   roster. Every rebalance revokes every partition from every member (each commits and
//!   keeps its stores open as standbys) before the group's new generation forms; then each
//!   member reads the generation's members and takes the partitions and standbys the
//!   [`Plan`](super::placement::Plan) gives it, ignoring the assignor's choice. The
//!   barrier is what makes that safe: no member of the new generation still processes a
//!   partition of the old one, and one of an older generation is fenced (exactly-once)
//!   when it commits.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
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
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let applied = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS if cooperative => {
                let applied = consumer.incremental_assign(list);
                self.assign(consumer, list, &self.ours(list));
                applied
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => match self.member.standbys {
                StandbyPolicy::Replicas(k) => self.assign_planned(consumer, k),
                StandbyPolicy::None | StandbyPolicy::AllUnowned => {
                    let applied = consumer.assign(list);
                    self.assign(consumer, list, &self.ours(list));
                    applied
                }
            },
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if cooperative => {
                self.revoke(consumer, &self.ours(list));
                consumer.incremental_unassign(list)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // librdkafka lists the group's assignment here, the assignor's choice; a
                // planned member owns the plan's, which the manager holds.
                let owned = match self.member.standbys {
                    StandbyPolicy::Replicas(_) => self.member.manager.owned(),
                    StandbyPolicy::None | StandbyPolicy::AllUnowned => self.ours(list),
                };
                self.revoke(consumer, &owned);
                consumer.unassign()
            }
            other => {
                self.member.fail(kafka_error(
                    "rebalancing",
                    At::topic(&self.member.topic),
                    KafkaError::Rebalance(other.into()),
                ));
                // librdkafka's rule for a failed rebalance: give the partitions up.
                if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(err) = applied {
            self.member.fail(kafka_error(
                "rebalancing",
                At::topic(&self.member.topic),
                err,
            ));
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

    /// Takes this member's partitions of the plan (none when the group rebalances again
    /// meanwhile: the next assignment comes soon) and places its standbys.
    fn assign_planned(
        &self,
        consumer: &BaseConsumer<Self>,
        k: usize,
    ) -> rdkafka::error::KafkaResult<()> {
        let member = &self.member;
        let number = member.placement.plans.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = match member.plan(k) {
            Ok(plan) => plan,
            Err(err) => {
                member.fail(err.context("planning the partitions of the new assignment"));
                None
            }
        };
        let identity = &member.placement.identity;
        let owned = plan
            .as_ref()
            .map(|plan| plan.owned_by(identity))
            .unwrap_or_default();
        let mut list = TopicPartitionList::new();
        for &partition in &owned {
            list.add_partition(&member.topic, partition);
        }
        consumer.assign(&list)?;
        let owned: Vec<Partition> = owned.into_iter().collect();
        self.assign(consumer, &list, &owned);
        // Without a plan the standbys stay as they are until the next assignment's.
        if let Some(plan) = plan {
            let standbys = plan.standbys_on(identity);
            log::info!(
                "{identity} owns partitions {owned:?} of {} and stands by for {standbys:?}",
                member.topic
            );
            member.place_standbys(number, standbys);
        }
        Ok(())
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
            // Under Replicas the plan that follows closes it unless it stands by here.
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
