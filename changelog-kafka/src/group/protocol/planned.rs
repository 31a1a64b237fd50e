//! The planned protocol ([`StandbyPolicy::Replicas`](crate::StandbyPolicy::Replicas)):
//! statestore's own [`Plan`] picks owners and standbys, and the group runs the eager
//! protocol only as a barrier and a roster. Every rebalance revokes every partition from
//! every member (each commits and keeps its stores open as standbys) before the group's
//! new generation forms; then each member reads the generation's members, assigns itself
//! the partitions the plan gives it, ignoring the assignor's choice, and places the
//! standbys the plan gives it. The barrier is what makes that safe: no member of the new
//! generation still processes a partition of the old one, and one of an older generation
//! is fenced (exactly-once) when it commits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use state_core::{AfterRevoke, Error, Partition, Result};

use super::GroupProtocol;
use crate::error::{At, kafka_error};
use crate::group::context::GroupContext;
use crate::group::handover;
use crate::group::member::Member;
use crate::group::placement::Plan;
use crate::group::{GroupConfig, view};

/// The planned protocol with `k` standbys per partition.
pub(super) struct Planned {
    k: usize,
    placement: Arc<Placement>,
}

/// What planning owners and standbys needs.
struct Placement {
    /// This member's client id, which the group's description lists it by.
    identity: String,
    group_id: String,
    /// A client outside the group that reads the group's description.
    describer: BaseConsumer,
    /// How long a description may be retried before the member fails.
    timeout: Duration,
    /// Counts planned assignments, so the standbys of an older one, placed on the
    /// runtime after a newer one came, are not placed at all.
    plans: AtomicU64,
    /// Held by each placement of standbys.
    placing: tokio::sync::Mutex<()>,
}

impl Planned {
    /// The protocol of `config`'s group for the member the group lists as `identity`.
    /// Refuses a cooperative assignor in the consumer settings: the plan needs the eager
    /// barrier (and librdkafka would refuse assigning the plan's partitions anyway).
    pub(super) fn new(config: &GroupConfig, identity: &str, k: usize) -> Result<Self> {
        let topic = config.input_topic.as_str();
        if let Some(strategy) = config
            .kafka
            .consumer
            .get("partition.assignment.strategy")
            .filter(|strategy| strategy.contains("cooperative"))
        {
            return Err(Error::invalid_input(format!(
                "StandbyPolicy::Replicas runs the eager protocol as its rebalance barrier, but \
                 the consumer settings of input topic {topic} set the cooperative \
                 partition.assignment.strategy={strategy}"
            )));
        }
        let describer = config
            .kafka
            .client_config(&[], &config.kafka.consumer)
            .create()
            .map_err(|err| kafka_error("creating the group describer", At::topic(topic), err))?;
        Ok(Self {
            k,
            placement: Arc::new(Placement {
                identity: identity.to_owned(),
                group_id: config.group_id.clone(),
                describer,
                timeout: config.kafka.metadata_timeout,
                plans: AtomicU64::new(0),
                placing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The plan of the group's current generation, read from its description: `None`
    /// when the group is rebalancing again or no longer lists this member (it owns
    /// nothing until the next assignment). Blocks; failed descriptions are retried for
    /// the placement timeout.
    fn plan(&self, member: &Member) -> Result<Option<Plan>> {
        let placement = &self.placement;
        let deadline = Instant::now() + placement.timeout;
        loop {
            let described = view::members(
                &placement.describer,
                &placement.group_id,
                &member.topic,
                placement.timeout,
            );
            match described {
                Ok(Some(members)) if members.contains(&placement.identity) => {
                    return Ok(Some(Plan::new(&members, member.partitions, self.k)));
                }
                Ok(_) => return Ok(None),
                Err(err) if Instant::now() >= deadline => return Err(err),
                Err(err) => {
                    log::warn!(
                        "describing group {}, trying again: {err}",
                        placement.group_id
                    );
                    // A pause between attempts at a broker that just failed, not a wait
                    // for a condition.
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            }
        }
    }

    /// Opens the standbys of the latest planned assignment (`plan`, as counted in
    /// [`Placement::plans`]) and closes the others, keeping their directories; does
    /// nothing if a newer assignment came meanwhile. Runs on the runtime.
    fn place_standbys(&self, member: &Arc<Member>, plan: u64, standbys: BTreeSet<Partition>) {
        let member = member.clone();
        let placement = self.placement.clone();
        member.runtime.clone().spawn(async move {
            // One placement at a time, the newest winning.
            let _placing = placement.placing.lock().await;
            if placement.plans.load(Ordering::SeqCst) != plan {
                return;
            }
            if let Err(err) = member.manager.set_standbys(&standbys).await {
                log::warn!("placing standbys of {}: {err}", member.topic);
            }
        });
    }
}

impl GroupProtocol for Planned {
    /// Any eager assignor would do: its choice is ignored.
    fn assignment_strategy(&self) -> &'static str {
        "range"
    }

    /// An eager rebalance pauses every member until the last one hears of it, at its
    /// next heartbeat: more frequent heartbeats make the pause short.
    fn heartbeats_per_session(&self) -> u128 {
        10
    }

    fn keeps_standbys(&self) -> bool {
        true
    }

    /// Takes this member's partitions of the plan (none when the group rebalances again
    /// meanwhile: the next assignment comes soon) and places its standbys.
    fn assigned(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        _assignors_choice: &TopicPartitionList,
    ) -> KafkaResult<()> {
        let number = self.placement.plans.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = match self.plan(member) {
            Ok(plan) => plan,
            Err(err) => {
                member.fail(err.context("planning the partitions of the new assignment"));
                None
            }
        };
        let identity = &self.placement.identity;
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
        handover::assign(member, consumer, &list, &owned);
        // Without a plan the standbys stay as they are until the next assignment's.
        if let Some(plan) = plan {
            let standbys = plan.standbys_on(identity);
            log::info!(
                "{identity} owns partitions {owned:?} of {} and stands by for {standbys:?}",
                member.topic
            );
            self.place_standbys(member, number, standbys);
        }
        Ok(())
    }

    fn revoked(
        &self,
        member: &Arc<Member>,
        consumer: &BaseConsumer<GroupContext>,
        _assignors_choice: &TopicPartitionList,
    ) -> KafkaResult<()> {
        // librdkafka lists the group's assignment here, the assignor's choice; this
        // member owns the plan's, which the manager holds. It keeps them as standbys: the
        // plan that follows closes each one unless it stands by here.
        let owned = member.manager.owned();
        handover::revoke(member, consumer, &owned, AfterRevoke::KeepAsStandby);
        consumer.unassign()
    }

    fn failed(
        &self,
        consumer: &BaseConsumer<GroupContext>,
        _list: &TopicPartitionList,
    ) -> KafkaResult<()> {
        consumer.unassign()
    }
}
