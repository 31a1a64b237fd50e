//! The kill rounds on a real broker: the child's changelog is a Kafka topic
//! (at-least-once or exactly-once) and its snapshots go to the real S3 server.

use std::collections::BTreeMap;
use std::path::Path;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use state_core::{Changelog, ChangelogReader, ProcessingGuarantee, TopicSpec};
use test_support::unique_name;

use super::check::{listing_is_whole, restore_fresh};
use super::crash_store::CrashPoint;
use super::download::{Rerun, kill_a_download};
use super::journal::Journal;
use super::rounds::{Kill, Newest, collect_garbage, newest_agrees, plan};
use super::runner::{Round, run_child};
use crate::harness::{BackendFactory, block_on, contents};
use crate::kill::KILL_PARTITION;
use crate::kill_kafka::{Model, matching_prefix, sink_options};
use crate::snapshot_place::Where;

/// A round whose changelog is a fresh topic of the broker at `bootstrap`.
struct KafkaRound<'a> {
    round: Round<'a>,
    changelog: KafkaChangelog,
    topic: String,
    guarantee: ProcessingGuarantee,
}

impl<'a> KafkaRound<'a> {
    /// `None` when the S3 server is absent outside CI.
    fn new(
        backend: &'a dyn BackendFactory,
        bootstrap: &str,
        guarantee: ProcessingGuarantee,
        seed: u64,
    ) -> Option<Self> {
        let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap)).unwrap();
        let topic = unique_name("snapshot-kill");
        block_on(changelog.ensure_topic(&TopicSpec::changelog(&topic, 1, &BTreeMap::new())))
            .unwrap();
        let spec = format!("kafka:{bootstrap}:{topic}:{}", guarantee.as_str());
        let round = Round::new(backend, Where::S3, seed, Some(spec))?;
        Some(Self {
            round,
            changelog,
            topic,
            guarantee,
        })
    }

    /// The successor's sink: it fences the dead producer and settles its last
    /// transaction, so what a reader sees no longer moves.
    fn fence(&self) {
        drop(
            block_on(
                self.changelog
                    .sink(&sink_options(&self.topic, self.guarantee)),
            )
            .unwrap(),
        );
    }

    fn reader(&self) -> std::sync::Arc<dyn ChangelogReader> {
        block_on(
            self.changelog
                .reader(&self.topic, self.guarantee.isolation()),
        )
        .unwrap()
    }

    /// `state` equals the topic's replay and is the model at a point the guarantee
    /// allows after the journal's last commit.
    fn assert_guarantee(&self, state: Model, journal: &Journal) {
        let replayed: Model =
            crate::harness::replay(self.reader().as_ref(), KILL_PARTITION).unwrap();
        let seed = self.round.seed;
        assert_eq!(
            state, replayed,
            "snapshot + tail != replay(changelog) (seed {seed})"
        );
        let committed = journal.committed() as usize;
        assert!(
            matching_prefix(seed, committed, self.guarantee, &state).is_some(),
            "{} over Kafka ({}): the restored state ({} keys) matches no state the guarantee \
             allows after the last journaled commit of {committed} ops (seed {seed})",
            self.round.backend.name(),
            self.guarantee.as_str(),
            state.len()
        );
    }

    /// The listing is whole, its newest snapshot is what `newest` says, and a fresh
    /// store restored from it plus the tail keeps the guarantee.
    fn check(&self, journal: &Journal, newest: Newest) {
        let listed = listing_is_whole(&self.round.place);
        newest_agrees(&listed, journal, newest);
        let reader = self.reader();
        let restored = restore_fresh(
            self.round.backend,
            &self.round.place,
            reader.as_ref(),
            listed.first(),
            newest == Newest::Either,
        );
        self.assert_guarantee(restored.into_iter().collect(), journal);
    }
}

/// An upload child writing its changelog to a fresh topic under `guarantee` is killed as
/// `kill` says; after its successor fenced it, the listing is whole and a fresh store
/// restored from the newest snapshot plus the tail equals the topic's replay, and that
/// is the model at a point `guarantee` allows. After a kill that leaves files no
/// manifest names (inside an upload or a retention pass), two retention passes collect
/// them and the restore still holds.
pub fn kafka_upload_killed(
    exe: &Path,
    backend: &dyn BackendFactory,
    bootstrap: &str,
    guarantee: ProcessingGuarantee,
    kill: Kill,
    seed: u64,
) {
    let Some(kafka) = KafkaRound::new(backend, bootstrap, guarantee, seed) else {
        return;
    };
    let (crash, ending, newest) = plan(kill);
    let (journal, _) = run_child(exe, &kafka.round.upload_until(crash, ending), ending);
    kafka.fence();
    kafka.check(&journal, newest);
    if let CrashPoint::BeforeManifest(_)
    | CrashPoint::MidFileUpload { .. }
    | CrashPoint::AfterFileDelete(_)
    | CrashPoint::AfterManifestDelete(_) = crash
    {
        let journal = collect_garbage(exe, &kafka.round, &journal);
        kafka.check(&journal, Newest::Journaled);
    }
}

/// A restore from snapshots and a topic written under `guarantee`, killed inside its
/// download: the rerun into the same directory removes the partial download, starts
/// from the newest snapshot and ends keeping the guarantee.
pub fn kafka_download_killed_midway(
    exe: &Path,
    backend: &dyn BackendFactory,
    bootstrap: &str,
    guarantee: ProcessingGuarantee,
    seed: u64,
) {
    let Some(kafka) = KafkaRound::new(backend, bootstrap, guarantee, seed) else {
        return;
    };
    let Rerun { target, .. } = kill_a_download(exe, &kafka.round);
    let journal = Journal::read(&kafka.round.journal());
    let store = target.open();
    kafka.assert_guarantee(contents(store.as_ref()).into_iter().collect(), &journal);
}
