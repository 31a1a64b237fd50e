//! The group consumer's identity and librdkafka settings: ours, with the group protocol's
//! assignor and heartbeat, then the user's consumer settings on top.

use rdkafka::ClientConfig;
use state_core::ProcessingGuarantee;

use super::GroupConfig;
use super::protocol::GroupProtocol;

/// This consumer's instance id: the configured one, or a random one.
pub(super) fn instance_id(config: &GroupConfig) -> String {
    config
        .instance_id
        .clone()
        .unwrap_or_else(random_instance_id)
}

/// The client id the group lists this member by: ours ends in the instance id, but the
/// consumer settings may override it, and the group lists the one in effect.
pub(super) fn identity(config: &GroupConfig, instance: &str) -> String {
    let ours = client_id(config, instance);
    config
        .kafka
        .client_config(&[("client.id", &ours)], &config.kafka.consumer)
        .get("client.id")
        .unwrap_or(&ours)
        .to_owned()
}

/// The settings of the group consumer of instance `instance` under `guarantee`,
/// speaking `protocol`.
pub(super) fn consumer(
    config: &GroupConfig,
    instance: &str,
    guarantee: ProcessingGuarantee,
    protocol: &dyn GroupProtocol,
) -> ClientConfig {
    let client_id = client_id(config, instance);
    let session = config.session_timeout.as_millis();
    let heartbeat = (session / protocol.heartbeats_per_session())
        .max(1)
        .to_string();
    let session = session.to_string();
    let mut ours = vec![
        ("client.id", client_id.as_str()),
        ("group.id", config.group_id.as_str()),
        (
            "partition.assignment.strategy",
            protocol.assignment_strategy(),
        ),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", session.as_str()),
        ("heartbeat.interval.ms", heartbeat.as_str()),
        ("enable.partition.eof", "false"),
        // Under exactly-once, input written by transactional producers (another
        // exactly-once processor) counts only once committed, and committed offsets are
        // fetched stable (KIP-447).
        ("isolation.level", guarantee.isolation().as_str()),
    ];
    if let Some(id) = &config.instance_id {
        ours.push(("group.instance.id", id.as_str()));
    }
    config.kafka.client_config(&ours, &config.kafka.consumer)
}

fn client_id(config: &GroupConfig, instance: &str) -> String {
    format!("{}-{instance}", config.kafka.client_id)
}

/// A random instance id, for a consumer not given one: the process id and 64 random
/// bits (std's hasher keys are drawn from the OS).
fn random_instance_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::process::id());
    format!("{:x}-{random:016x}", std::process::id())
}
