//! The kill rounds on a file changelog: upload, download and retention, each killed and
//! then checked (see the module docs of `snapshot_kill`).

use std::collections::BTreeSet;
use std::path::Path;

use state_core::{ProcessingGuarantee, SnapshotManifest};

use super::check::{listing_is_whole, restore_fresh};
use super::child::{CLOCK_STEP, Mode, scope};
use super::crash_store::CrashPoint;
use super::journal::Journal;
use super::runner::{Ending, Round, run_child};
use crate::file_log::read_log;
use crate::harness::BackendFactory;
use crate::kill::{KILL_TOPIC, Workload, changelog_from, replay};
use crate::snapshot_place::Where;

/// How an upload child dies.
#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// At this crash point of its own.
    At(CrashPoint),
    /// By the parent, once it journaled this many commits: anywhere in a commit, a
    /// checkpoint, an upload or a retention pass.
    AfterCommits(usize),
}

/// What the journal and the listing must agree on about the newest snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Newest {
    /// The last journaled one (or none when none was journaled).
    Journaled,
    /// One published after the last journaled one, never journaled.
    Unjournaled,
    /// Either.
    Either,
}

/// A child uploading snapshots of `backend` to `place` is killed as `kill` says; the
/// listing stays whole, the newest snapshot is what the kill point implies, and a fresh
/// store restored from it plus the tail equals the replay and the model.
pub fn upload_killed(
    exe: &Path,
    backend: &dyn BackendFactory,
    place: Where,
    kill: Kill,
    seed: u64,
) {
    let Some(round) = Round::new(backend, place, seed, None) else {
        return;
    };
    let (crash, ending, newest) = plan(kill);
    let (journal, _) = run_child(exe, &round.upload_until(crash, ending), ending);
    match crash {
        CrashPoint::BeforeManifest(n) | CrashPoint::AfterManifest(n) => {
            assert_eq!(journal.snapshots.len() + 1, n as usize, "{journal:?}");
        }
        CrashPoint::MidFileUpload { upload, .. } => {
            assert!(
                journal.snapshots.len() + 1 >= upload as usize,
                "{journal:?}"
            );
        }
        _ => {}
    }
    check_after_kill(&round, &journal, newest);
    if let CrashPoint::BeforeManifest(_) | CrashPoint::MidFileUpload { .. } = crash {
        // The files the killed upload sent are named by no manifest: retention collects
        // them.
        let journal = collect_garbage(exe, &round, &journal);
        check_after_kill(&round, &journal, Newest::Journaled);
    }
}

/// The child's crash point, how the parent ends it, and what the journal then says
/// about the newest snapshot.
pub(super) fn plan(kill: Kill) -> (CrashPoint, Ending, Newest) {
    match kill {
        Kill::At(point) => {
            let newest = match point {
                CrashPoint::AfterManifest(_) => Newest::Unjournaled,
                _ => Newest::Journaled,
            };
            (point, Ending::CrashPoint, newest)
        }
        Kill::AfterCommits(n) => (
            CrashPoint::None,
            Ending::KillAfterCommits(n),
            Newest::Either,
        ),
    }
}

/// The checks after an upload child's kill on a file changelog.
pub(super) fn check_after_kill(round: &Round<'_>, journal: &Journal, newest: Newest) {
    let listed = listing_is_whole(&round.place);
    newest_agrees(&listed, journal, newest);
    let records = changelog_is_a_prefix(round, journal);
    for published in &journal.snapshots {
        assert_eq!(
            published.position,
            published.ops as i64 - 1,
            "a snapshot holds exactly its commit: {published:?}"
        );
    }
    let changelog = changelog_from(&records);
    let reader = changelog
        .reader_now(KILL_TOPIC, ProcessingGuarantee::AtLeastOnce.isolation())
        .unwrap();
    let restored = restore_fresh(
        round.backend,
        &round.place,
        &reader,
        listed.first(),
        newest == Newest::Either,
    );
    assert_eq!(
        restored,
        replay(&records),
        "snapshot + tail != replay(changelog) == model (seed {})",
        round.seed
    );
}

/// The newest listed snapshot against the journal.
pub(super) fn newest_agrees(
    listed: &[(String, SnapshotManifest)],
    journal: &Journal,
    newest: Newest,
) {
    let listed_newest = listed.first().map(|(id, _)| id.as_str());
    let journaled = journal.snapshots.last().map(|s| s.id.as_str());
    if let Some(id) = journaled {
        assert!(
            listed.iter().any(|(listed, _)| listed == id),
            "the newest journaled snapshot {id} must still be listed: {listed:?}"
        );
    }
    let unjournaled = listed_newest.is_some() && listed_newest != journaled;
    match newest {
        Newest::Journaled => assert!(
            !unjournaled,
            "no snapshot after the last journaled one may be published; listed {listed_newest:?}, journaled {journaled:?}"
        ),
        Newest::Unjournaled => assert!(
            unjournaled,
            "the snapshot published before the kill must be listed; listed {listed_newest:?}, journaled {journaled:?}"
        ),
        Newest::Either => {}
    }
    if unjournaled {
        let ours = listed[0].1.writer.starts_with("child-");
        assert!(ours, "an unknown writer's manifest: {:?}", listed[0]);
    }
}

/// The file changelog the child left: exactly a prefix of the workload, covering every
/// journaled commit.
fn changelog_is_a_prefix(round: &Round<'_>, journal: &Journal) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let log = round.log().expect("a file changelog");
    let records = read_log(&log).unwrap();
    let mut workload = Workload::new(round.seed);
    let expected: Vec<_> = (0..records.len())
        .map(|_| workload.next_op().0.as_record())
        .collect();
    assert_eq!(
        records, expected,
        "the changelog is not a prefix of the workload"
    );
    assert!(
        records.len() as u64 >= journal.committed(),
        "the changelog lost committed operations"
    );
    records
}

/// Two retention passes far past every snapshot's time (one removes the old manifests
/// and marks the files no kept manifest names, the next, a grace later, deletes them)
/// complete; then the listing is whole, the newest journaled snapshot is still there,
/// and the files left are exactly those the kept manifests name: whatever a killed
/// upload or retention pass left behind is collected. Returns the journal after the
/// passes.
pub(super) fn collect_garbage(exe: &Path, round: &Round<'_>, journal: &Journal) -> Journal {
    let later = CLOCK_STEP * (journal.snapshots.len() as u32 + 2);
    for offset in [later, later + CLOCK_STEP] {
        let mut retain = round.args(
            Mode::Retain,
            CrashPoint::None,
            round.fixture.store_dir(),
            round.journal(),
        );
        retain.clock_offset = offset;
        run_child(exe, &retain, Ending::Finishes);
    }
    let journal = Journal::read(&round.journal());
    let listed = listing_is_whole(&round.place);
    newest_agrees(&listed, &journal, Newest::Journaled);
    assert!(listed.len() <= super::runner::KEEP, "{listed:?}");
    let named: BTreeSet<String> = listed
        .iter()
        .flat_map(|(_, m)| m.files.iter())
        .map(|f| f.checksum.trim_start_matches("blake3:").to_owned())
        .collect();
    let stored: BTreeSet<String> = round
        .place
        .listed(&scope(), "files")
        .into_iter()
        .filter_map(|meta| meta.location.filename().map(str::to_owned))
        .collect();
    assert_eq!(
        stored, named,
        "after the passes, the files are exactly those the kept manifests name"
    );
    journal
}

/// A child killed inside a retention pass (right after its first manifest or file
/// deletion) leaves a whole listing and a correct restore; two later passes complete,
/// keep the newest snapshot and everything its manifests name, and delete the files no
/// manifest names.
pub fn retention_killed_midway(
    exe: &Path,
    backend: &dyn BackendFactory,
    place: Where,
    point: CrashPoint,
    seed: u64,
) {
    let Some(round) = Round::new(backend, place, seed, None) else {
        return;
    };
    let (journal, _) = run_child(exe, &round.upload(point), Ending::CrashPoint);
    check_after_kill(&round, &journal, Newest::Journaled);

    let journal = collect_garbage(exe, &round, &journal);
    check_after_kill(&round, &journal, Newest::Journaled);
    assert!(
        journal.files_removed.iter().sum::<u64>() > 0,
        "retention deleted files: {journal:?}"
    );
}
