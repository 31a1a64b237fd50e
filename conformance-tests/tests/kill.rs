//! SIGKILL rounds for every durable backend compiled in (a non-durable one is not
//! killed: a killed process takes its state along, and the model test covers its
//! restore).
use std::path::Path;

fn child() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_crash_child"))
}

/// The rounds of each durable backend run side by side, each in its own thread, and a
/// failure names its backend.
#[test]
fn sigkill_rounds_for_every_durable_backend() {
    let backends = conformance_tests::durable_backends();
    let failed: Vec<String> = std::thread::scope(|scope| {
        let rounds: Vec<_> = backends
            .iter()
            .map(|backend| {
                let name = backend.name();
                (
                    name,
                    scope.spawn(|| conformance_tests::kill::kill_test(backend.as_ref(), child())),
                )
            })
            .collect();
        rounds
            .into_iter()
            .filter_map(|(name, rounds)| {
                let panic = rounds.join().err()?;
                Some(format!(
                    "{name}: {}",
                    conformance_tests::panic_message(panic.as_ref())
                ))
            })
            .collect()
    });
    assert!(
        failed.is_empty(),
        "SIGKILL rounds failed:\n{}",
        failed.join("\n")
    );
}

/// A restore killed with SIGKILL partway keeps its last durability point, on every durable
/// backend (side by side).
#[test]
fn sigkill_mid_restore_keeps_the_last_durability_point_for_every_durable_backend() {
    let child = Path::new(env!("CARGO_BIN_EXE_restore_child"));
    let backends = conformance_tests::durable_backends();
    std::thread::scope(|scope| {
        for backend in &backends {
            scope.spawn(|| {
                conformance_tests::kill_restore::kill_mid_restore(backend.as_ref(), child)
            });
        }
    });
}

/// SIGKILL rounds with the Kafka changelog on a real broker, both guarantees, the new
/// instance in a new directory and rotating backends.
#[cfg(feature = "kafka")]
#[test]
fn kafka_sigkill_rounds() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    conformance_tests::kill_kafka::kafka_kill_test(&bootstrap, child());
}
