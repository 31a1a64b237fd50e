//! The real Kafka brokers the tests run against (`scripts/kafka.sh` starts them on
//! 127.0.0.1), and the rule for a test that finds none.
//!
//! A test asks for its brokers first thing: `let Some(bootstrap) = single_broker() else
//! { return };`. Without a broker it is skipped with a printed reason, so a developer
//! without Kafka can still run everything else; under `CI=true` it fails instead, since a
//! Kafka test skipped in CI would pass while proving nothing.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::wait::try_eventually;

/// How long the brokers may take to accept a connection before they count as down (a
/// broker that was just restarted takes a few seconds to listen).
pub(crate) const REACHABLE_WITHIN: Duration = Duration::from_secs(5);

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One set of brokers: where the tests find it and how it is started.
struct Brokers {
    /// The variable holding the bootstrap servers.
    variable: &'static str,
    /// The servers when the variable is unset: where `scripts/kafka.sh` starts them.
    default: &'static str,
    /// The argument of `scripts/kafka.sh start` that starts them.
    script_name: &'static str,
}

const SINGLE: Brokers = Brokers {
    variable: "KAFKA_BOOTSTRAP_SERVERS",
    default: "127.0.0.1:9092",
    script_name: "single",
};

const CLUSTER: Brokers = Brokers {
    variable: "KAFKA_CLUSTER_BOOTSTRAP_SERVERS",
    default: "127.0.0.1:9192,127.0.0.1:9292,127.0.0.1:9392",
    script_name: "cluster",
};

/// The single broker's bootstrap servers: `KAFKA_BOOTSTRAP_SERVERS`, or `127.0.0.1:9092`
/// when it is unset. `None`, after printing why the test is skipped, when a listed server
/// does not accept a connection within 5 s; under `CI=true` that fails the test instead.
#[track_caller]
pub fn single_broker() -> Option<String> {
    bootstrap(&SINGLE)
}

/// The three-broker cluster's bootstrap servers: `KAFKA_CLUSTER_BOOTSTRAP_SERVERS`, or
/// `127.0.0.1:9192,127.0.0.1:9292,127.0.0.1:9392` when it is unset; skipped or failed as
/// [`single_broker`] when one of them is down.
#[track_caller]
pub fn cluster() -> Option<String> {
    bootstrap(&CLUSTER)
}

#[track_caller]
fn bootstrap(brokers: &Brokers) -> Option<String> {
    let (servers, from) = match std::env::var(brokers.variable) {
        Ok(servers) => (servers, brokers.variable.to_owned()),
        Err(_) => (
            brokers.default.to_owned(),
            format!("the default: {} is unset", brokers.variable),
        ),
    };
    let Err(down) = try_eventually(
        REACHABLE_WITHIN,
        &format!("every server of {servers} accepting a connection"),
        || refusing(&servers),
    ) else {
        return Some(servers);
    };
    let message = format!(
        "no Kafka broker reachable at {servers} ({from}): {down}; start it with \
         `scripts/kafka.sh start {}`",
        brokers.script_name
    );
    skip_unless_ci(&message, "Kafka", in_ci());
    None
}

/// Whether this run is CI's: `CI` is exactly "true", as CI services set it.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// Prints that the test is skipped for `reason`, or fails it under CI: a `service` test
/// skipped in CI would pass while proving nothing.
#[track_caller]
pub(crate) fn skip_unless_ci(reason: &str, service: &str, ci: bool) {
    assert!(
        !ci,
        "{reason} (CI=true: a test needing {service} never skips in CI)"
    );
    eprintln!("SKIPPED: {reason}");
}

/// The servers of the comma-separated `servers` that accept no connection now.
pub(crate) fn refusing(servers: &str) -> Result<(), String> {
    let down: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|server| !accepts(server))
        .collect();
    if down.is_empty() {
        Ok(())
    } else {
        Err(format!("{} refused", down.join(",")))
    }
}

/// Whether `server` (`host:port`) accepts a TCP connection.
fn accepts(server: &str) -> bool {
    server
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .is_some_and(|address| TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_server_is_reachable_and_a_closed_port_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let open = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string();
        assert_eq!(refusing(&open), Ok(()));
        // Port 1 is privileged and unused here: nothing listens on it.
        let both = format!("{open}, 127.0.0.1:1");
        assert_eq!(refusing(&both), Err("127.0.0.1:1 refused".to_owned()));
        assert_eq!(
            refusing("not-a-host-name.invalid:9092"),
            Err("not-a-host-name.invalid:9092 refused".to_owned())
        );
    }

    #[test]
    fn outside_ci_a_missing_broker_skips() {
        skip_unless_ci("no broker here", "Kafka", false);
    }

    #[test]
    #[should_panic(expected = "no broker here (CI=true: a test needing Kafka never skips in CI)")]
    fn under_ci_a_missing_broker_fails() {
        skip_unless_ci("no broker here", "Kafka", true);
    }
}
