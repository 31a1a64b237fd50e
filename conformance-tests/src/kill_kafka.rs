//! Real crashes on Kafka: a child process writes through the Kafka changelog and is killed
//! with SIGKILL at a random moment; a new instance — a new directory, in some rounds
//! another backend — restores and must match the committed model: exactly the state of a
//! commit boundary under exactly-once, a prefix covering every commit under at-least-once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use state_core::{
    Changelog, ChangelogReader, ChangelogSink, NoopRestoreListener, ProcessingGuarantee,
    RestoreOptions, SinkOptions, TopicSpec, restore,
};
use test_support::unique_name;

use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::kill::{KILL_PARTITION, Workload, run_and_kill};

/// The child's sink for `BOOTSTRAP:TOPIC:GUARANTEE` (the part after `kafka:`) and the
/// topic it writes.
pub fn sink_from_spec(spec: &str) -> state_core::Result<(Arc<dyn ChangelogSink>, String)> {
    let (changelog, topic, guarantee) = parse_spec(spec)?;
    let sink = block_on(changelog.sink(&sink_options(topic, guarantee)))?;
    Ok((sink, topic.to_owned()))
}

/// A reader of the topic `BOOTSTRAP:TOPIC:GUARANTEE` names, with the guarantee's
/// isolation level.
pub fn reader_from_spec(spec: &str) -> state_core::Result<Arc<dyn ChangelogReader>> {
    let (changelog, topic, guarantee) = parse_spec(spec)?;
    block_on(changelog.reader(topic, guarantee.isolation()))
}

fn parse_spec(spec: &str) -> state_core::Result<(KafkaChangelog, &str, ProcessingGuarantee)> {
    let mut parts = spec.rsplitn(3, ':');
    let (Some(guarantee), Some(topic), Some(bootstrap)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(state_core::Error::invalid_input(format!(
            "bad kafka spec {spec}"
        )));
    };
    let guarantee = guarantee_named(guarantee)?;
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap))?;
    Ok((changelog, topic, guarantee))
}

fn guarantee_named(name: &str) -> state_core::Result<ProcessingGuarantee> {
    match name {
        "at_least_once" => Ok(ProcessingGuarantee::AtLeastOnce),
        "exactly_once" => Ok(ProcessingGuarantee::ExactlyOnce),
        other => Err(state_core::Error::invalid_input(format!(
            "unknown guarantee {other}"
        ))),
    }
}

/// The options of the child's sink on `topic`: what a successor opens to fence it.
pub(crate) fn sink_options(topic: &str, guarantee: ProcessingGuarantee) -> SinkOptions {
    SinkOptions::new(guarantee, format!("{topic}-txn"))
}

/// A store's contents as the model holds them.
pub(crate) type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The model state after each operation of the workload for `seed`, plus the commit
/// points (operation counts after which the child commits).
fn model_states(seed: u64, ops: usize) -> (Vec<Model>, Vec<usize>) {
    let mut workload = Workload::new(seed);
    let mut states = vec![Model::new()];
    let mut commits = Vec::new();
    let mut model = Model::new();
    for n in 1..=ops {
        let (op, commit_after) = workload.next_op();
        match op {
            crate::kill::KillOp::Put(k, v) => {
                model.insert(k, v);
            }
            crate::kill::KillOp::Delete(k) => {
                model.remove(&k);
            }
        }
        states.push(model.clone());
        if commit_after {
            commits.push(n);
        }
    }
    (states, commits)
}

/// The operation count `k` whose model state `recovered` is, among those `guarantee`
/// allows after a kill whose last journaled commit covered `committed` operations of the
/// workload for `seed`: exactly-once, that commit or the next (returned, not journaled
/// yet); at-least-once, any prefix from that commit on.
pub(crate) fn matching_prefix(
    seed: u64,
    committed: usize,
    guarantee: ProcessingGuarantee,
    recovered: &Model,
) -> Option<usize> {
    // The child cannot have run far past its last reported commit between two polls.
    let (states, commits) = model_states(seed, committed + 20_000);
    let next_commit = commits.iter().copied().find(|&c| c > committed);
    match guarantee {
        ProcessingGuarantee::ExactlyOnce => [Some(committed), next_commit]
            .into_iter()
            .flatten()
            .find(|&k| states[k] == *recovered),
        ProcessingGuarantee::AtLeastOnce => {
            (committed..states.len()).find(|&k| states[k] == *recovered)
        }
    }
}

/// One round: the child writes with `writer`, is killed after `commits_before_kill`
/// commits, and a fresh `reader_backend` store restores from the topic. Returns the
/// operation count the recovered state matched.
pub fn kafka_kill_round(
    writer: &dyn BackendFactory,
    reader_backend: &dyn BackendFactory,
    bootstrap: &str,
    guarantee: ProcessingGuarantee,
    child_exe: &Path,
    seed: u64,
    commits_before_kill: usize,
) -> usize {
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap)).unwrap();
    let topic = unique_name("kill");
    block_on(changelog.ensure_topic(&TopicSpec::changelog(&topic, 1, &BTreeMap::new()))).unwrap();
    let child_dir = Fixture::new(writer, "kill-store");
    let journal = child_dir.root().join("commits.journal");
    let args = [
        writer.name().to_owned(),
        child_dir.store_dir().to_string_lossy().into_owned(),
        format!("kafka:{bootstrap}:{topic}:{}", guarantee.as_str()),
        journal.to_string_lossy().into_owned(),
        seed.to_string(),
    ];
    let committed = run_and_kill(child_exe, &args, &journal, commits_before_kill) as usize;

    // The new instance: its sink first (fencing the dead producer and settling its last
    // transaction), then restore into a new directory.
    let _sink = block_on(changelog.sink(&sink_options(&topic, guarantee))).unwrap();
    let fresh = Fixture::new(reader_backend, "kill-store");
    let store = fresh.open();
    let reader = block_on(changelog.reader(&topic, guarantee.isolation())).unwrap();
    block_on(restore(
        store.as_ref(),
        reader.as_ref(),
        KILL_PARTITION,
        &RestoreOptions::default(),
        &NoopRestoreListener,
    ))
    .unwrap();
    let recovered: Model = contents(store.as_ref()).into_iter().collect();

    let matched = matching_prefix(seed, committed, guarantee, &recovered);
    matched.unwrap_or_else(|| {
        panic!(
            "{} -> {} over Kafka ({}): recovered state ({} keys) matches no allowed prefix; \
             last reported commit covered {committed} ops (seed {seed})",
            writer.name(),
            reader_backend.name(),
            guarantee.as_str(),
            recovered.len()
        )
    })
}

/// `STATESTORE_KAFKA_KILL_ROUNDS` (default 12) rounds per guarantee, rotating the writing
/// and the restoring backend over every backend compiled in.
pub fn kafka_kill_test(bootstrap: &str, child_exe: &Path) {
    let rounds: u64 = std::env::var("STATESTORE_KAFKA_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let base_seed = crate::harness::seed_from_env();
    let backends = crate::backends();
    for guarantee in [
        ProcessingGuarantee::AtLeastOnce,
        ProcessingGuarantee::ExactlyOnce,
    ] {
        for round in 0..rounds {
            let seed = base_seed.wrapping_add(round);
            let writer = backends[round as usize % backends.len()].as_ref();
            let reader = backends
                [(round as usize / backends.len() + round as usize) % backends.len()]
            .as_ref();
            kafka_kill_round(
                writer,
                reader,
                bootstrap,
                guarantee,
                child_exe,
                seed,
                1 + (seed % 12) as usize,
            );
        }
        eprintln!(
            "kafka kill test {}: {rounds} SIGKILL rounds passed (STATESTORE_SEED={base_seed})",
            guarantee.as_str()
        );
    }
}
