//! `statestore demo --snapshots URL`: instance A snapshots each partition into URL every
//! few commits, as an application with a snapshot policy does; instance B relocates
//! from the newest snapshots plus the changelog after them. Beside it, the same changelog
//! is replayed in full into another new directory with the same backend, and the two
//! relocations' figures are printed side by side; their contents must be equal.
//!
//! The full replay goes through the restore path alone (no logged store): a logged
//! store with exactly-once would start a transactional producer of the same id as B's
//! and fence it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use state_core::{
    Changelog, Error, IsolationLevel, KeyValueStore, RestoreOptions, RestoreSummary, Result,
    SnapshotScope, SnapshotStore, catch_up, changelog_topic_name, open_or_rebuild,
};

use crate::backend::Backend;
use crate::progress::BarListener;

/// Instance A snapshots a partition after every this many of its commits.
pub const EVERY_COMMITS: u64 = 5;

/// Instance A's snapshots: where they go and what uploading them cost.
pub struct Snapshotter {
    store: Arc<dyn SnapshotStore>,
    application: String,
    store_name: String,
    /// Beside A's stores: a RocksDB checkpoint hard-links its files, which needs the
    /// same filesystem.
    scratch: PathBuf,
    commits: Vec<u64>,
    taken: u64,
    files_uploaded: usize,
    bytes_uploaded: u64,
    files_reused: usize,
    elapsed: Duration,
}

impl Snapshotter {
    /// Opens the snapshot store at `url` and lists it once, so a bad URL or an
    /// unreachable server fails before any work, naming the store.
    pub async fn open(
        url: &str,
        application: &str,
        store_name: &str,
        scratch: PathBuf,
        partitions: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let store = crate::snapshots::open_with_timeout(url, timeout)?;
        store
            .list(&SnapshotScope::new(application, store_name, 0))
            .await
            .map_err(|err| {
                err.context(format!("reaching the snapshot store {}", store.location()))
            })?;
        Ok(Self {
            store,
            application: application.to_owned(),
            store_name: store_name.to_owned(),
            scratch,
            commits: vec![0; partitions],
            taken: 0,
            files_uploaded: 0,
            bytes_uploaded: 0,
            files_reused: 0,
            elapsed: Duration::ZERO,
        })
    }

    /// The snapshot store, for instance B to restore from.
    pub fn store(&self) -> Arc<dyn SnapshotStore> {
        self.store.clone()
    }

    /// After a commit of `partition`: every [`EVERY_COMMITS`]th one, checkpoints its
    /// committed `store` and uploads it (only the files the store lacks).
    pub async fn after_commit(
        &mut self,
        partition: usize,
        store: &Arc<dyn KeyValueStore>,
    ) -> Result<()> {
        self.commits[partition] += 1;
        if !self.commits[partition].is_multiple_of(EVERY_COMMITS) {
            return Ok(());
        }
        let started = Instant::now();
        std::fs::create_dir_all(&self.scratch)?;
        let scratch = tempfile::Builder::new()
            .prefix(".checkpoint-")
            .tempdir_in(&self.scratch)
            .map_err(|err| {
                Error::from(err).context(format!(
                    "creating a checkpoint directory in {}",
                    self.scratch.display()
                ))
            })?;
        let checkpoint = store.checkpoint(&scratch.path().join("checkpoint"))?;
        let partition = i32::try_from(partition)
            .map_err(|_| Error::invalid_input(format!("partition {partition}")))?;
        let scope = SnapshotScope::new(&self.application, &self.store_name, partition);
        let upload = self
            .store
            .upload(&scope, &checkpoint)
            .await
            .map_err(|err| {
                err.context(format!("uploading a snapshot to {}", self.store.location()))
            })?;
        self.store.retain(&scope, 2).await?;
        self.taken += 1;
        self.files_uploaded += upload.files_uploaded;
        self.bytes_uploaded += upload.bytes_uploaded;
        self.files_reused += upload.files_reused;
        self.elapsed += started.elapsed();
        Ok(())
    }

    /// One line on what A's snapshots cost.
    pub fn describe(&self) -> String {
        format!(
            "instance A took {} snapshots (each partition every {EVERY_COMMITS} commits) into {}: \
             {} files ({} bytes) uploaded, {} files already there, {:.2?} checkpointing and uploading",
            self.taken,
            self.store.location(),
            self.files_uploaded,
            self.bytes_uploaded,
            self.files_reused,
            self.elapsed
        )
    }
}

/// One relocation's figures over all partitions: from snapshots, or a full replay.
#[derive(Debug, Default)]
pub struct Relocation {
    /// Partitions that started from a snapshot.
    pub from_snapshots: usize,
    /// Changelog records replayed.
    pub replayed: u64,
    /// Snapshot bytes downloaded.
    pub bytes_downloaded: u64,
    /// Snapshot files downloaded.
    pub files_downloaded: usize,
    /// Snapshot files reused from a local directory.
    pub files_reused: usize,
    /// Downloading, summed over partitions.
    pub download: Duration,
    /// Opening the downloaded files, summed over partitions.
    pub open: Duration,
    /// Replaying the changelog, summed over partitions.
    pub replay: Duration,
    /// Each partition's whole restore, summed.
    pub total: Duration,
    /// The longest partition's restore.
    pub longest: Duration,
}

impl Relocation {
    /// Adds one partition's restore.
    pub fn add(&mut self, summary: &RestoreSummary) {
        self.replayed += summary.restored;
        let mut before_replay = Duration::ZERO;
        if let Some(snapshot) = &summary.snapshot {
            self.from_snapshots += 1;
            self.bytes_downloaded += snapshot.download.bytes_downloaded;
            self.files_downloaded += snapshot.download.files_downloaded;
            self.files_reused += snapshot.download.files_reused;
            self.download += snapshot.download.elapsed;
            self.open += snapshot.open;
            before_replay = snapshot.download.elapsed + snapshot.open;
        }
        self.replay += summary.elapsed.saturating_sub(before_replay);
        self.total += summary.elapsed;
        self.longest = self.longest.max(summary.elapsed);
    }
}

/// Replays every partition of the changelog in full into new stores of `backend` under
/// `dir`, all partitions at once as B restores them; returns the figures and each
/// partition's contents.
pub async fn full_replay(
    changelog: &Arc<dyn Changelog>,
    application: &str,
    store_name: &str,
    backend: Backend,
    partitions: i32,
    dir: &Path,
) -> Result<(Relocation, Vec<Contents>)> {
    let topic = changelog_topic_name(application, store_name);
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadCommitted)
        .await?;
    let supplier = backend.supplier(store_name);
    let listener = Arc::new(BarListener::new());
    let mut tasks = Vec::new();
    for partition in 0..partitions {
        let (reader, supplier, listener) = (reader.clone(), supplier.clone(), listener.clone());
        let dir = dir.join(partition.to_string());
        tasks.push(tokio::spawn(async move {
            let opened = open_or_rebuild(supplier.as_ref(), &dir)?;
            let options = RestoreOptions::default();
            let (store, summary) = catch_up(
                opened,
                None,
                reader.as_ref(),
                partition,
                &options,
                listener.as_ref(),
            )
            .await?;
            let contents = contents(store.as_ref())?;
            store.close()?;
            Ok::<_, Error>((summary, contents))
        }));
    }
    let mut relocation = Relocation::default();
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (summary, contents) = task
            .await
            .map_err(|err| Error::internal(format!("a full replay task failed: {err}")))??;
        relocation.add(&summary);
        all.push(contents);
    }
    listener.finish();
    Ok((relocation, all))
}

/// A store's entries, as bytes.
pub type Contents = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every entry of `store`.
pub fn contents(store: &dyn KeyValueStore) -> Result<Contents> {
    store.all()?.collect()
}

/// The two relocations side by side.
pub fn print_comparison(snapshots: &Relocation, replay: &Relocation, equal: bool) {
    let secs = |d: Duration| format!("{:.3} s", d.as_secs_f64());
    let rows: [(&str, String, String); 9] = [
        (
            "partitions from a snapshot",
            snapshots.from_snapshots.to_string(),
            "-".to_owned(),
        ),
        (
            "changelog records replayed",
            snapshots.replayed.to_string(),
            replay.replayed.to_string(),
        ),
        (
            "bytes downloaded",
            snapshots.bytes_downloaded.to_string(),
            replay.bytes_downloaded.to_string(),
        ),
        (
            "files downloaded / reused",
            format!(
                "{} / {}",
                snapshots.files_downloaded, snapshots.files_reused
            ),
            "-".to_owned(),
        ),
        ("download time", secs(snapshots.download), "-".to_owned()),
        ("open time", secs(snapshots.open), "-".to_owned()),
        ("replay time", secs(snapshots.replay), secs(replay.replay)),
        ("restore time", secs(snapshots.total), secs(replay.total)),
        (
            "longest partition",
            secs(snapshots.longest),
            secs(replay.longest),
        ),
    ];
    println!();
    println!(
        "  relocation (times summed over partitions)  {:>16}  {:>16}",
        "from snapshots", "full replay"
    );
    for (label, left, right) in rows {
        println!("  {label:<42} {left:>16}  {right:>16}");
    }
    println!(
        "  {:<42} {:>16}",
        "contents equal",
        if equal { "yes" } else { "NO" }
    );
}
