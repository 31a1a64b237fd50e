//! [`ObjectSnapshotStore`]: the [`SnapshotStore`] on an object store; its operations
//! live in their own modules (`upload`, `download`, `retention`, `listing`).

use std::fmt;
use std::path::Path as LocalPath;
use std::sync::Arc;

use async_trait::async_trait;
use object_store::ObjectStore;
use object_store::path::Path;
use state_core::runtime::require_tokio;
use state_core::snapshot::{DownloadSummary, ListedSnapshot, RetentionSummary, UploadSummary};
use state_core::{Checkpoint, Error, Result, SnapshotManifest, SnapshotScope, SnapshotStore};
use tokio::sync::Semaphore;

use crate::config::SnapshotStoreConfig;
use crate::layout::ScopeKeys;
use crate::throttle::Throttle;

/// Snapshots of store partitions in an object store (S3, GCS, Azure, a local
/// directory), under one prefix. See the crate documentation for the layout and for
/// why two writers of one scope cannot break each other's snapshots.
pub struct ObjectSnapshotStore {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// How the store's root is shown (`s3://bucket`); never credentials.
    base: String,
    pub(crate) prefix: Path,
    pub(crate) config: SnapshotStoreConfig,
    /// This store's writer id: the configured writer and a random part.
    pub(crate) writer: String,
    /// One permit per request in flight.
    pub(crate) transfers: Arc<Semaphore>,
    pub(crate) throttle: Arc<Throttle>,
}

impl ObjectSnapshotStore {
    /// Snapshots in `store` under `prefix` (`/`-separated; empty for the root).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        config: SnapshotStoreConfig,
    ) -> Result<Self> {
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|err| Error::invalid_input(format!("snapshot prefix {prefix:?}: {err}")))?;
        let base = store.to_string();
        Self::with_base(store, base, prefix, config)
    }

    pub(crate) fn with_base(
        store: Arc<dyn ObjectStore>,
        base: String,
        prefix: Path,
        config: SnapshotStoreConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            store,
            base,
            prefix,
            writer: config.writer_id(),
            transfers: Arc::new(Semaphore::new(config.max_concurrent_transfers)),
            throttle: Arc::new(Throttle::new(config.max_bytes_per_second)),
            config,
        })
    }

    /// This store's writer id, as manifests and retention records name it: the
    /// configured writer and a random part.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The configuration.
    pub fn config(&self) -> &SnapshotStoreConfig {
        &self.config
    }

    /// `object` as a URL for messages (`s3://bucket/prefix/...`).
    pub(crate) fn url(&self, object: &Path) -> String {
        format!("{}/{object}", self.base)
    }

    /// The objects of `scope`, after checking its names.
    pub(crate) fn keys(&self, scope: &SnapshotScope) -> Result<ScopeKeys> {
        ScopeKeys::new(&self.prefix, scope)
    }
}

impl fmt::Debug for ObjectSnapshotStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the object store itself: its Debug may show credentials.
        f.debug_struct("ObjectSnapshotStore")
            .field("location", &self.location())
            .field("writer", &self.writer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SnapshotStore for ObjectSnapshotStore {
    fn location(&self) -> String {
        if self.prefix.as_ref().is_empty() {
            self.base.clone()
        } else {
            self.url(&self.prefix)
        }
    }

    async fn upload(
        &self,
        scope: &SnapshotScope,
        checkpoint: &Checkpoint,
    ) -> Result<UploadSummary> {
        require_tokio(&format!("uploading a snapshot to {}", self.location()))?;
        self.upload_checkpoint(scope, checkpoint).await
    }

    async fn list(&self, scope: &SnapshotScope) -> Result<Vec<ListedSnapshot>> {
        require_tokio(&format!("listing the snapshots in {}", self.location()))?;
        let keys = self.keys(scope)?;
        let listed = self.list_manifests(scope, &keys).await?;
        Ok(listed
            .into_iter()
            .map(|listed| ListedSnapshot {
                id: listed.location.to_string(),
                manifest: listed.into_result(),
            })
            .collect())
    }

    async fn download(
        &self,
        manifest: &SnapshotManifest,
        into: &LocalPath,
        reuse_from: Option<&LocalPath>,
    ) -> Result<DownloadSummary> {
        require_tokio(&format!("downloading a snapshot from {}", self.location()))?;
        self.download_manifest(manifest, into, reuse_from).await
    }

    async fn retain(&self, scope: &SnapshotScope, keep: usize) -> Result<RetentionSummary> {
        require_tokio(&format!("removing old snapshots from {}", self.location()))?;
        self.retention_pass(scope, keep).await
    }
}
