//! The model-based fault test: random operation sequences with crash points at every step
//! of the commit and restore protocols, checked against a `BTreeMap` model.
//!
//! Two stores log to two partitions of one changelog through one sink, as every store of
//! an instance does, and each mutating operation is one input record: every commit
//! commits both stores and the input offset together (`commit_together`). After every
//! restore it checks the guarantee from DESIGN.md for each store:
//! `recovered state == replay(changelog, from empty) == model(ops[..k])`, where `k` is
//! exactly the operations of the last successful commit (exactly-once) or any prefix
//! covering them (at-least-once), and that the committed input offset is exactly the
//! last successful commit's.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use state_core::ProcessingGuarantee;

use crate::changelogs::ChangelogFactory;
use crate::harness::{BackendFactory, seed_from_env};
use crate::model_world::World;

/// One step of a generated scenario; `s` picks one of the two stores.
#[derive(Debug, Clone)]
pub enum Op {
    /// Put key = value.
    Put(u8, u8, u8),
    /// Delete key.
    Delete(u8, u8),
    /// Put if absent.
    PutIfAbsent(u8, u8, u8),
    /// A batch of puts (`Some`) and deletes (`None`).
    Batch(u8, Vec<(u8, Option<u8>)>),
    /// Read a key and compare with the model (uncommitted writes included).
    Get(u8, u8),
    /// Scan `[a, b]` forward and backward and compare with the model.
    Range(u8, u8, u8),
    /// Commit; must succeed.
    Commit,
    /// Commit while the changelog flush fails delivering nothing; must fail.
    CommitFailingFlush,
    /// Commit while the flush delivers only `n` records then fails; must fail.
    CommitFailingMidFlush(u8),
    /// Commit whose changelog side succeeds but whose store writes both crash.
    CommitCrashBeforeStoreWrite,
    /// Commit whose changelog side succeeds, whose first store writes and whose second
    /// crashes before it does.
    CommitCrashBetweenStoreWrites,
    /// Drop the process: everything uncommitted and unflushed is gone; restore.
    Crash,
    /// Crash, then crash again during restore after `n` batches, then restore.
    CrashDuringRestore(u8),
    /// Run the log cleaner on the changelog.
    Compact,
    /// Restore up-to-date stores: must replay nothing.
    RestoreAgain,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let store = 0u8..2;
    prop_oneof![
        8 => (store.clone(), any::<u8>(), any::<u8>()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        3 => (store.clone(), any::<u8>()).prop_map(|(s, k)| Op::Delete(s, k)),
        2 => (store.clone(), any::<u8>(), any::<u8>()).prop_map(|(s, k, v)| Op::PutIfAbsent(s, k, v)),
        2 => (store.clone(), prop::collection::vec((any::<u8>(), prop::option::of(any::<u8>())), 0..6))
            .prop_map(|(s, ops)| Op::Batch(s, ops)),
        2 => (store.clone(), any::<u8>()).prop_map(|(s, k)| Op::Get(s, k)),
        2 => (store, any::<u8>(), any::<u8>()).prop_map(|(s, a, b)| Op::Range(s, a, b)),
        5 => Just(Op::Commit),
        1 => Just(Op::CommitFailingFlush),
        1 => (0u8..6).prop_map(Op::CommitFailingMidFlush),
        1 => Just(Op::CommitCrashBeforeStoreWrite),
        1 => Just(Op::CommitCrashBetweenStoreWrites),
        2 => Just(Op::Crash),
        1 => (0u8..4).prop_map(Op::CrashDuringRestore),
        1 => Just(Op::Compact),
        1 => Just(Op::RestoreAgain),
    ]
}

/// The generated scenarios: up to 60 steps.
pub fn scenario_strategy() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(), 1..60)
}

/// Runs one scenario against a fresh store of `backend`.
pub fn run_scenario(
    backend: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut world = World::new(backend, guarantee, changelogs.create())?;
    for (i, op) in ops.iter().enumerate() {
        world
            .step(op)
            .map_err(|err| TestCaseError::fail(format!("step {i} {op:?}: {err}")))?;
    }
    // Finally a crash and recovery, so every scenario ends by checking the guarantee.
    world.crash();
    world.start()
}

/// Runs `cases` scenarios for `backend` x `changelogs` under `guarantee`, split over
/// `runners` threads (each with its own seed; Kafka cases mostly wait on the broker, so
/// they run side by side). The seed comes from `STATESTORE_SEED` (a u64) or the clock and
/// is printed; `STATESTORE_MODEL_RUNNERS` overrides `runners`. A failure is shrunk to a
/// minimal operation list and printed with the command that replays it.
pub fn model_test(
    backend: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
    cases: u32,
    runners: u32,
) {
    let seed = seed_from_env();
    let runners = std::env::var("STATESTORE_MODEL_RUNNERS")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(runners)
        .clamp(1, cases.max(1));
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..runners)
            .map(|i| {
                let share = cases / runners + u32::from(i < cases % runners);
                let runner_seed = seed.wrapping_add(u64::from(i));
                scope.spawn(move || {
                    run_cases(backend, changelogs, guarantee, share, runner_seed).err()
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Some("a runner thread panicked".to_owned()))
            })
            .collect()
    });
    let cell = format!(
        "{} x {} x {}",
        backend.name(),
        changelogs.name(),
        guarantee.as_str()
    );
    if failures.is_empty() {
        eprintln!(
            "model test {cell}: {cases} cases passed on {runners} runner(s) (STATESTORE_SEED={seed})"
        );
    } else {
        panic!("model test {cell} failed:\n{}", failures.join("\n"));
    }
}

/// One runner: `cases` scenarios from `seed`.
fn run_cases(
    backend: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
    cases: u32,
    seed: u64,
) -> Result<(), String> {
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    runner
        .run(&scenario_strategy(), |ops| {
            run_scenario(backend, changelogs, guarantee, &ops)
        })
        .map_err(|err| {
            format!(
                "replay with STATESTORE_SEED={seed} STATESTORE_MODEL_RUNNERS=1 and {cases} cases\n{err}"
            )
        })
}

/// Cases per in-process cell: `PROPTEST_CASES`, default 256.
pub fn in_process_cases() -> u32 {
    Config::default().cases
}

/// Cases per Kafka cell: `STATESTORE_KAFKA_CASES`, default 256. Each case creates a topic
/// and producers on a real broker, and each crash waits for librdkafka's fixed 500 ms
/// producer-id retry while the broker aborts the dead producer's transaction.
pub fn kafka_cases() -> u32 {
    std::env::var("STATESTORE_KAFKA_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Runner threads per Kafka cell: the cases wait on the broker, not the CPU.
pub const KAFKA_RUNNERS: u32 = 8;
