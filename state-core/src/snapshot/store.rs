//! Where snapshots are kept: the trait an object store (or anything else) implements.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;

use super::{Checkpoint, SnapshotManifest, SnapshotScope};
use crate::{Offset, Result};

/// Takes, lists, fetches and removes the snapshots of store partitions.
///
/// Files are immutable and shared between snapshots of one scope; a manifest, written
/// last and never overwritten, is what makes a snapshot exist. Two writers of one scope
/// at once (a zombie owner and its successor during a rebalance) must never delete each
/// other's live files nor publish a manifest naming a file that is missing: the
/// implementation says how it guarantees this.
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Where the snapshots live, for messages (`s3://bucket/prefix`); never credentials.
    fn location(&self) -> String;

    /// Uploads `checkpoint` as a snapshot of `scope`: the files the store does not hold
    /// yet, then the manifest. Files of the newest snapshot that the checkpoint shares
    /// (same size and checksum: files are kept by content, whatever their path) are not
    /// sent again.
    async fn upload(&self, scope: &SnapshotScope, checkpoint: &Checkpoint)
    -> Result<UploadSummary>;

    /// The snapshots of `scope`, newest (highest position) first. A manifest that cannot
    /// be read is listed with its error, never skipped.
    async fn list(&self, scope: &SnapshotScope) -> Result<Vec<ListedSnapshot>>;

    /// Downloads every file of `manifest` into the directory `into` (created; it must
    /// not exist), checking each file's size and checksum; a file of `reuse_from` (the
    /// local store directory) with the same path, size and checksum is copied instead of
    /// downloaded. Any missing, truncated or mismatching file fails the whole download
    /// with [`ErrorKind::Corruption`](crate::ErrorKind::Corruption) naming it; what was
    /// written to `into` is then the caller's to remove.
    async fn download(
        &self,
        manifest: &SnapshotManifest,
        into: &Path,
        reuse_from: Option<&Path>,
    ) -> Result<DownloadSummary>;

    /// Removes the snapshots of `scope` beyond the newest `keep`, and then every file no
    /// kept manifest names, without ever removing a file an upload under way may still
    /// name.
    async fn retain(&self, scope: &SnapshotScope, keep: usize) -> Result<RetentionSummary>;
}

/// One snapshot as listed.
#[derive(Debug)]
pub struct ListedSnapshot {
    /// The manifest's name in the store (an object key, a file name).
    pub id: String,
    /// The manifest, or why it could not be read.
    pub manifest: Result<SnapshotManifest>,
}

/// What one upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSummary {
    /// The manifest's name in the store.
    pub id: String,
    /// The changelog offset the snapshot holds.
    pub position: Offset,
    /// Files sent. This and the three counts below count distinct contents: two
    /// checkpoint files with the same bytes are one file, sent or reused once.
    pub files_uploaded: usize,
    /// Bytes sent.
    pub bytes_uploaded: u64,
    /// Files already in the store (named by the newest snapshot), not sent again.
    pub files_reused: usize,
    /// Bytes of those files.
    pub bytes_reused: u64,
    /// Wall time, checksums included.
    pub elapsed: Duration,
}

/// What one download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Files fetched from the store.
    pub files_downloaded: usize,
    /// Bytes fetched.
    pub bytes_downloaded: u64,
    /// Files copied from the local directory instead (same checksum).
    pub files_reused: usize,
    /// Bytes of those files.
    pub bytes_reused: u64,
    /// Wall time, checksums included.
    pub elapsed: Duration,
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    /// Manifests removed.
    pub manifests_removed: usize,
    /// Files removed.
    pub files_removed: usize,
    /// Bytes of those files.
    pub bytes_removed: u64,
    /// Manifests beyond the newest `keep` left in place because an upload that started
    /// before them may still be running.
    pub manifests_deferred: usize,
}
