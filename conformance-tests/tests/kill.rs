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
