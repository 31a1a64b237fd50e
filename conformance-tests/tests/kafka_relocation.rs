//! Partitions and their state moving between instances of one consumer group on a real
//! broker (`scripts/kafka.sh start`). Under `CI=true` a missing broker fails the tests.
#![cfg(feature = "kafka")]

fn bootstrap() -> Option<String> {
    conformance_tests::changelogs::kafka()?;
    Some(std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into()))
}

fn binary() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_rewards_instance"))
}

#[cfg(feature = "rocksdb")]
#[test]
fn three_instances_scale_out_kill_and_scale_in_rocksdb() {
    if let Some(bootstrap) = bootstrap() {
        conformance_tests::group_scenarios::three_instances_scale_out_and_in(
            &bootstrap,
            binary(),
            "rocksdb",
        );
    }
}

#[test]
fn promoted_standby_replays_only_its_lag_memory() {
    if let Some(bootstrap) = bootstrap() {
        conformance_tests::group_scenarios::promoted_standby_replays_only_its_lag(
            &bootstrap,
            binary(),
            "memory",
        );
    }
}

#[cfg(feature = "redb")]
#[test]
fn promoted_standby_replays_only_its_lag_redb() {
    if let Some(bootstrap) = bootstrap() {
        conformance_tests::group_scenarios::promoted_standby_replays_only_its_lag(
            &bootstrap,
            binary(),
            "redb",
        );
    }
}

#[cfg(feature = "rocksdb")]
#[test]
fn exactly_once_group_survives_a_kill_rocksdb() {
    if let Some(bootstrap) = bootstrap() {
        conformance_tests::group_scenarios::exactly_once_group_survives_a_kill(
            &bootstrap,
            binary(),
            "rocksdb",
        );
    }
}

#[test]
fn exactly_once_group_survives_a_kill_memory() {
    if let Some(bootstrap) = bootstrap() {
        conformance_tests::group_scenarios::exactly_once_group_survives_a_kill(
            &bootstrap,
            binary(),
            "memory",
        );
    }
}
