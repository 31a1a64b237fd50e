//! SIGKILL rounds for every durable backend compiled in (memory is not durable: a killed
//! process takes its state along, and the model test covers its restore).
use std::path::Path;

fn child() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_crash_child"))
}

#[cfg(feature = "rocksdb")]
#[test]
fn rocksdb_sigkill_rounds() {
    conformance_tests::kill::kill_test(&conformance_tests::rocksdb(), child());
}

#[cfg(feature = "redb")]
#[test]
fn redb_sigkill_rounds() {
    conformance_tests::kill::kill_test(&conformance_tests::redb(), child());
}

/// SIGKILL rounds with the Kafka changelog on a real broker, both guarantees, the new
/// instance in a new directory and rotating backends.
#[cfg(feature = "kafka")]
#[test]
fn kafka_sigkill_rounds() {
    if conformance_tests::changelogs::kafka().is_none() {
        return;
    }
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    conformance_tests::kill_kafka::kafka_kill_test(&bootstrap, child());
}
