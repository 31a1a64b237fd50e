//! What both group protocols do with the partitions that arrive or leave: they only
//! translate them into [`StoreManager`](state_core::StoreManager) calls. An arrival
//! becomes [`assign`](state_core::StoreManager::assign) with its restore jobs spawned, a
//! departure [`revoke`](state_core::StoreManager::revoke) (or
//! [`lose`](state_core::StoreManager::lose)). Which partitions, and what happens to the
//! standbys around them, is the protocol's.

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use state_core::{AfterRevoke, ErrorKind, Partition};

use super::context::GroupContext;
use super::member::Member;
use crate::error::{At, kafka_error};

/// The partitions of `list` in `topic`.
pub(super) fn ours(topic: &str, list: &TopicPartitionList) -> Vec<Partition> {
    list.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Pauses `list` and starts restoring `partitions` on the runtime; the polling thread
/// resumes a partition when the manager reports it ready, so no record is processed
/// against a store that has not finished restoring. `false` when pausing failed (the
/// member keeps the error for the polling thread) and nothing was assigned.
pub(super) fn assign(
    member: &Member,
    consumer: &BaseConsumer<GroupContext>,
    list: &TopicPartitionList,
    partitions: &[Partition],
) -> bool {
    if let Err(err) = consumer.pause(list) {
        member.fail(kafka_error(
            "pausing newly assigned partitions until restored",
            At::topic(&member.topic),
            err,
        ));
        return false;
    }
    for job in member.manager.assign(partitions) {
        // The outcome reaches the polling thread through the manager's ready list.
        member.runtime.spawn(job);
    }
    member.listener.on_assigned(partitions);
    true
}

/// Commits every active partition — their stores' changes and input offsets — and
/// closes `partitions` or keeps them as standbys (`after`). Lost partitions (the group
/// moved them on already) are closed without committing.
pub(super) fn revoke(
    member: &Member,
    consumer: &BaseConsumer<GroupContext>,
    partitions: &[Partition],
    after: AfterRevoke,
) {
    let lost = consumer.assignment_lost();
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
}
