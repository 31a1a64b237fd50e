//! Reading the group's members from the broker's description of the group
//! (`DescribeGroups`), for [`Plan`](super::placement::Plan)s.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use state_core::{Error, Result};

use crate::error::{At, kafka_error};

/// The group's members by their stable identity (client id), or `None` while the group
/// is not `Stable` (mid-rebalance, its membership is not settled).
pub(crate) fn members<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<BTreeSet<String>>> {
    let list = client
        .fetch_group_list(Some(group), timeout)
        .map_err(|err| kafka_error("describing the consumer group", At::topic(topic), err))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(None);
    };
    if info.state() != "Stable" {
        return Ok(None);
    }
    let mut members = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    for member in info.members() {
        let id = member.client_id().to_owned();
        if !members.insert(id.clone()) {
            repeated.insert(id);
        }
    }
    if !repeated.is_empty() {
        return Err(Error::invalid_input(format!(
            "group {group}: several members share client id {repeated:?}; partition placement \
             tells members apart by client id (leave client.id unset in the consumer settings, \
             or make it unique per instance)"
        )));
    }
    Ok(Some(members))
}
