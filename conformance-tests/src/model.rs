//! The model-based fault test: random operation sequences with crash points at every step
//! of the commit and restore protocols, checked against a `BTreeMap` model.
//!
//! After every restore it checks the guarantee from DESIGN.md:
//! `recovered state == replay(changelog, from empty) == model(ops[..k])`, where `k` is
//! exactly the operations of the last successful commit (exactly-once) or any prefix
//! covering them (at-least-once).

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    Changelog, ChangelogReader, KeyRange, KeyValueStore, LoggedStore, NoopRestoreListener,
    ProcessingGuarantee, RestoreOptions, SinkOptions, TopicSpec, WriteBatch, restore,
};

use crate::changelogs::{ChangelogFactory, ChangelogUnderTest};
use crate::crash_points::{FailingPositionWrite, FailingReader};
use crate::harness::{BackendFactory, Fixture, block_on, contents, replay, seed_from_env};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One step of a generated scenario.
#[derive(Debug, Clone)]
pub enum Op {
    /// Put key = value.
    Put(u8, u8),
    /// Delete key.
    Delete(u8),
    /// Put if absent.
    PutIfAbsent(u8, u8),
    /// A batch of puts (`Some`) and deletes (`None`).
    Batch(Vec<(u8, Option<u8>)>),
    /// Read a key and compare with the model (uncommitted writes included).
    Get(u8),
    /// Scan `[a, b]` forward and backward and compare with the model.
    Range(u8, u8),
    /// Commit; must succeed.
    Commit,
    /// Commit while the changelog flush fails delivering nothing; must fail.
    CommitFailingFlush,
    /// Commit while the flush delivers only `n` records then fails; must fail.
    CommitFailingMidFlush(u8),
    /// Commit whose changelog side succeeds but whose store write crashes.
    CommitCrashBeforeStoreWrite,
    /// Drop the process: everything uncommitted and unflushed is gone; restore.
    Crash,
    /// Crash, then crash again during restore after `n` batches, then restore.
    CrashDuringRestore(u8),
    /// Run the log cleaner on the changelog.
    Compact,
    /// Restore an up-to-date store: must replay nothing.
    RestoreAgain,
}

fn key(k: u8) -> Vec<u8> {
    // A small key space so operations collide; 0xFF keeps the top of the byte range hot.
    vec![b'k', if k % 13 == 12 { 0xFF } else { k % 13 }]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => any::<u8>().prop_map(Op::Delete),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
        2 => prop::collection::vec((any::<u8>(), prop::option::of(any::<u8>())), 0..6).prop_map(Op::Batch),
        2 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Range(a, b)),
        5 => Just(Op::Commit),
        1 => Just(Op::CommitFailingFlush),
        1 => (0u8..6).prop_map(Op::CommitFailingMidFlush),
        1 => Just(Op::CommitCrashBeforeStoreWrite),
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

const PARTITION: i32 = 0;

struct World<'a> {
    fixture: &'a Fixture,
    guarantee: ProcessingGuarantee,
    changelog: Arc<dyn Changelog>,
    /// The fault and admin knobs, when the changelog is the in-process one.
    faults: Option<InMemoryChangelog>,
    topic: String,
    /// One reader for the whole case: a Kafka consumer per read would dominate the run.
    reader: Arc<dyn ChangelogReader>,
    logged: Option<LoggedStore>,
    crash_switch: Option<Arc<FailingPositionWrite>>,
    /// The state every committed operation produced.
    committed: Model,
    /// `committed` plus the uncommitted operations, as reads must see it.
    live: Model,
    /// Uncommitted mutations in order, each with the model state after it.
    uncommitted: Vec<Model>,
    /// A failed commit is awaiting its retry (restore-again would race it).
    retry_pending: bool,
}

fn options() -> RestoreOptions {
    RestoreOptions {
        batch_size: Some(3),
        ..RestoreOptions::default()
    }
}

impl<'a> World<'a> {
    fn new(
        fixture: &'a Fixture,
        guarantee: ProcessingGuarantee,
        cut: ChangelogUnderTest,
    ) -> Result<Self, TestCaseError> {
        let spec = TopicSpec::changelog(&cut.topic, 2, &BTreeMap::new());
        block_on(cut.changelog.ensure_topic(&spec)).map_err(fail)?;
        let reader =
            block_on(cut.changelog.reader(&cut.topic, guarantee.isolation())).map_err(fail)?;
        let mut world = Self {
            fixture,
            guarantee,
            changelog: cut.changelog,
            faults: cut.faults,
            topic: cut.topic,
            reader,
            logged: None,
            crash_switch: None,
            committed: Model::new(),
            live: Model::new(),
            uncommitted: Vec::new(),
            retry_pending: false,
        };
        world.start()?;
        Ok(world)
    }

    fn reader(&self) -> Result<Arc<dyn ChangelogReader>, TestCaseError> {
        Ok(self.reader.clone())
    }

    /// Opens the store, restores it, checks the guarantee, and starts logging.
    fn start(&mut self) -> Result<(), TestCaseError> {
        // As the builder does: the sink first, so a new exactly-once producer fences the
        // dead one and its last transaction is settled before restore reads the end.
        let sink_options = SinkOptions {
            guarantee: self.guarantee,
            transactional_id: Some(format!("{}-0", self.topic)),
        };
        let sink = block_on(self.changelog.sink(&self.topic, &sink_options)).map_err(fail)?;
        let store = self.fixture.open();
        block_on(restore(
            store.as_ref(),
            self.reader()?.as_ref(),
            PARTITION,
            &options(),
            &NoopRestoreListener,
        ))
        .map_err(fail)?;
        self.check_recovered(store.as_ref())?;
        let switch = FailingPositionWrite::new(store);
        self.logged = Some(LoggedStore::new(switch.clone(), sink, PARTITION));
        self.crash_switch = Some(switch);
        Ok(())
    }

    fn crash(&mut self) {
        self.logged = None;
        self.crash_switch = None;
        self.retry_pending = false;
    }

    fn logged(&self) -> &LoggedStore {
        self.logged
            .as_ref()
            .unwrap_or_else(|| unreachable!("store is running between steps"))
    }

    /// The guarantee: recovered == replay(changelog) == model(ops[..k]).
    fn check_recovered(&mut self, store: &dyn KeyValueStore) -> Result<(), TestCaseError> {
        let recovered: Model = contents(store).into_iter().collect();
        let replayed = replay(self.reader()?.as_ref(), PARTITION).map_err(fail)?;
        prop_assert_eq!(
            &recovered,
            &replayed,
            "recovered state differs from a replay of the changelog"
        );
        match self.guarantee {
            ProcessingGuarantee::ExactlyOnce => {
                prop_assert_eq!(
                    &recovered,
                    &self.committed,
                    "exactly-once: recovered != state at last commit"
                );
            }
            ProcessingGuarantee::AtLeastOnce => {
                let prefix = std::iter::once(&self.committed)
                    .chain(self.uncommitted.iter())
                    .position(|state| *state == recovered);
                prop_assert!(
                    prefix.is_some(),
                    "at-least-once: recovered {:?} is no prefix state of the operations (committed {:?}, {} uncommitted)",
                    recovered,
                    self.committed,
                    self.uncommitted.len()
                );
            }
        }
        self.committed = recovered.clone();
        self.live = recovered;
        self.uncommitted.clear();
        Ok(())
    }

    fn mutated(&mut self) {
        self.uncommitted.push(self.live.clone());
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Put(k, v) => {
                self.logged().put(&key(*k), &[*v]).map_err(fail)?;
                self.live.insert(key(*k), vec![*v]);
                self.mutated();
            }
            Op::Delete(k) => {
                let old = self.logged().delete(&key(*k)).map_err(fail)?;
                prop_assert_eq!(old, self.live.remove(&key(*k)));
                self.mutated();
            }
            Op::PutIfAbsent(k, v) => {
                let existing = self.logged().put_if_absent(&key(*k), &[*v]).map_err(fail)?;
                prop_assert_eq!(&existing, &self.live.get(&key(*k)).cloned());
                if existing.is_none() {
                    self.live.insert(key(*k), vec![*v]);
                    self.mutated();
                }
            }
            Op::Batch(ops) => {
                let mut batch = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => batch.put(key(*k), vec![*v]),
                        None => batch.delete(key(*k)),
                    };
                }
                self.logged().write(&batch).map_err(fail)?;
                // Each logged record is its own step of the changelog, so each is a
                // possible at-least-once prefix point.
                for (k, v) in ops {
                    match v {
                        Some(v) => self.live.insert(key(*k), vec![*v]),
                        None => self.live.remove(&key(*k)),
                    };
                    self.mutated();
                }
            }
            Op::Get(k) => {
                prop_assert_eq!(
                    self.logged().get(&key(*k)).map_err(fail)?,
                    self.live.get(&key(*k)).cloned()
                );
            }
            Op::Range(a, b) => {
                let (a, b) = (key(*a), key(*b));
                let range = KeyRange::inclusive(a.clone(), b.clone());
                let expected: Vec<_> = if a <= b {
                    self.live
                        .range(a..=b)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                } else {
                    Vec::new()
                };
                let forward: Vec<_> = self
                    .logged()
                    .range(&range)
                    .and_then(|i| i.collect())
                    .map_err(fail)?;
                prop_assert_eq!(&forward, &expected);
                let mut backward: Vec<_> = self
                    .logged()
                    .reverse_range(&range)
                    .and_then(|i| i.collect())
                    .map_err(fail)?;
                backward.reverse();
                prop_assert_eq!(&backward, &expected);
            }
            Op::Commit => self.commit_ok()?,
            Op::CommitFailingFlush | Op::CommitFailingMidFlush(_) => {
                let Some(faults) = self.faults.clone() else {
                    // A real broker cannot be told to fail one flush; commit normally.
                    return self.commit_ok();
                };
                if self.logged().uncommitted() == 0 || self.retry_pending {
                    return self.commit_ok();
                }
                match op {
                    Op::CommitFailingMidFlush(n) => {
                        faults.fail_flush_after(&self.topic, usize::from(*n))
                    }
                    _ => faults.fail_next_flush(&self.topic),
                }
                .map_err(fail)?;
                let logged = self.logged.as_mut().unwrap_or_else(|| unreachable!());
                prop_assert!(
                    block_on(logged.commit()).is_err(),
                    "commit must fail when the flush fails"
                );
                self.retry_pending = true;
                let position_after: Model = contents(self.logged().inner().as_ref())
                    .into_iter()
                    .collect();
                prop_assert_eq!(
                    &position_after,
                    &self.committed,
                    "a failed commit changed the store"
                );
            }
            Op::CommitCrashBeforeStoreWrite => {
                if self.logged().uncommitted() == 0 {
                    return self.commit_ok();
                }
                if let Some(switch) = &self.crash_switch {
                    switch.arm();
                }
                let logged = self.logged.as_mut().unwrap_or_else(|| unreachable!());
                prop_assert!(
                    block_on(logged.commit()).is_err(),
                    "the injected store crash must fail commit"
                );
                // The changelog side committed, so recovery must hold every operation.
                self.committed = self.live.clone();
                self.uncommitted.clear();
                self.crash();
                self.start()?;
            }
            Op::Crash => {
                self.crash();
                self.start()?;
            }
            Op::CrashDuringRestore(n) => {
                self.crash();
                let store = self.fixture.open();
                let failing = FailingReader::new(self.reader()?, usize::from(*n));
                let _ = block_on(restore(
                    store.as_ref(),
                    &failing,
                    PARTITION,
                    &options(),
                    &NoopRestoreListener,
                ));
                drop(store);
                self.start()?;
            }
            Op::Compact => {
                if let Some(faults) = &self.faults {
                    faults.compact(&self.topic, PARTITION).map_err(fail)?;
                }
            }
            Op::RestoreAgain => {
                if self.logged().uncommitted() > 0 || self.retry_pending {
                    return Ok(());
                }
                let inner = self.logged().inner().clone();
                let summary = block_on(restore(
                    inner.as_ref(),
                    self.reader()?.as_ref(),
                    PARTITION,
                    &options(),
                    &NoopRestoreListener,
                ))
                .map_err(fail)?;
                prop_assert_eq!(
                    summary.restored,
                    0,
                    "restoring an up-to-date store replayed records"
                );
                prop_assert!(summary.wiped.is_none());
            }
        }
        Ok(())
    }

    fn commit_ok(&mut self) -> Result<(), TestCaseError> {
        let logged = self.logged.as_mut().unwrap_or_else(|| unreachable!());
        let summary = block_on(logged.commit()).map_err(fail)?;
        self.retry_pending = false;
        self.committed = self.live.clone();
        self.uncommitted.clear();
        let stored: Model = contents(self.logged().inner().as_ref())
            .into_iter()
            .collect();
        prop_assert_eq!(&stored, &self.committed, "store after commit != model");
        if let Some(applied) = summary.position.applied(PARTITION) {
            // Kafka writes transaction markers after commit returns, so a read-committed
            // end offset may trail the commit briefly; it must catch up.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let end = block_on(self.reader.offsets(PARTITION)).map_err(fail)?.end;
                if applied < end {
                    break;
                }
                prop_assert!(
                    std::time::Instant::now() < deadline,
                    "committed position {} still not below the log end {} after 10 s",
                    applied,
                    end
                );
                std::thread::yield_now();
            }
        }
        Ok(())
    }
}

fn fail(err: state_core::Error) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// Runs one scenario against a fresh store of `backend`.
pub fn run_scenario(
    backend: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let fixture = Fixture::new(backend, "model-store");
    let mut world = World::new(&fixture, guarantee, changelogs.create())?;
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
