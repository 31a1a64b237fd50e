//! The snapshot-store suite: plain `pub async fn`s taking a [`Fixture`], stamped for a
//! local directory (`tests/local_fs.rs`) and for SeaweedFS (`tests/s3.rs`) by
//! [`stamp!`], so each pair shows up as its own test.
#![allow(dead_code)]

pub mod corruption;
pub mod listing;
pub mod races;
pub mod retention;
pub mod roundtrip;
pub mod sim;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use corruption::*;
pub use listing::*;
pub use races::*;
pub use retention::*;
pub use roundtrip::*;

use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{ObjectStore, ObjectStoreExt};
use snapshot_object_store::{ManualClock, ObjectSnapshotStore, SnapshotStoreConfig};
use state_core::{Checkpoint, Position, SnapshotManifest, SnapshotScope, SnapshotStore};
use tempfile::TempDir;

use sim::SimStore;

/// The part size of the suite's stores: the smallest S3 allows, so a file of a few
/// MiB already goes in parts and comes back in ranges.
pub const PART: u64 = snapshot_object_store::MIN_PART_SIZE;
/// `max_upload` of the suite's stores (the default).
pub const T: Duration = Duration::from_secs(15 * 60);
/// `grace` of the suite's stores (the default).
pub const G: Duration = Duration::from_secs(60 * 60);

/// One test's object store, empty under its own prefix, seen through a [`SimStore`]
/// on one [`ManualClock`], and a local directory for checkpoints and downloads.
pub struct Fixture {
    /// The object store itself, for tampering with objects behind the stores' back.
    pub raw: Arc<dyn ObjectStore>,
    /// What every snapshot store of the test talks to.
    pub sim: Arc<SimStore>,
    /// This test's prefix in `raw`.
    pub prefix: String,
    /// Every store's clock, starting at the real time.
    pub clock: ManualClock,
    /// Checkpoints and downloads.
    pub work: TempDir,
    /// Keeps a local object store's directory.
    _root: Option<TempDir>,
}

impl Fixture {
    pub fn new(raw: Arc<dyn ObjectStore>, prefix: String, root: Option<TempDir>) -> Self {
        let clock = ManualClock::starting_now();
        Self {
            sim: Arc::new(SimStore::new(raw.clone(), clock.clone())),
            raw,
            prefix,
            clock,
            work: tempfile::tempdir().unwrap(),
            _root: root,
        }
    }

    /// The suite's configuration for `writer`.
    pub fn config(&self, writer: &str) -> SnapshotStoreConfig {
        SnapshotStoreConfig::new(writer)
            .with_part_size(PART)
            .with_max_upload(T)
            .with_grace(G)
            .with_max_concurrent_transfers(4)
            .with_clock(Arc::new(self.clock.clone()))
    }

    /// A snapshot store of `writer` on this fixture.
    pub fn store(&self, writer: &str) -> ObjectSnapshotStore {
        self.store_with(self.config(writer))
    }

    /// A snapshot store with `config` on this fixture.
    pub fn store_with(&self, config: SnapshotStoreConfig) -> ObjectSnapshotStore {
        ObjectSnapshotStore::new(self.sim.clone(), &self.prefix, config).unwrap()
    }

    /// A checkpoint named `name` at changelog `offset` of the suite's scope, holding
    /// `files` (relative path, bytes).
    pub fn checkpoint(&self, name: &str, offset: i64, files: &[(&str, Vec<u8>)]) -> Checkpoint {
        let dir = self.work.path().join("checkpoints").join(name);
        for (path, bytes) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        Checkpoint {
            files: Checkpoint::list_files(&dir).unwrap(),
            dir,
            backend: "test".into(),
            backend_format: 1,
            position: Position::of(scope().partition, offset),
        }
    }

    /// A fresh directory path (not created) under the work directory.
    pub fn target(&self, name: &str) -> PathBuf {
        self.work.path().join("downloads").join(name)
    }

    /// The object holding the bytes `checksum` (`blake3:<hex>`) in `scope`.
    pub fn object(&self, scope: &SnapshotScope, checksum: &str) -> Path {
        let hex = checksum.strip_prefix("blake3:").unwrap();
        Path::from(format!(
            "{}/{}/{}/{}/files/{hex}",
            self.prefix, scope.application, scope.store, scope.partition
        ))
    }

    /// The manifests directory of `scope`.
    pub fn manifests(&self, scope: &SnapshotScope) -> Path {
        Path::from(format!(
            "{}/{}/{}/{}/manifests",
            self.prefix, scope.application, scope.store, scope.partition
        ))
    }

    /// The newest readable manifest of `scope`.
    pub async fn newest(
        &self,
        store: &ObjectSnapshotStore,
        scope: &SnapshotScope,
    ) -> SnapshotManifest {
        store
            .list(scope)
            .await
            .unwrap()
            .into_iter()
            .find_map(|listed| listed.manifest.ok())
            .expect("a readable manifest")
    }

    /// Fails unless every file every readable manifest of `scope` names exists with
    /// its size: the invariant retention must never break.
    pub async fn assert_complete(&self, scope: &SnapshotScope, when: &str) {
        let reader =
            ObjectSnapshotStore::new(self.raw.clone(), &self.prefix, self.config("checker"))
                .unwrap();
        for listed in reader.list(scope).await.unwrap() {
            let Ok(manifest) = listed.manifest else {
                continue;
            };
            for file in &manifest.files {
                let object = self.object(scope, &file.checksum);
                match self.raw.head(&object).await {
                    Ok(meta) => assert_eq!(meta.size, file.size, "{when}: {object} size"),
                    Err(err) => panic!(
                        "{when}: manifest {} names {} ({object}), which is gone: {err}",
                        listed.id, file.path
                    ),
                }
            }
        }
    }

    /// How many manifests of `scope` exist.
    pub async fn manifest_count(&self, scope: &SnapshotScope) -> usize {
        use futures::TryStreamExt;
        let dir = self.manifests(scope);
        self.raw
            .list(Some(&dir))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len()
    }

    /// Whether the object for `checksum` exists in `scope`.
    pub async fn has(&self, scope: &SnapshotScope, checksum: &str) -> bool {
        self.raw.head(&self.object(scope, checksum)).await.is_ok()
    }
}

/// The suite's scope.
pub fn scope() -> SnapshotScope {
    SnapshotScope::new("shop", "rewards", 3)
}

/// `n` bytes that differ from those of any other `seed`.
pub fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// `blake3:<hex>` of `data`.
pub fn sum(data: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(data).to_hex())
}

/// One `#[tokio::test]` per suite function, each with a fresh fixture from `$fixture`
/// (`None`: skipped).
#[macro_export]
macro_rules! stamp {
    ($fixture:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(fixture) = $fixture().await else { return };
                suite::$test(fixture).await;
            }
        )*
    };
}

/// Every suite function, for [`stamp!`].
#[macro_export]
macro_rules! stamp_all {
    ($fixture:path) => {
        $crate::stamp!($fixture;
            round_trip_is_byte_identical,
            a_second_upload_sends_only_new_files,
            a_download_copies_matching_local_files,
            a_download_into_an_existing_directory_is_refused,
            names_cannot_climb_out_of_the_prefix,
            a_flipped_byte_is_corruption_naming_the_file,
            a_truncated_object_is_corruption_naming_the_file,
            a_deleted_object_is_corruption_naming_the_file,
            snapshots_are_listed_newest_first,
            an_unreadable_manifest_is_listed_with_its_error,
            a_foreign_manifest_is_listed_and_refused_by_check_belongs,
            retention_keeps_the_newest_k,
            a_file_goes_only_after_two_passes_a_grace_apart,
            an_unreadable_manifest_stops_file_deletion,
            keep_zero_is_refused,
            an_upload_past_max_upload_publishes_nothing,
            a_zombie_building_on_a_superseded_base_keeps_its_files,
            a_superseded_base_is_kept_until_its_readers_publish,
            an_upload_racing_a_deleting_pass_publishes_nothing,
            a_file_sent_again_before_the_last_look_is_kept,
            two_writers_interleaved_never_name_a_missing_file,
        );
    };
}
