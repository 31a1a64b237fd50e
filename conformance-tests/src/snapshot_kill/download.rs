//! The download round: a restore from snapshots killed inside its download, then rerun
//! into the same directory.

use std::path::Path;

use state_core::SnapshotManifest;

use super::check::listing_is_whole;
use super::child::{Mode, STORE};
use super::crash_store::CrashPoint;
use super::journal::Restored;
use super::runner::{Ending, Round, run_child};
use crate::file_log::read_log;
use crate::harness::{BackendFactory, Fixture, contents};
use crate::kill::replay;
use crate::snapshot_place::Where;

/// What a killed and rerun download left.
pub(super) struct Rerun {
    /// The store's place, restored by the rerun.
    pub target: Fixture,
    /// What the rerun said it did.
    pub restored: Restored,
    /// The newest snapshot, which the rerun must have used.
    pub newest: (String, SnapshotManifest),
}

/// Uploads three snapshots (the child runs to its end), then restores a new store from
/// them, killing the restore `1 + seed % 512` bytes into its download, and checks the
/// partial download is left beside the store while the store is untouched (empty); then
/// reruns the restore into the same directory and checks it removed the partial
/// download (never opening it) and started from the newest snapshot.
pub(super) fn kill_a_download(exe: &Path, round: &Round<'_>) -> Rerun {
    let mut upload = round.upload(CrashPoint::None);
    upload.max = 3;
    run_child(exe, &upload, Ending::Finishes);
    let listed = listing_is_whole(&round.place);
    let newest = listed.first().expect("snapshots").clone();
    // Within the first half kilobyte downloaded: files equal to one of the (empty)
    // local store are copied rather than downloaded (RocksDB's OPTIONS file may be the
    // largest of all), but every snapshot of a store with data downloads more than that
    // (its SSTs, its redb file).
    let point = CrashPoint::MidDownload(1 + round.seed % 512);

    let target = Fixture::new(round.backend, STORE);
    let journal = target.root().join("journal");
    let download = |crash| round.args(Mode::Download, crash, target.store_dir(), journal.clone());
    let (_, pid) = run_child(exe, &download(point), Ending::CrashPoint);
    let partial: Vec<_> = std::fs::read_dir(target.root())
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().is_some_and(|name| {
                name.to_string_lossy()
                    .starts_with(&format!(".store.snapshot-{pid}-"))
            })
        })
        .collect();
    assert_eq!(
        partial.len(),
        1,
        "the killed download is left beside the store"
    );
    {
        let store = target.open();
        assert!(
            contents(store.as_ref()).is_empty(),
            "a partial download is never opened"
        );
        assert_eq!(store.position().unwrap().applied(0), None);
    }

    let (journal, _) = run_child(exe, &download(CrashPoint::None), Ending::Finishes);
    assert!(
        !partial[0].exists(),
        "the rerun removes the abandoned download"
    );
    let restored = journal.restored.expect("the rerun restored");
    assert_eq!(restored.snapshot.as_deref(), Some(newest.0.as_str()));
    Rerun {
        target,
        restored,
        newest,
    }
}

/// A restore killed inside its download, on a file changelog: the rerun ends equal to
/// the replay of the changelog, replaying only the tail after the newest snapshot, at
/// the changelog's last offset.
pub fn download_killed_midway(exe: &Path, backend: &dyn BackendFactory, place: Where, seed: u64) {
    let Some(round) = Round::new(backend, place, seed, None) else {
        return;
    };
    let Rerun {
        target,
        restored,
        newest,
    } = kill_a_download(exe, &round);
    let records = read_log(&round.log().unwrap()).unwrap();
    assert_eq!(
        restored.replayed,
        records.len() as u64 - (newest.1.position as u64 + 1),
        "the rerun replays only the tail"
    );
    let store = target.open();
    assert_eq!(contents(store.as_ref()), replay(&records));
    assert_eq!(
        store.position().unwrap().applied(0),
        Some(records.len() as i64 - 1)
    );
}
