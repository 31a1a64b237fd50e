//! Partitions and their state moving between instances of one consumer group on a real
//! broker (`scripts/kafka.sh start`). Under `CI=true` a missing broker fails the tests.
//!
//! Each scenario runs once per kind of backend, picked by capability from the backends
//! compiled in: a durable one (the scenarios rotate through the durable backends, so
//! each takes part) and, where the scenario means something without a directory, a
//! non-durable one.
#![cfg(feature = "kafka")]

fn bootstrap() -> Option<String> {
    test_support::single_broker()
}

fn binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_rewards_instance"))
}

/// The `scenario`-th durable backend, rotating through those compiled in, if any.
fn durable(scenario: usize) -> Option<&'static str> {
    let durable = conformance_tests::durable_backends();
    (!durable.is_empty()).then(|| durable[scenario % durable.len()].name())
}

/// A backend compiled in that keeps nothing across restarts, if there is one.
fn volatile() -> Option<&'static str> {
    conformance_tests::backends()
        .iter()
        .find(|backend| !backend.supplier("probe").durable())
        .map(|backend| backend.name())
}

/// Runs `scenario` on `backend` when a broker answers and such a backend is compiled in.
fn run(backend: Option<&'static str>, scenario: fn(&str, &std::path::Path, &str)) {
    if let (Some(bootstrap), Some(backend)) = (bootstrap(), backend) {
        scenario(&bootstrap, binary(), backend);
    }
}

#[test]
fn three_instances_scale_out_kill_and_scale_in_durable() {
    run(
        durable(0),
        conformance_tests::group_scenarios::three_instances_scale_out_and_in,
    );
}

#[test]
fn promoted_standby_replays_only_its_lag_volatile() {
    run(
        volatile(),
        conformance_tests::group_scenarios::promoted_standby_replays_only_its_lag,
    );
}

#[test]
fn promoted_standby_replays_only_its_lag_durable() {
    run(
        durable(1),
        conformance_tests::group_scenarios::promoted_standby_replays_only_its_lag,
    );
}

#[test]
fn exactly_once_group_survives_a_kill_durable() {
    run(
        durable(2),
        conformance_tests::group_scenarios::exactly_once_group_survives_a_kill,
    );
}

#[test]
fn exactly_once_group_survives_a_kill_volatile() {
    run(
        volatile(),
        conformance_tests::group_scenarios::exactly_once_group_survives_a_kill,
    );
}

#[test]
fn exactly_once_zombie_is_fenced_durable() {
    run(
        durable(4),
        conformance_tests::group_scenarios::exactly_once_zombie_is_fenced,
    );
}

#[test]
fn replicas_place_k_standbys_and_move_few_durable() {
    run(
        durable(3),
        conformance_tests::replica_scenarios::replicas_place_k_standbys_and_move_few,
    );
}

/// A backend compiled in whose commits survive a SIGKILL
/// ([`Capability::commits_survive_crash`](state_core::Capability::commits_survive_crash)),
/// if any: a store reopened after the kill is at its last commit. One without it (RocksDB
/// with the WAL off, Kafka Streams' default and ours) loses what its memtables held since
/// their last flush and restores that from the changelog: consistent, but more than the
/// tail (a commit flushes it every 10,000 records or 30 s, more than this test writes).
fn commits_survive_a_crash() -> Option<&'static str> {
    conformance_tests::backends()
        .iter()
        .find(|backend| backend.supplier("probe").capability().commits_survive_crash)
        .map(|backend| backend.name())
}

#[test]
fn static_member_restarts_without_a_rebalance() {
    run(
        commits_survive_a_crash(),
        conformance_tests::replica_scenarios::static_member_restarts_without_a_rebalance,
    );
}

#[test]
fn static_member_restarts_under_replicas() {
    run(
        commits_survive_a_crash(),
        conformance_tests::replica_scenarios::static_member_restarts_under_replicas,
    );
}

#[test]
fn replicas_read_k_copies_of_the_changelog_volatile() {
    run(
        volatile(),
        conformance_tests::replica_scenarios::replicas_read_k_copies_of_the_changelog,
    );
}

#[test]
fn killed_owner_relocates_from_snapshots_on_s3_durable() {
    run(
        durable(5),
        conformance_tests::snapshot_scenarios::killed_owner_relocates_from_snapshots_on_s3,
    );
}

#[test]
fn killed_owner_relocates_from_snapshots_on_s3_volatile() {
    run(
        volatile(),
        conformance_tests::snapshot_scenarios::killed_owner_relocates_from_snapshots_on_s3,
    );
}

#[test]
fn killed_owner_relocates_from_snapshots_in_a_directory_durable() {
    run(
        durable(6),
        conformance_tests::snapshot_scenarios::killed_owner_relocates_from_snapshots_in_a_directory,
    );
}
