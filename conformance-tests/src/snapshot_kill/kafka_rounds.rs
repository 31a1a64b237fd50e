//! The upload kill round on a real broker: the child's changelog is a Kafka topic
//! (at-least-once or exactly-once) and its snapshots go to the real S3 server.

use std::collections::BTreeMap;
use std::path::Path;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use state_core::{Changelog, ProcessingGuarantee, TopicSpec};
use test_support::unique_name;

use super::check::{listing_is_whole, restore_fresh};
use super::rounds::{Kill, newest_agrees, plan};
use super::runner::{Round, run_child};
use crate::harness::{BackendFactory, block_on};
use crate::kill::KILL_PARTITION;
use crate::kill_kafka::{Model, matching_prefix, sink_options};
use crate::snapshot_place::Where;

/// An upload child writing its changelog to a fresh topic of the broker at `bootstrap`
/// under `guarantee` is killed as `kill` says; after its successor fenced it, a fresh
/// store restored from the newest snapshot plus the tail equals the topic's replay, and
/// that is the model at a point `guarantee` allows.
pub fn kafka_upload_killed(
    exe: &Path,
    backend: &dyn BackendFactory,
    bootstrap: &str,
    guarantee: ProcessingGuarantee,
    kill: Kill,
    seed: u64,
) {
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap)).unwrap();
    let topic = unique_name("snapshot-kill");
    block_on(changelog.ensure_topic(&TopicSpec::changelog(&topic, 1, &BTreeMap::new()))).unwrap();
    let spec = format!("kafka:{bootstrap}:{topic}:{}", guarantee.as_str());
    let Some(round) = Round::new(backend, Where::S3, seed, Some(spec)) else {
        return;
    };
    let (crash, ending, newest) = plan(kill);
    let (journal, _) = run_child(exe, &round.upload_until(crash, ending), ending);

    // The successor's sink first: it fences the dead producer and settles its last
    // transaction, so what the reader sees no longer moves.
    let _sink = block_on(changelog.sink(&sink_options(&topic, guarantee))).unwrap();
    let listed = listing_is_whole(&round.place);
    newest_agrees(&listed, &journal, newest);
    let reader = block_on(changelog.reader(&topic, guarantee.isolation())).unwrap();
    let replayed: Model = crate::harness::replay(reader.as_ref(), KILL_PARTITION).unwrap();
    let restored = restore_fresh(backend, &round.place, reader.as_ref(), listed.first());
    let restored: Model = restored.into_iter().collect();
    assert_eq!(
        restored, replayed,
        "snapshot + tail != replay(changelog) (seed {seed})"
    );
    let committed = journal.committed() as usize;
    assert!(
        matching_prefix(seed, committed, guarantee, &restored).is_some(),
        "{} over Kafka ({}): the restored state ({} keys) matches no state the guarantee \
         allows after the last journaled commit of {committed} ops (seed {seed})",
        backend.name(),
        guarantee.as_str(),
        restored.len()
    );
}
