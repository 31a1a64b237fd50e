//! Uploads checkpoints in the background, so a snapshot holds the commit path only for
//! the part of the local checkpoint that must hold the store: a checkpoint begun there
//! ([`PendingCheckpoint`]) has its files written here, on a thread of its own, before the
//! upload.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::sync::Notify;

use super::{Checkpoint, PendingCheckpoint, SnapshotScope, SnapshotStore, UploadSummary};
use crate::{Error, Result};

/// How many snapshots upload at once, and how many are kept per store partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploaderConfig {
    /// Snapshots uploading at the same time (at least one). Each upload bounds its own
    /// transfers; this bounds how many run side by side.
    pub max_concurrent_uploads: usize,
    /// Snapshots kept per store partition: after each upload, older ones are removed
    /// ([`SnapshotStore::retain`]); zero keeps every snapshot.
    pub keep: usize,
}

impl Default for UploaderConfig {
    /// Two uploads at once, keeping three snapshots.
    fn default() -> Self {
        Self {
            max_concurrent_uploads: 2,
            keep: 3,
        }
    }
}

/// How the last upload of one store partition ended.
#[derive(Debug, Clone)]
pub enum UploadOutcome {
    /// Uploaded (and retention ran, see the log for its result).
    Uploaded(UploadSummary),
    /// Failed; the checkpoint was discarded and the next one is tried afresh.
    Failed(String),
}

/// Uploads checkpoints to a [`SnapshotStore`] in the background.
///
/// [`submit`](Self::submit) never waits: it queues a checkpoint (replacing a queued,
/// not yet started one of the same store partition, so the queue holds at most one per
/// store partition and a slow store skips snapshots instead of falling behind). The
/// uploads run in [`run`](Self::run), a future the application spawns on its runtime
/// (statestore starts none of its own); a begun checkpoint's files are written on a
/// short-lived thread of its own first, so no executor thread blocks on file I/O. Each
/// checkpoint directory is removed once its upload ends, whatever the outcome.
///
/// A memory store's begun checkpoint holds its encoded dump in memory until written, so
/// while snapshots of it are queued or uploading the process holds up to one extra copy
/// of that store per queued or uploading snapshot
/// ([`max_concurrent_uploads`](UploaderConfig::max_concurrent_uploads) plus one).
#[derive(Clone)]
pub struct SnapshotUploader {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn SnapshotStore>,
    config: UploaderConfig,
    queue: Mutex<Queue>,
    wake: Notify,
    idle: Notify,
    running: AtomicBool,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(SnapshotScope, PendingCheckpoint)>,
    uploading: usize,
    closed: bool,
    outcomes: BTreeMap<SnapshotScope, UploadOutcome>,
}

impl SnapshotUploader {
    /// An uploader to `store`; nothing uploads until [`run`](Self::run) is polled.
    pub fn new(store: Arc<dyn SnapshotStore>, config: UploaderConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                config,
                queue: Mutex::default(),
                wake: Notify::new(),
                idle: Notify::new(),
                running: AtomicBool::new(false),
            }),
        }
    }

    /// Where the snapshots go.
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.inner.store
    }

    /// Queues `checkpoint` of `scope` (a [`Checkpoint`] or a begun
    /// [`PendingCheckpoint`]) for upload. Returns `false` when the uploader is closed (the
    /// checkpoint directory is then removed). A queued checkpoint of the same scope that
    /// has not started is replaced, and its directory removed.
    pub fn submit(&self, scope: SnapshotScope, checkpoint: impl Into<PendingCheckpoint>) -> bool {
        let checkpoint = checkpoint.into();
        let replaced = {
            let mut queue = self.inner.lock();
            if queue.closed {
                drop(queue);
                // Dropped unfinished or unsent, its directory goes.
                discard(checkpoint);
                return false;
            }
            let replaced = queue
                .waiting
                .iter()
                .position(|(queued, _)| *queued == scope)
                .and_then(|at| queue.waiting.remove(at));
            queue.waiting.push_back((scope, checkpoint));
            replaced
        };
        if let Some((scope, older)) = replaced {
            log::info!(
                "snapshot of {scope} at {} replaced by a newer one before its upload started",
                older.dir().display()
            );
            discard(older);
        }
        self.inner.wake.notify_one();
        true
    }

    /// How the last upload of `scope` ended, if one did.
    pub fn last_outcome(&self, scope: &SnapshotScope) -> Option<UploadOutcome> {
        self.inner.lock().outcomes.get(scope).cloned()
    }

    /// Waits until every checkpoint submitted so far is uploaded (or failed). An error
    /// when [`run`](Self::run) is not being polled, since nothing would ever upload.
    pub async fn flush(&self) -> Result<()> {
        loop {
            let idle = self.inner.idle.notified();
            {
                let queue = self.inner.lock();
                if queue.waiting.is_empty() && queue.uploading == 0 {
                    return Ok(());
                }
            }
            if !self.inner.running.load(Ordering::SeqCst) {
                return Err(Error::invalid_input(format!(
                    "snapshots to {} are queued but the uploader is not running: spawn SnapshotUploader::run on the application's runtime",
                    self.inner.store.location()
                )));
            }
            idle.await;
        }
    }

    /// Refuses new checkpoints; [`run`](Self::run) returns once the queued ones are
    /// uploaded.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.wake.notify_one();
    }

    /// Uploads queued checkpoints, up to
    /// [`max_concurrent_uploads`](UploaderConfig::max_concurrent_uploads) at once, until
    /// [`close`](Self::close)d and drained. Spawn it on the application's runtime.
    pub fn run(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            inner.running.store(true, Ordering::SeqCst);
            let jobs = futures::stream::unfold(inner.clone(), |inner| async move {
                let job = inner.next_job().await?;
                Some((job, inner))
            });
            let limit = inner.config.max_concurrent_uploads.max(1);
            jobs.for_each_concurrent(limit, |(scope, checkpoint)| {
                let inner = inner.clone();
                async move { inner.upload(scope, checkpoint).await }
            })
            .await;
            inner.running.store(false, Ordering::SeqCst);
            inner.idle.notify_waiters();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves only plain counters behind.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next checkpoint to upload, counted as uploading; `None` once closed and empty.
    async fn next_job(&self) -> Option<(SnapshotScope, PendingCheckpoint)> {
        loop {
            let wake = self.wake.notified();
            {
                let mut queue = self.lock();
                if let Some(job) = queue.waiting.pop_front() {
                    queue.uploading += 1;
                    return Some(job);
                }
                if queue.closed {
                    return None;
                }
            }
            wake.await;
        }
    }

    async fn upload(&self, scope: SnapshotScope, pending: PendingCheckpoint) {
        let dir = pending.dir().to_path_buf();
        let outcome = match finish(pending).await {
            Ok(checkpoint) => {
                let outcome = self.send(&scope, &checkpoint).await;
                remove_checkpoint(&checkpoint.dir);
                outcome
            }
            Err(err) => {
                // A backend removes what it wrote when it fails; this is for one that
                // could not.
                remove_checkpoint(&dir);
                log::warn!(
                    "snapshot of {scope}: writing checkpoint {} failed: {err}",
                    dir.display()
                );
                UploadOutcome::Failed(err.to_string())
            }
        };
        let mut queue = self.lock();
        queue.outcomes.insert(scope, outcome);
        queue.uploading -= 1;
        if queue.waiting.is_empty() && queue.uploading == 0 {
            self.idle.notify_waiters();
        }
    }

    /// Uploads `checkpoint` and applies retention.
    async fn send(&self, scope: &SnapshotScope, checkpoint: &Checkpoint) -> UploadOutcome {
        match self.store.upload(scope, checkpoint).await {
            Ok(summary) => {
                log::info!(
                    "snapshot {} of {scope} at offset {} uploaded to {}: {} files ({} bytes) sent, {} files ({} bytes) already there, in {:?}",
                    summary.id,
                    summary.position,
                    self.store.location(),
                    summary.files_uploaded,
                    summary.bytes_uploaded,
                    summary.files_reused,
                    summary.bytes_reused,
                    summary.elapsed
                );
                if self.config.keep > 0 {
                    match self.store.retain(scope, self.config.keep).await {
                        Ok(retained) => log::debug!("retention of {scope}: {retained:?}"),
                        Err(err) => log::warn!("retention of {scope} failed: {err}"),
                    }
                }
                UploadOutcome::Uploaded(summary)
            }
            Err(err) => {
                log::warn!(
                    "snapshot of {scope} to {} failed: {err}",
                    self.store.location()
                );
                UploadOutcome::Failed(err.to_string())
            }
        }
    }
}

/// The checkpoint `pending` becomes once its files are written: at once when they are,
/// otherwise on a thread of its own (writing and syncing files blocks, and the uploader
/// runs on the application's executor).
async fn finish(pending: PendingCheckpoint) -> Result<Checkpoint> {
    if !pending.is_deferred() {
        return pending.finish();
    }
    let (sender, receiver) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("statestore-checkpoint".to_owned())
        .spawn(move || {
            // The receiver waits for this; if it went away, the result has no reader.
            let _ = sender.send(pending.finish());
        })
        .map_err(|err| Error::from(err).context("starting a thread to write a checkpoint"))?;
    receiver.await.unwrap_or_else(|_| {
        Err(Error::internal(
            "the thread writing a checkpoint ended without a result",
        ))
    })
}

/// Throws away a checkpoint that will not be uploaded (dropping it removes its
/// directory).
fn discard(checkpoint: PendingCheckpoint) {
    drop(checkpoint);
}

fn remove_checkpoint(dir: &std::path::Path) {
    if let Err(err) = std::fs::remove_dir_all(dir)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("could not remove checkpoint {}: {err}", dir.display());
    }
}

#[cfg(test)]
#[path = "uploader_tests.rs"]
mod tests;
