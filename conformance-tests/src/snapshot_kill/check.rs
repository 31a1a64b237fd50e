//! What the parent checks after a kill: the snapshot store's invariant (every listed
//! manifest is whole and every file it names is there, with its size) and the
//! guarantee (a fresh store restored from the newest snapshot plus the changelog's tail
//! equals a replay of the whole changelog, which equals the model).

use std::sync::{Arc, Mutex};

use snapshot_object_store::SnapshotStoreConfig;
use snapshot_object_store::object_store::ObjectStoreExt;
use state_core::{
    ChangelogReader, KeyValueStore, RestoreListener, RestoreOptions, RestoreSummary, RestoreTarget,
    SnapshotFallback, SnapshotManifest, SnapshotStore, StoreHome, catch_up,
};

use super::child::{APPLICATION, STORE, scope};
use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::kill::KILL_PARTITION;
use crate::snapshot_place::Place;

/// The fallbacks a restore reported.
#[derive(Default)]
pub struct Fallbacks(Mutex<Vec<SnapshotFallback>>);

impl Fallbacks {
    /// What was reported.
    pub fn reported(&self) -> Vec<SnapshotFallback> {
        self.0.lock().unwrap().clone()
    }
}

impl RestoreListener for Fallbacks {
    fn on_snapshot_fallback(&self, _: RestoreTarget<'_>, reason: &SnapshotFallback) {
        self.0.lock().unwrap().push(reason.clone());
    }
}

/// Lists the snapshots (newest first) and checks that each manifest reads whole and
/// each file it names exists with its size: a kill at any step of an upload or a
/// retention pass must never leave a manifest naming a missing or partial file.
pub fn listing_is_whole(place: &Place) -> Vec<(String, SnapshotManifest)> {
    let snapshots = place.snapshot_store(SnapshotStoreConfig::new("parent"));
    let listed = block_on(snapshots.list(&scope())).unwrap_or_else(|err| panic!("list: {err}"));
    listed
        .into_iter()
        .map(|listed| {
            let manifest = listed.manifest.unwrap_or_else(|err| {
                panic!("manifest {} is not whole after the kill: {err}", listed.id)
            });
            for file in &manifest.files {
                let object = place.file_object(&scope(), &file.checksum);
                let meta = block_on(place.objects().head(&object)).unwrap_or_else(|err| {
                    panic!(
                        "manifest {} names file {} whose object {object} is gone: {err}",
                        listed.id, file.path
                    )
                });
                assert_eq!(
                    meta.size, file.size,
                    "manifest {} names file {} ({object}) of {} bytes; the object has {}",
                    listed.id, file.path, file.size, meta.size
                );
            }
            (listed.id, manifest)
        })
        .collect()
}

/// Restores a fresh `backend` store from `place`'s snapshots and `reader`'s changelog,
/// checks it started from `expected` (a manifest id; `None`: replayed from the start,
/// saying why), and returns its contents.
///
/// `killed_anywhere`: the child was killed at no chosen step, so a request it had sent
/// whole (a manifest's PUT) may still complete on the server after the listing that gave
/// `expected`. A restore that starts from a newer snapshot is then right if that one is
/// the newest whole snapshot listed after the restore.
pub fn restore_fresh(
    backend: &dyn BackendFactory,
    place: &Place,
    reader: &dyn ChangelogReader,
    expected: Option<&(String, SnapshotManifest)>,
    killed_anywhere: bool,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let target = Fixture::new(backend, STORE);
    let (store, summary, fallbacks) = restore_into(&target, place, reader);
    let used = summary.snapshot.as_ref().map(|s| s.id.clone());
    let listed_after;
    let expected = if killed_anywhere && used != expected.map(|(id, _)| id.clone()) {
        listed_after = listing_is_whole(place);
        listed_after.first()
    } else {
        expected
    };
    assert_eq!(
        used,
        expected.map(|(id, _)| id.clone()),
        "the restore must start from the newest whole snapshot (fallbacks: {fallbacks:?})"
    );
    match expected {
        Some((_, manifest)) => {
            assert_eq!(summary.from, manifest.position + 1, "only the tail replays");
        }
        None => {
            assert_eq!(summary.from, 0, "no snapshot: a full replay");
            assert!(
                fallbacks.contains(&SnapshotFallback::NoSnapshot),
                "a restore without a snapshot says why: {fallbacks:?}"
            );
        }
    }
    contents(store.as_ref())
}

fn restore_into(
    target: &Fixture,
    place: &Place,
    reader: &dyn ChangelogReader,
) -> (
    Arc<dyn KeyValueStore>,
    RestoreSummary,
    Vec<SnapshotFallback>,
) {
    let dir = target.store_dir();
    let snapshots: Arc<dyn SnapshotStore> =
        Arc::new(place.snapshot_store(SnapshotStoreConfig::new("parent")));
    let options = RestoreOptions {
        snapshots: Some(snapshots),
        ..RestoreOptions::default()
    };
    let home = StoreHome {
        application: APPLICATION,
        supplier: target.supplier().as_ref(),
        dir: &dir,
    };
    let heard = Fallbacks::default();
    let (store, summary) = block_on(catch_up(
        (target.open(), None),
        Some(home),
        reader,
        KILL_PARTITION,
        &options,
        &heard,
    ))
    .unwrap_or_else(|err| panic!("restoring from snapshots + tail: {err}"));
    (store, summary, heard.reported())
}
