//! Relocation by snapshot across processes: `rewards_instance` children snapshot the
//! partitions they own into a real snapshot store (the S3 server of `scripts/s3.sh`, or
//! a directory); one is killed with SIGKILL, and the survivor restores each moved
//! partition from its newest snapshot plus the changelog tail after it. The in-process
//! version of the same path is `crate::snapshots::manager_snapshots_by_policy_and_relocates_from_them`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::{Partition, SnapshotScope, SnapshotStore};
use tempfile::TempDir;
use test_support::{eventually, unique_name};

use crate::group_scenarios::{owned_by, readies_since};
use crate::harness::block_on;
use crate::instance_snapshots::{EVERY_VAR, SNAPSHOTS_VAR};
use crate::scale_out::{Group, PARTITIONS};

/// The store whose restores the instances report (`rewards`; `visits` moves with it).
const STORE: &str = "rewards";
/// Records (over both stores of a partition) between two snapshots: a wave of purchases
/// logs about 200 per partition, so the waves before the kill take a snapshot of every
/// partition.
const SNAPSHOT_EVERY: u64 = 300;
/// Purchases after the snapshots, before the kill: 2 per partition, 4 changelog records,
/// so they leave a tail. A whole wave (200 records) could itself complete the count
/// since the last snapshot and take one at the changelog's end, leaving nothing to replay.
const TAIL_PURCHASES: u32 = 12;
/// Waves the owners process before the snapshots are looked for.
const WAVES: u32 = 3;

/// Where the instances' snapshots live.
pub enum SnapshotPlace {
    /// A local directory (`file://`).
    Directory,
    /// The S3 server; with `CI=true` a missing server fails the test.
    S3,
}

/// The snapshot store of one scenario: its URL and the environment an instance needs to
/// reach it, and the test's own handle on it, to see what the instances uploaded.
struct Snapshots {
    env: Vec<(String, String)>,
    store: ObjectSnapshotStore,
    _dir: Option<TempDir>,
}

impl Snapshots {
    /// `None` when the S3 server is absent outside CI (the lookup says it skipped).
    fn new(place: &SnapshotPlace) -> Option<Self> {
        let config = SnapshotStoreConfig::new("scale-out-test");
        let (url, mut env, options, dir) = match place {
            SnapshotPlace::Directory => {
                let dir = tempfile::Builder::new()
                    .prefix("statestore-scale-out-snapshots-")
                    .tempdir()
                    .unwrap_or_else(|err| panic!("temp dir: {err}"));
                let url = format!("file://{}", dir.path().display());
                (url, Vec::new(), UrlOptions::new(config), Some(dir))
            }
            SnapshotPlace::S3 => {
                let s3 = test_support::s3()?;
                let url = format!("s3://{}/{}", s3.bucket, unique_name("scale-out"));
                // The children read the usual AWS_* variables, as an application would.
                let env = vec![
                    ("AWS_ENDPOINT".to_owned(), s3.endpoint.clone()),
                    ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key_id.clone()),
                    (
                        "AWS_SECRET_ACCESS_KEY".to_owned(),
                        s3.secret_access_key.clone(),
                    ),
                    ("AWS_REGION".to_owned(), s3.region.clone()),
                    ("AWS_ALLOW_HTTP".to_owned(), s3.allow_http.to_string()),
                ];
                let options = UrlOptions::new(config)
                    .with_endpoint(s3.endpoint.clone())
                    .with_option("access_key_id", s3.access_key_id.clone())
                    .with_option("secret_access_key", s3.secret_access_key.clone())
                    .with_option("region", s3.region.clone());
                (url, env, options, None)
            }
        };
        let store = ObjectSnapshotStore::from_url(&url, options)
            .unwrap_or_else(|err| panic!("opening {url}: {err}"));
        env.push((SNAPSHOTS_VAR.to_owned(), url));
        env.push((EVERY_VAR.to_owned(), SNAPSHOT_EVERY.to_string()));
        Some(Self {
            env,
            store,
            _dir: dir,
        })
    }

    /// The position of the newest readable snapshot of `partition`'s `rewards` store.
    fn newest(&self, application: &str, partition: Partition) -> Result<Option<i64>, String> {
        let scope = SnapshotScope::new(application, STORE, partition);
        let listed = block_on(self.store.list(&scope)).map_err(|err| err.to_string())?;
        Ok(listed
            .into_iter()
            .find_map(|snapshot| snapshot.manifest.ok())
            .map(|manifest| manifest.position))
    }

    /// Waits until each of `partitions` has a snapshot at or past `since` (the same
    /// order): one its current owner took. Returns their positions.
    fn wait_for(
        &self,
        application: &str,
        partitions: &[Partition],
        since: &[i64],
    ) -> BTreeMap<Partition, i64> {
        eventually(
            Duration::from_secs(60),
            &format!("snapshots of partitions {partitions:?} past {since:?}"),
            || {
                let mut found = BTreeMap::new();
                for (&p, &since) in partitions.iter().zip(since) {
                    match self.newest(application, p)? {
                        Some(position) if position >= since => found.insert(p, position),
                        other => return Err(format!("partition {p}: newest {other:?}")),
                    };
                }
                Ok::<_, String>(found)
            },
        )
    }
}

/// [`killed_owner_relocates_from_snapshots`] with the snapshots on the S3 server.
pub fn killed_owner_relocates_from_snapshots_on_s3(bootstrap: &str, binary: &Path, backend: &str) {
    killed_owner_relocates_from_snapshots(bootstrap, binary, backend, &SnapshotPlace::S3);
}

/// [`killed_owner_relocates_from_snapshots`] with the snapshots in a directory.
pub fn killed_owner_relocates_from_snapshots_in_a_directory(
    bootstrap: &str,
    binary: &Path,
    backend: &str,
) {
    killed_owner_relocates_from_snapshots(bootstrap, binary, backend, &SnapshotPlace::Directory);
}

/// Two instances snapshot every [`SNAPSHOT_EVERY`] records; once each of b's
/// partitions has a snapshot b took, a few more purchases leave a tail after it and b is
/// killed with SIGKILL while input keeps coming. a restores every partition it takes
/// over from a snapshot — at least as new as the one seen before the kill — and replays
/// only the changelog after it (fewer records than the changelog holds); nothing is
/// served before its restore, and the union of the stores equals the model.
pub fn killed_owner_relocates_from_snapshots(
    bootstrap: &str,
    binary: &Path,
    backend: &str,
    place: &SnapshotPlace,
) {
    let Some(snapshots) = Snapshots::new(place) else {
        return;
    };
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary).with_instance_env(snapshots.env.clone());
    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), "none");
    let mut b = group.start("b", backend, dirs[1].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    let b_owns = owned_by(&owners, "b");
    assert!(
        !b_owns.is_empty() && !owned_by(&owners, "a").is_empty(),
        "{owners:?}"
    );
    // Where b's partitions stood once b served them: a snapshot at or past it is b's.
    let owned_at: Vec<i64> = b_owns
        .iter()
        .map(|&p| group.changelog_high_watermark(p))
        .collect();
    group.produce_waves(WAVES);
    group.wait_for_model(&mut [&mut a, &mut b]);
    let seen = snapshots.wait_for(group.application(), &b_owns, &owned_at);

    // A tail after the snapshots, then the crash, with input still arriving.
    group.produce_purchases(TAIL_PURCHASES);
    group.wait_for_model(&mut [&mut a, &mut b]);
    let ends: BTreeMap<Partition, i64> = b_owns
        .iter()
        .map(|&p| (p, group.changelog_high_watermark(p)))
        .collect();
    let a_seen = a.readies().len();
    b.assert_served_only_after_restore();
    b.kill();
    group.produce_wave();
    let owners = group.wait_for_model(&mut [&mut a]);
    assert_eq!(owned_by(&owners, "a").len(), PARTITIONS as usize);
    a.assert_served_only_after_restore();

    let moved: Vec<_> = readies_since(&a, a_seen)
        .into_iter()
        .filter(|ready| b_owns.contains(&ready.partition))
        .collect();
    // Shown with --nocapture: what each move downloaded the snapshot of and replayed.
    eprintln!("{backend}: snapshots before the kill {seen:?}, moves {moved:?}");
    let mut took_over: Vec<Partition> = moved.iter().map(|r| r.partition).collect();
    took_over.sort_unstable();
    took_over.dedup();
    assert_eq!(took_over, b_owns, "a took over b's partitions: {moved:?}");
    for ready in &moved {
        let p = ready.partition;
        let snapshot = ready
            .snapshot
            .unwrap_or_else(|| panic!("partition {p} did not start from a snapshot: {ready:?}"));
        assert!(
            snapshot >= seen[&p],
            "partition {p} started from a snapshot older than the one uploaded before the \
             kill (at {}): {ready:?}",
            seen[&p]
        );
        assert_eq!(
            ready.from,
            snapshot + 1,
            "the tail follows the snapshot: {ready:?}"
        );
        assert_eq!(ready.restored as i64, ready.end - ready.from, "{ready:?}");
        assert!(
            (ready.restored as i64) < ready.end && ready.end >= ends[&p],
            "a full replay of partition {p}, or not to its end: {ready:?}"
        );
    }
    assert!(
        moved.iter().any(|ready| ready.restored > 0),
        "no moved partition had a tail to replay: {moved:?}"
    );
    a.stop();
}
