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

/// Ends a client id that carries an endpoint; an endpoint never holds one.
const ENDPOINT_MARK: char = '@';

/// Ours: the configured prefix and the instance id, then the endpoint queries reach this
/// instance at, if it has one (see `directory`).
fn client_id(config: &GroupConfig, instance: &str) -> String {
    match &config.endpoint {
        Some(endpoint) => format!(
            "{}-{instance}{ENDPOINT_MARK}{endpoint}",
            config.kafka.client_id
        ),
        None => format!("{}-{instance}", config.kafka.client_id),
    }
}

/// The endpoint a member's client id carries, if any.
pub(super) fn endpoint_of(client_id: &str) -> Option<&str> {
    client_id
        .rsplit_once(ENDPOINT_MARK)
        .map(|(_, endpoint)| endpoint)
        .filter(|endpoint| !endpoint.is_empty())
}

/// Fails unless `endpoint` is `host:port` that a client id can carry.
pub(super) fn check_endpoint(endpoint: &str) -> state_core::Result<()> {
    let port = endpoint
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok());
    let printable = endpoint
        .chars()
        .all(|c| c.is_ascii_graphic() && c != ENDPOINT_MARK);
    if port.is_some() && printable {
        Ok(())
    } else {
        Err(state_core::Error::invalid_input(format!(
            "query endpoint {endpoint:?} is not host:port (printable ASCII, no '{ENDPOINT_MARK}')"
        )))
    }
}

/// A random instance id, for a consumer not given one: the process id and 64 random
/// bits (std's hasher keys are drawn from the OS).
fn random_instance_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::process::id());
    format!("{:x}-{random:016x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_rides_at_the_end_of_the_client_id() {
        assert_eq!(
            endpoint_of("rdkafka-i-1@127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        );
        assert_eq!(endpoint_of("rdkafka-i-1"), None);
        assert_eq!(endpoint_of("rdkafka-i-1@"), None);
    }

    #[test]
    fn only_host_port_endpoints_are_taken() {
        assert!(check_endpoint("127.0.0.1:8080").is_ok());
        assert!(check_endpoint("[::1]:8080").is_ok());
        for bad in [
            "",
            "localhost",
            ":80",
            "host:port",
            "a b:80",
            "a@b:80",
            "h:70000",
        ] {
            let err = check_endpoint(bad).unwrap_err();
            assert!(err.to_string().contains("not host:port"), "{bad}: {err}");
        }
    }
}
