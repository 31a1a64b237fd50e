//! Restoring from snapshots: for every backend that snapshots itself, a store restored
//! from (snapshot + changelog tail) equals one replayed from the whole changelog, and
//! every kind of damage to the snapshot store falls back to replay with the same result.
//! Run on a local directory and on a real S3 server (SeaweedFS, `scripts/s3.sh`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::BTreeMap;

use snapshot_object_store::object_store::path::Path as ObjectPath;
use snapshot_object_store::object_store::{ObjectStoreExt, PutPayload};
use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig};
use state_core::{
    ChangelogReader, ErrorKind, KeyValueStore, LoggedStore, ProcessingGuarantee, RestoreListener,
    RestoreOptions, RestoreSummary, RestoreTarget, SinkOptions, SnapshotFallback, SnapshotManifest,
    SnapshotRestore, SnapshotScope, SnapshotStore, StoreHome, TopicSpec, catch_up,
};
use test_support::unique_name;

use crate::changelogs::{ChangelogFactory, ChangelogUnderTest, in_process};
use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::snapshot_place::Place;
use crate::support::PARTITION;

/// The application the snapshots belong to.
const APPLICATION: &str = "app";
/// The store name every fixture uses.
const STORE: &str = "store";

pub use crate::snapshot_place::Where;

/// A snapshot store of one test, on a fresh directory or a fresh prefix of the bucket,
/// and its raw objects (through the `object_store` API on both) for damage.
struct Snapshots {
    store: Arc<ObjectSnapshotStore>,
    place: Place,
}

impl Snapshots {
    /// `None` when the S3 server is absent outside CI (the lookup says it skipped).
    fn new(place: &Where, test: &str) -> Option<Self> {
        let place = Place::new(*place, test)?;
        let config = SnapshotStoreConfig::new(format!("conformance-{test}"));
        Some(Self {
            store: Arc::new(place.snapshot_store(config)),
            place,
        })
    }

    fn scope() -> SnapshotScope {
        SnapshotScope::new(APPLICATION, STORE, PARTITION)
    }

    /// Checkpoints `store` and uploads it; returns the snapshot's position.
    fn take(&self, store: &dyn KeyValueStore, scratch: &Path) -> i64 {
        let dir = scratch.join(format!("checkpoint-{}", unique()));
        let checkpoint = store
            .checkpoint(&dir)
            .unwrap_or_else(|err| panic!("checkpoint of {}: {err}", store.name()));
        let uploaded = block_on(self.store.upload(&Self::scope(), &checkpoint))
            .unwrap_or_else(|err| panic!("upload: {err}"));
        std::fs::remove_dir_all(&dir).unwrap_or_else(|err| panic!("removing {dir:?}: {err}"));
        uploaded.position
    }

    /// The snapshot objects under `kind` (`files` or `manifests`), sorted by name.
    fn objects(&self, kind: &str) -> Vec<ObjectPath> {
        self.place
            .listed(&Self::scope(), kind)
            .into_iter()
            .map(|meta| meta.location)
            .collect()
    }

    fn read(&self, object: &ObjectPath) -> Vec<u8> {
        block_on(async { self.place.objects().get(object).await?.bytes().await })
            .unwrap_or_else(|err| panic!("reading {object}: {err}"))
            .to_vec()
    }

    fn write(&self, object: &ObjectPath, bytes: Vec<u8>) {
        block_on(self.place.objects().put(object, PutPayload::from(bytes)))
            .unwrap_or_else(|err| panic!("writing {object}: {err}"));
    }

    fn delete(&self, object: &ObjectPath) {
        block_on(self.place.objects().delete(object))
            .unwrap_or_else(|err| panic!("deleting {object}: {err}"));
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Snapshot restores and fallbacks heard.
#[derive(Default)]
struct Heard {
    restored: Mutex<Vec<SnapshotRestore>>,
    fallbacks: Mutex<Vec<SnapshotFallback>>,
}

impl RestoreListener for Heard {
    fn on_snapshot_restored(&self, _: RestoreTarget<'_>, restored: &SnapshotRestore) {
        self.restored.lock().unwrap().push(restored.clone());
    }
    fn on_snapshot_fallback(&self, _: RestoreTarget<'_>, reason: &SnapshotFallback) {
        self.fallbacks.lock().unwrap().push(reason.clone());
    }
}

/// A store written through its changelog in committed batches of puts, overwrites and
/// deletes, snapshotted between them.
struct Source {
    changelog: ChangelogUnderTest,
    fixture: Fixture,
    logged: LoggedStore,
    guarantee: ProcessingGuarantee,
    written: u32,
}

impl Source {
    fn new(
        factory: &dyn BackendFactory,
        changelogs: &dyn ChangelogFactory,
        guarantee: ProcessingGuarantee,
    ) -> Self {
        let changelog = changelogs.create();
        let topic = changelog.topic.clone();
        block_on(changelog.changelog.ensure_topic(&TopicSpec::changelog(
            &topic,
            4,
            &BTreeMap::new(),
        )))
        .unwrap_or_else(|err| panic!("creating {topic}: {err}"));
        let sink = block_on(
            changelog
                .changelog
                .sink(&SinkOptions::new(guarantee, unique_name("snapshots-sink"))),
        )
        .unwrap_or_else(|err| panic!("sink: {err}"));
        let fixture = Fixture::new(factory, STORE);
        let logged = LoggedStore::new(fixture.open(), sink, &topic, PARTITION);
        Self {
            changelog,
            fixture,
            logged,
            guarantee,
            written: 0,
        }
    }

    fn reader(&self) -> Arc<dyn ChangelogReader> {
        block_on(
            self.changelog
                .changelog
                .reader(&self.changelog.topic, self.guarantee.isolation()),
        )
        .unwrap_or_else(|err| panic!("reader: {err}"))
    }

    /// Puts 30 new keys, overwrites 10 older ones and deletes 5, then commits.
    fn batch(&mut self) {
        let base = self.written;
        for i in base..base + 30 {
            self.logged
                .put(format!("key-{i:05}").as_bytes(), &i.to_be_bytes())
                .unwrap();
        }
        for i in (0..base).step_by(7).take(10) {
            self.logged
                .put(
                    format!("key-{i:05}").as_bytes(),
                    &(i + 1_000_000).to_be_bytes(),
                )
                .unwrap();
        }
        for i in (3..base).step_by(11).take(5) {
            self.logged
                .delete(format!("key-{i:05}").as_bytes())
                .unwrap();
        }
        block_on(self.logged.commit()).unwrap();
        self.written += 30;
    }

    fn snapshot(&self, snapshots: &Snapshots) -> i64 {
        snapshots.take(self.logged.inner().as_ref(), self.fixture.root())
    }

    fn replay(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        crate::harness::replay(self.reader().as_ref(), PARTITION)
            .unwrap_or_else(|err| panic!("replay: {err}"))
            .into_iter()
            .collect()
    }

    /// Restores a store of `factory` in a new directory with `snapshots`.
    fn relocate(
        &self,
        factory: &dyn BackendFactory,
        snapshots: &Snapshots,
        heard: &Heard,
    ) -> (Fixture, Arc<dyn KeyValueStore>, RestoreSummary) {
        let target = Fixture::new(factory, STORE);
        let dir = target.store_dir();
        let reader = self.reader();
        let options = RestoreOptions {
            batch_size: Some(7),
            snapshots: Some(snapshots.store.clone()),
            ..RestoreOptions::default()
        };
        let home = StoreHome {
            application: APPLICATION,
            supplier: target.supplier().as_ref(),
            dir: &dir,
        };
        let opened = (target.open(), None);
        let (store, summary) = block_on(catch_up(
            opened,
            Some(home),
            reader.as_ref(),
            PARTITION,
            &options,
            heard,
        ))
        .unwrap_or_else(|err| panic!("relocating from snapshots: {err}"));
        (target, store, summary)
    }
}

fn snapshots_supported(factory: &dyn BackendFactory) -> bool {
    let fixture = Fixture::new(factory, STORE);
    fixture.open().capability().snapshots
}

/// (snapshot + tail) == replay(changelog): the relocated store starts from the newest
/// snapshot, replays only the records after it, and ends equal to a full replay.
pub fn snapshot_plus_tail_equals_replay(
    factory: &dyn BackendFactory,
    changelogs: &dyn ChangelogFactory,
    guarantee: ProcessingGuarantee,
    place: Where,
) {
    if !snapshots_supported(factory) {
        return;
    }
    let Some(snapshots) = Snapshots::new(&place, "tail") else {
        return;
    };
    let mut source = Source::new(factory, changelogs, guarantee);
    source.batch();
    source.snapshot(&snapshots);
    source.batch();
    source.batch();
    let newest = source.snapshot(&snapshots);
    source.batch();
    let heard = Heard::default();
    let (_target, store, summary) = source.relocate(factory, &snapshots, &heard);
    let restored = summary
        .snapshot
        .as_ref()
        .unwrap_or_else(|| panic!("not restored from a snapshot: {:?}", heard.fallbacks));
    assert_eq!(restored.position, newest, "the newest snapshot is used");
    assert_eq!(summary.from, newest + 1, "only the tail is replayed");
    assert!(
        summary.restored > 0 && summary.restored <= 45,
        "{summary:?}"
    );
    assert_eq!(contents(store.as_ref()), source.replay());
    assert_eq!(
        contents(store.as_ref()),
        contents(source.logged.inner().as_ref())
    );
}

/// What is done to the snapshot store before the relocation.
#[derive(Debug, Clone, Copy)]
pub enum Damage {
    /// One byte of the largest file object flipped: its checksum fails.
    FlipByte,
    /// Every file object deleted.
    DeleteFiles,
    /// The newest manifest deleted (an upload killed before it): the older snapshot is
    /// used.
    DeleteNewestManifest,
    /// Every manifest rewritten to name another store: refused as foreign, never opened.
    ManifestOfAnotherStore,
}

/// Damage to the snapshot store never reaches the relocated store: it falls back to an
/// older snapshot or to replay, says why, and ends equal to a full replay. The damage is
/// done through the `object_store` API, so it is the same on a directory and on S3.
pub fn damaged_snapshots_fall_back(factory: &dyn BackendFactory, damage: Damage, place: Where) {
    if !snapshots_supported(factory) {
        return;
    }
    let guarantee = ProcessingGuarantee::ExactlyOnce;
    let Some(snapshots) = Snapshots::new(&place, "damage") else {
        return;
    };
    let mut source = Source::new(factory, &in_process(), guarantee);
    source.batch();
    let older = source.snapshot(&snapshots);
    source.batch();
    source.snapshot(&snapshots);
    source.batch();
    match damage {
        Damage::FlipByte => {
            // The largest file the newest snapshot names that a new store does not hold
            // already (a file equal to a local one is copied, not downloaded).
            let manifests = snapshots.objects("manifests");
            let newest = manifests.last().expect("manifests");
            let manifest =
                SnapshotManifest::from_json(&snapshots.read(newest), newest.as_ref()).unwrap();
            let fresh = Fixture::new(factory, STORE);
            drop(fresh.open());
            let object_of =
                |checksum: &str| snapshots.place.file_object(&Snapshots::scope(), checksum);
            let held_locally = |path: &str, object: &ObjectPath| {
                std::fs::read(fresh.store_dir().join(path))
                    .is_ok_and(|local| local == snapshots.read(object))
            };
            let file = manifest
                .files
                .iter()
                .filter(|f| f.size > 0 && !held_locally(&f.path, &object_of(&f.checksum)))
                .max_by_key(|f| f.size)
                .expect("a file to damage");
            let largest = object_of(&file.checksum);
            let mut bytes = snapshots.read(&largest);
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x40;
            snapshots.write(&largest, bytes);
        }
        Damage::DeleteFiles => {
            let files = snapshots.objects("files");
            assert!(!files.is_empty(), "files to delete");
            for file in files {
                snapshots.delete(&file);
            }
        }
        Damage::DeleteNewestManifest => {
            let manifests = snapshots.objects("manifests");
            snapshots.delete(manifests.last().expect("manifests"));
        }
        Damage::ManifestOfAnotherStore => {
            // The manifests in this store's place name another store.
            for manifest in snapshots.objects("manifests") {
                let json = String::from_utf8(snapshots.read(&manifest)).unwrap();
                let foreign = json.replace("\"store\": \"store\"", "\"store\": \"other\"");
                assert_ne!(json, foreign, "the manifest names its store");
                snapshots.write(&manifest, foreign.into_bytes());
            }
        }
    }
    let heard = Heard::default();
    let (_target, store, summary) = source.relocate(factory, &snapshots, &heard);
    let fallbacks = heard.fallbacks.lock().unwrap().clone();
    match damage {
        Damage::DeleteNewestManifest => {
            assert_eq!(
                summary.snapshot.as_ref().map(|s| s.position),
                Some(older),
                "the older snapshot is used: {fallbacks:?}"
            );
        }
        Damage::FlipByte | Damage::DeleteFiles => {
            // The newer snapshot fails its download, and so does the older one where
            // they share the damaged file; whichever is used, the result is exact.
            assert!(
                fallbacks
                    .iter()
                    .any(|f| matches!(f, SnapshotFallback::Failed { .. })),
                "the damaged download is reported: {fallbacks:?}"
            );
            if let Some(used) = &summary.snapshot {
                assert_eq!(used.position, older, "{fallbacks:?}");
            }
        }
        Damage::ManifestOfAnotherStore => {
            assert!(summary.snapshot.is_none(), "{summary:?}");
            assert!(
                fallbacks
                    .iter()
                    .all(|f| matches!(f, SnapshotFallback::Foreign { .. })),
                "{fallbacks:?}"
            );
            assert_eq!(fallbacks.len(), 2, "{fallbacks:?}");
        }
    }
    if summary.snapshot.is_none() {
        assert_eq!(summary.from, 0, "a full replay");
    }
    assert_eq!(contents(store.as_ref()), source.replay());
}

/// A snapshot the local store is already past is not downloaded: a store that comes
/// back to its kept directory replays only its own tail.
pub fn a_local_store_ahead_of_the_snapshot_is_kept(factory: &dyn BackendFactory) {
    if !snapshots_supported(factory) || !factory_is_durable(factory) {
        return;
    }
    let Some(snapshots) = Snapshots::new(&Where::Directory, "ahead") else {
        return;
    };
    let mut source = Source::new(factory, &in_process(), ProcessingGuarantee::AtLeastOnce);
    source.batch();
    source.snapshot(&snapshots);
    source.batch();
    // The source's own directory, reopened, is ahead of the snapshot.
    let dir = source.fixture.store_dir();
    let position = source.logged.inner().position().unwrap();
    let heard = Heard::default();
    let reader = source.reader();
    let options = RestoreOptions {
        snapshots: Some(snapshots.store.clone()),
        ..RestoreOptions::default()
    };
    let home = StoreHome {
        application: APPLICATION,
        supplier: source.fixture.supplier().as_ref(),
        dir: &dir,
    };
    let store = source.logged.inner().clone();
    let (_, summary) = block_on(catch_up(
        (store, None),
        Some(home),
        reader.as_ref(),
        PARTITION,
        &options,
        &heard,
    ))
    .unwrap();
    assert!(summary.snapshot.is_none(), "{summary:?}");
    assert_eq!(summary.restored, 0);
    assert!(heard.restored.lock().unwrap().is_empty());
    assert!(position.applied(PARTITION).is_some());
}

fn factory_is_durable(factory: &dyn BackendFactory) -> bool {
    Fixture::new(factory, STORE).open().capability().durable
}

/// A download a killed restore left beside the store is never opened: it is removed, and
/// the restore downloads afresh.
pub fn an_abandoned_download_is_removed_not_opened(factory: &dyn BackendFactory) {
    if !snapshots_supported(factory) {
        return;
    }
    let Some(snapshots) = Snapshots::new(&Where::Directory, "abandoned") else {
        return;
    };
    let mut source = Source::new(factory, &in_process(), ProcessingGuarantee::AtLeastOnce);
    source.batch();
    source.snapshot(&snapshots);
    let heard = Heard::default();
    let target = Fixture::new(factory, STORE);
    // A process id no system hands out: the download's owner is gone.
    let abandoned = target.root().join(".store.snapshot-4294967295-1");
    std::fs::create_dir_all(&abandoned).unwrap();
    std::fs::write(abandoned.join("garbage"), b"half a file").unwrap();
    let dir = target.store_dir();
    let reader = source.reader();
    let options = RestoreOptions {
        snapshots: Some(snapshots.store.clone()),
        ..RestoreOptions::default()
    };
    let home = StoreHome {
        application: APPLICATION,
        supplier: target.supplier().as_ref(),
        dir: &dir,
    };
    let (store, summary) = block_on(catch_up(
        (target.open(), None),
        Some(home),
        reader.as_ref(),
        PARTITION,
        &options,
        &heard,
    ))
    .unwrap();
    assert!(summary.snapshot.is_some(), "{:?}", heard.fallbacks);
    assert!(!abandoned.exists(), "the abandoned download is removed");
    assert_eq!(contents(store.as_ref()), source.replay());
}

/// A restore cancelled while it downloads a snapshot (here one the bandwidth limit would
/// keep downloading for half a minute) stops: `Closed`, the local store as it was, its
/// position too, and no part of the download left beside it.
pub fn a_cancelled_download_keeps_the_local_store(factory: &dyn BackendFactory) {
    if !snapshots_supported(factory) {
        return;
    }
    let Some(snapshots) = Snapshots::new(&Where::S3, "cancelled") else {
        return;
    };
    let mut source = Source::new(factory, &in_process(), ProcessingGuarantee::AtLeastOnce);
    source.batch();
    // The local store holds the first batch, restored from the changelog.
    let target = Fixture::new(factory, STORE);
    let dir = target.store_dir();
    let heard = Heard::default();
    let (local, _) = block_on(catch_up(
        (target.open(), None),
        None,
        source.reader().as_ref(),
        PARTITION,
        &RestoreOptions::default(),
        &heard,
    ))
    .unwrap_or_else(|err| panic!("restoring the first batch: {err}"));
    let (before, position) = (contents(local.as_ref()), local.position().unwrap());
    local.close().unwrap();
    drop(local);
    for _ in 0..3 {
        source.batch();
    }
    source.snapshot(&snapshots);
    // Read through a store whose bandwidth limit makes the download last about 30 s.
    let listed = block_on(snapshots.store.list(&Snapshots::scope())).unwrap();
    let manifest = listed[0].manifest.as_ref().unwrap();
    let bytes: u64 = manifest.files.iter().map(|file| file.size).sum();
    let slow = snapshots.place.snapshot_store(
        SnapshotStoreConfig::new("conformance-cancelled-reader")
            .with_max_bytes_per_second(Some((bytes / 30).max(1))),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let options = RestoreOptions {
        snapshots: Some(Arc::new(slow)),
        cancel: Some(cancel.clone()),
        ..RestoreOptions::default()
    };
    let home = StoreHome {
        application: APPLICATION,
        supplier: target.supplier().as_ref(),
        dir: &dir,
    };
    let root = target.root().to_owned();
    let downloads = move || {
        std::fs::read_dir(&root)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().contains(".snapshot-"))
                    .count()
            })
            .unwrap_or(0)
    };
    let raiser = {
        let (cancel, downloads) = (cancel.clone(), downloads.clone());
        std::thread::spawn(move || {
            let began = test_support::try_eventually(
                Duration::from_secs(60),
                "a download to begin",
                || downloads() > 0,
            );
            cancel.store(true, Ordering::SeqCst);
            began
        })
    };
    let reader = source.reader();
    let outcome = block_on(catch_up(
        (target.open(), None),
        Some(home),
        reader.as_ref(),
        PARTITION,
        &options,
        &heard,
    ));
    if let Err(timed_out) = raiser.join().unwrap() {
        panic!("{timed_out}");
    }
    match outcome {
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
            assert!(err.to_string().contains("downloading snapshot"), "{err}");
        }
        Ok((_, summary)) => panic!("the cancelled restore went on: {summary:?}"),
    }
    assert!(heard.restored.lock().unwrap().is_empty());
    assert_eq!(downloads(), 0, "the partial download is removed");
    if factory_is_durable(factory) {
        let reopened = target.open();
        assert_eq!(reopened.position().unwrap(), position);
        assert_eq!(contents(reopened.as_ref()), before);
    }
}

/// The store manager snapshots by its policy and relocates from the snapshots: a commit
/// that reaches `every_records` checkpoints the partition (its pause reported), the
/// uploader sends it in the background, a standby and a new owner start from it and
/// replay only the tail after it;
/// a clean revoke snapshots what is new, so the next owner replays nothing.
pub fn manager_snapshots_by_policy_and_relocates_from_them(
    factory: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    use crate::manager::{Setup, instance_with};
    use state_core::{AfterRevoke, SnapshotPolicy, SnapshotUploader, UploaderConfig};

    if !snapshots_supported(factory) {
        return;
    }
    let Some(snapshots) = Snapshots::new(&Where::Directory, "manager") else {
        return;
    };
    let policy = SnapshotPolicy {
        every_records: Some(500),
        every: None,
        on_revoke: true,
        on_close: true,
        keep: 2,
    };
    let changelog = state_core::changelog::in_memory::InMemoryChangelog::new();
    let owner = |uploader: &SnapshotUploader| {
        instance_with(
            factory,
            &changelog,
            guarantee,
            Setup {
                snapshots: Some((policy.clone(), uploader.clone())),
                ..Setup::default()
            },
        )
    };
    let uploader = SnapshotUploader::new(snapshots.store.clone(), UploaderConfig::default());
    let running = uploader.clone();
    let uploads = std::thread::spawn(move || block_on(running.run()));

    let first = owner(&uploader);
    first.assign_one(0);
    first.process(0, 0, 300, 5);
    let commit = block_on(first.manager.commit()).unwrap();
    assert_eq!(commit.snapshots, 0, "300 records are not due: {commit:?}");
    first.process(0, 1, 300, 5);
    let commit = block_on(first.manager.commit()).unwrap();
    assert_eq!(commit.snapshots, 1, "600 records are due: {commit:?}");
    first.process(0, 2, 40, 1);
    let commit = block_on(first.manager.commit()).unwrap();
    assert_eq!(commit.snapshots, 0, "40 more are not: {commit:?}");
    block_on(uploader.flush()).unwrap();

    // A standby starts from the snapshot too and tails only the 40 records after it.
    let standby = owner(&uploader);
    block_on(standby.manager.set_standbys(&[0].into_iter().collect())).unwrap();
    let applied = block_on(standby.manager.update_standbys()).unwrap();
    assert_eq!(
        applied, 40,
        "the standby tails only what follows the snapshot"
    );
    let lags = block_on(standby.manager.standby_lags()).unwrap();
    assert_eq!(lags[0].lag, 0, "{lags:?}");
    assert_eq!(lags[0].applied, 40, "{lags:?}");
    drop(standby);

    // A new owner: the snapshot, then the 40-record tail.
    let second = owner(&uploader);
    let restores = block_on(second.manager.assign_all(&[0]))
        .remove(0)
        .1
        .unwrap()
        .unwrap();
    let summary = restores[crate::manager::STORE].as_ref().unwrap();
    assert!(summary.snapshot.is_some(), "{summary:?}");
    assert_eq!(summary.restored, 40, "{summary:?}");
    assert_eq!(second.totals(0), first.totals(0));

    // A clean revoke snapshots the tail too: the next owner replays nothing.
    block_on(first.manager.revoke(&[0], AfterRevoke::Close)).unwrap();
    second.process(0, 3, 10, 1);
    block_on(second.manager.revoke(&[0], AfterRevoke::Close)).unwrap();
    block_on(uploader.flush()).unwrap();
    let third = owner(&uploader);
    let restores = block_on(third.manager.assign_all(&[0]))
        .remove(0)
        .1
        .unwrap()
        .unwrap();
    let summary = restores[crate::manager::STORE].as_ref().unwrap();
    assert!(summary.snapshot.is_some(), "{summary:?}");
    assert_eq!(summary.restored, 0, "{summary:?}");
    let expected: Vec<_> = (0..300)
        .map(|c| {
            let extra = i64::from(c < 40) + i64::from(c < 10);
            (crate::manager::customer(0, c), 10 + extra)
        })
        .collect();
    assert_eq!(third.totals(0), expected.into_iter().collect());
    uploader.close();
    uploads.join().unwrap();
}
