//! The rebalance callbacks: where the group protocol meets the store manager.

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};
use state_core::{AfterRevoke, Error, Partition};

use super::StandbyPolicy;
use super::member::{Member, Restored};
use crate::error::{At, kafka_error};

/// The consumer context of a [`StatefulConsumer`](super::StatefulConsumer).
///
/// - Revoke (before the partitions go): commit each revoked store, then its input
///   offset — in that order, so a crash in between replays input rather than losing
///   state — and close it or keep it as a standby. Lost partitions (the group moved them
///   on already) are closed without committing.
/// - Assign (after the partitions arrive): pause them and restore each on the runtime;
///   the polling thread resumes a partition when its store is ready, so no record is
///   processed against a store that has not finished restoring.
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
        let generations: Vec<(Partition, u64)> = {
            let mut assignment = member.assignment();
            partitions
                .iter()
                .map(|&p| {
                    assignment.assigned.insert(p);
                    let generation = assignment.generations.entry(p).or_default();
                    *generation += 1;
                    (p, *generation)
                })
                .collect()
        };
        member.listener.on_assigned(partitions);
        for (partition, generation) in generations {
            let member = member.clone();
            member.runtime.clone().spawn(async move {
                // A revoke that ran before this task got the partition's lock has
                // bumped the generation: then the partition is not opened at all.
                let still_wanted =
                    || member.assignment().generations.get(&partition) == Some(&generation);
                let result = member.assign(partition, &still_wanted).await;
                let restored = Restored {
                    partition,
                    generation,
                    result,
                };
                let sender = member
                    .restored
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                // The consumer is gone: nobody is left to serve the partition.
                let _ = sender.send(restored);
            });
        }
        member.refresh_standbys();
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, partitions: &[Partition]) {
        let member = &self.member;
        let lost = consumer.assignment_lost();
        let offsets = {
            let mut assignment = member.assignment();
            let mut offsets = Vec::new();
            for p in partitions {
                assignment.assigned.remove(p);
                let was_ready = assignment.ready.remove(p);
                assignment.committed.remove(p);
                *assignment.generations.entry(*p).or_default() += 1;
                if let (true, Some(offset)) = (was_ready, assignment.processed.remove(p)) {
                    offsets.push((*p, offset));
                }
            }
            offsets
        };
        let after = match member.standbys {
            // Under Replicas the placement that follows closes it unless it is placed here.
            StandbyPolicy::AllUnowned | StandbyPolicy::Replicas(_) => AfterRevoke::KeepAsStandby,
            StandbyPolicy::None => AfterRevoke::Close,
        };
        // Callbacks run on the polling thread, never a runtime worker (checked when
        // polling), so blocking here is allowed — and needed: the partitions must be
        // committed before the group hands them to someone else.
        let exactly_once = member.exactly_once();
        let closed = member.runtime.block_on(async {
            if exactly_once && !lost {
                member
                    .attach_source_offsets(&offsets, consumer.group_metadata())
                    .await?;
            }
            member.revoke(partitions, after, lost).await
        });
        match closed {
            Ok(()) if exactly_once || lost => {}
            Ok(()) => match commit_offsets(consumer, &member.topic, &offsets) {
                Ok(OffsetCommit::Done) => {}
                Ok(OffsetCommit::RefusedByRebalance) => log::warn!(
                    "offsets of revoked partitions {partitions:?} of {} were refused; their next owner replays input from the previous commit",
                    member.topic
                ),
                Err(err) => member.fail(err),
            },
            Err(err) => member.fail(err.context("closing revoked partitions")),
        }
        member.listener.on_revoked(partitions, lost);
        member.refresh_standbys();
    }
}

/// What became of an offset commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OffsetCommit {
    /// The group stored the offsets.
    Done,
    /// The group was rebalancing and refused them; they stay pending for the next
    /// commit, or the next owner replays from the previous commit (at-least-once).
    RefusedByRebalance,
}

/// Commits `offsets` (next offsets to consume) of `topic` synchronously. A refusal
/// because the group is rebalancing is not an error (Kafka Streams skips such a commit
/// too): the stores are committed already, and replaying input is what at-least-once
/// allows.
pub(crate) fn commit_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    offsets: &[(Partition, i64)],
) -> Result<OffsetCommit, Error> {
    if offsets.is_empty() {
        return Ok(OffsetCommit::Done);
    }
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        list.add_partition_offset(topic, partition, KafkaOffset::Offset(offset))
            .map_err(|err| {
                kafka_error(
                    "listing offsets to commit",
                    At::partition(topic, partition),
                    err,
                )
            })?;
    }
    match consumer.commit(&list, CommitMode::Sync) {
        Ok(()) => Ok(OffsetCommit::Done),
        Err(err) if refused_by_rebalance(&err) => {
            log::info!("input offsets of {topic} not committed, the group is rebalancing: {err}");
            Ok(OffsetCommit::RefusedByRebalance)
        }
        Err(err) => Err(kafka_error(
            "committing input offsets",
            At::topic(topic),
            err,
        )),
    }
}

fn refused_by_rebalance(err: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        err.rdkafka_error_code(),
        Some(
            C::IllegalGeneration
                | C::RebalanceInProgress
                | C::UnknownMemberId
                | C::FencedInstanceId
                | C::StaleMemberEpoch
        )
    )
}
