//! Who serves which partition, for queries from any instance (Kafka Streams'
//! `queryMetadataForKey`): read from the broker's description of the group, so every
//! instance sees the same answer without a channel of its own.
//!
//! - **Endpoints.** A member with an endpoint ([`GroupConfig::endpoint`]) carries it at
//!   the end of its client id (`…@host:port`), which the description lists. Kafka
//!   Streams puts `application.server` in the subscription's user data; librdkafka's
//!   built-in assignors write that field themselves, and the client id is the one field
//!   of a member's description that an application sets.
//! - **Owners.** Under the cooperative protocol, the assignment the description lists;
//!   under the planned one ([`StandbyPolicy::Replicas`]), whose listed assignment is the
//!   eager barrier's and ignored, the plan every member computes from the same roster.
//! - **Staleness.** Described at most every [`REFRESH`]; a description taken mid-rebalance
//!   lists no owners. A query that follows an out-of-date answer reaches an instance that
//!   no longer serves the partition, which answers that it is not there — never with
//!   another partition's or an older owner's state.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use state_core::{Partition, Result};

use super::placement::Plan;
use super::settings::endpoint_of;
use super::{GroupConfig, StandbyPolicy, assignment};
use crate::error::{At, kafka_error};

/// How long a description is reused.
pub const REFRESH: Duration = Duration::from_millis(250);

/// One member of the group as queries see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member's client id (its identity in the group).
    pub client_id: String,
    /// Where it serves queries, if it advertises an endpoint.
    pub endpoint: Option<String>,
    /// Partitions it owns.
    pub owned: BTreeSet<Partition>,
    /// Partitions it keeps a standby copy of.
    pub standbys: BTreeSet<Partition>,
}

/// The group as one description showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// Whether the group was `Stable`; mid-rebalance no member is listed as an owner.
    pub stable: bool,
    /// Its members, by client id.
    pub members: Vec<GroupMember>,
}

impl GroupView {
    /// The member that owns `partition`, if the group is stable and one does.
    pub fn owner(&self, partition: Partition) -> Option<&GroupMember> {
        self.members.iter().find(|m| m.owned.contains(&partition))
    }

    /// The members with a standby copy of `partition`.
    pub fn standbys(&self, partition: Partition) -> Vec<&GroupMember> {
        self.members
            .iter()
            .filter(|m| m.standbys.contains(&partition))
            .collect()
    }
}

/// Reads the group's owners and endpoints (see the [module docs](self)).
pub struct GroupDirectory {
    describer: BaseConsumer,
    group_id: String,
    topic: String,
    partitions: i32,
    standbys: StandbyPolicy,
    timeout: Duration,
    cached: Mutex<Option<(Instant, Arc<GroupView>)>>,
}

impl GroupDirectory {
    /// The directory of `config`'s group, whose input topic has `partitions` partitions.
    pub fn new(config: &GroupConfig, partitions: i32) -> Result<Self> {
        let describer = config
            .kafka
            .client_config(&[], &config.kafka.consumer)
            .create()
            .map_err(|err| {
                kafka_error(
                    "creating the group directory's client",
                    At::topic(&config.input_topic),
                    err,
                )
            })?;
        Ok(Self {
            describer,
            group_id: config.group_id.clone(),
            topic: config.input_topic.clone(),
            partitions,
            standbys: config.standbys,
            timeout: config.kafka.metadata_timeout,
            cached: Mutex::new(None),
        })
    }

    /// The group now, described at most [`REFRESH`] ago. Blocks on the broker.
    pub fn view(&self) -> Result<Arc<GroupView>> {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, view)) = cached.as_ref()
            && at.elapsed() < REFRESH
        {
            return Ok(view.clone());
        }
        let view = Arc::new(self.describe()?);
        *cached = Some((Instant::now(), view.clone()));
        Ok(view)
    }

    /// The group's description, read now. Blocks on the broker.
    pub fn describe(&self) -> Result<GroupView> {
        let list = self
            .describer
            .fetch_group_list(Some(&self.group_id), self.timeout)
            .map_err(|err| {
                kafka_error("describing the consumer group", At::topic(&self.topic), err)
            })?;
        let Some(group) = list.groups().iter().find(|g| g.name() == self.group_id) else {
            return Ok(GroupView {
                stable: false,
                members: Vec::new(),
            });
        };
        let stable = group.state() == "Stable";
        let mut members = Vec::new();
        for member in group.members() {
            let assigned = match member.assignment() {
                Some(bytes) => assignment::partitions_of(bytes, &self.topic)
                    .map_err(|err| err.context(format!("member {}", member.client_id())))?,
                None => BTreeSet::new(),
            };
            members.push(GroupMember {
                client_id: member.client_id().to_owned(),
                endpoint: endpoint_of(member.client_id()).map(str::to_owned),
                owned: if stable { assigned } else { BTreeSet::new() },
                standbys: BTreeSet::new(),
            });
        }
        members.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        if stable {
            self.place(&mut members);
        }
        Ok(GroupView { stable, members })
    }

    /// Fills in owners and standbys as the group's protocol places them.
    fn place(&self, members: &mut [GroupMember]) {
        let all: BTreeSet<Partition> = (0..self.partitions).collect();
        match self.standbys {
            StandbyPolicy::None => {}
            StandbyPolicy::AllUnowned => {
                for member in members.iter_mut() {
                    member.standbys = all.difference(&member.owned).copied().collect();
                }
            }
            StandbyPolicy::Replicas(k) => {
                let roster: BTreeSet<String> =
                    members.iter().map(|m| m.client_id.clone()).collect();
                let plan = Plan::new(&roster, self.partitions, k);
                for member in members.iter_mut() {
                    member.owned = plan.owned_by(&member.client_id);
                    member.standbys = plan.standbys_on(&member.client_id);
                }
            }
        }
    }
}
