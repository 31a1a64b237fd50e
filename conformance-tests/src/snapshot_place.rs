//! Where the snapshots of one test live: a fresh local directory or a fresh prefix of
//! the real S3 server's bucket, reached through the `object_store` API in both cases, so
//! a test can damage or inspect the objects the same way on either, and a child process
//! can be told (by [`Place::spec`]) to open the very same objects.

use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;

use snapshot_object_store::object_store::aws::AmazonS3Builder;
use snapshot_object_store::object_store::local::LocalFileSystem;
use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{ObjectMeta, ObjectStore};
use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig};
use state_core::{Error, Result, SnapshotScope};
use tempfile::TempDir;

use crate::harness::block_on;

/// Where the snapshots of one test live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// A local directory (`object_store`'s `LocalFileSystem`).
    Directory,
    /// The S3 server of `scripts/s3.sh`; with `CI=true` a missing server fails the test.
    S3,
}

/// The objects of one test's snapshot store, and how to open a snapshot store on them.
pub struct Place {
    objects: Arc<dyn ObjectStore>,
    prefix: String,
    spec: String,
    _dir: Option<TempDir>,
}

impl Place {
    /// A fresh place named after `test`; `None` when the S3 server is absent outside CI
    /// (the lookup says it skipped).
    pub fn new(place: Where, test: &str) -> Option<Self> {
        match place {
            Where::Directory => {
                let dir = tempfile::Builder::new()
                    .prefix("statestore-snapshots-")
                    .tempdir()
                    .unwrap_or_else(|err| panic!("temp dir: {err}"));
                let spec = format!("dir:{}", dir.path().join("objects").display());
                let (objects, prefix) = open_spec(&spec).unwrap_or_else(|err| panic!("{err}"));
                Some(Self {
                    objects,
                    prefix,
                    spec,
                    _dir: Some(dir),
                })
            }
            Where::S3 => {
                let s3 = test_support::s3()?;
                let prefix = test_support::unique_name(&format!("conformance-{test}"));
                let spec = format!("s3:{}/{prefix}", s3.bucket);
                let (objects, prefix) = open_spec(&spec).unwrap_or_else(|err| panic!("{err}"));
                Some(Self {
                    objects,
                    prefix,
                    spec,
                    _dir: None,
                })
            }
        }
    }

    /// `dir:PATH` or `s3:BUCKET/PREFIX`: what [`open_spec`] opens again, in another
    /// process.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The raw objects, for damage and inspection.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// A snapshot store on these objects.
    pub fn snapshot_store(&self, config: SnapshotStoreConfig) -> ObjectSnapshotStore {
        ObjectSnapshotStore::new(self.objects.clone(), &self.prefix, config)
            .unwrap_or_else(|err| panic!("opening snapshots at {}: {err}", self.spec))
    }

    /// The object holding the file of blake3 `checksum` (`blake3:<hex>`) of `scope`, as
    /// the crate's layout names it (`<prefix>/<app>/<store>/<partition>/files/<hex>`).
    pub fn file_object(&self, scope: &SnapshotScope, checksum: &str) -> Path {
        self.scope_dir(scope)
            .join("files")
            .join(checksum.trim_start_matches("blake3:"))
    }

    /// The objects under `kind` (`files`, `manifests`, `retention`) of `scope`, sorted
    /// by name (manifest names sort by position, then time).
    pub fn listed(&self, scope: &SnapshotScope, kind: &str) -> Vec<ObjectMeta> {
        use futures::TryStreamExt;
        let dir = self.scope_dir(scope).join(kind);
        let mut found: Vec<ObjectMeta> = block_on(self.objects.list(Some(&dir)).try_collect())
            .unwrap_or_else(|err| panic!("listing {dir}: {err}"));
        found.sort_by(|a, b| a.location.cmp(&b.location));
        found
    }

    fn scope_dir(&self, scope: &SnapshotScope) -> Path {
        let mut parts: Vec<String> = self
            .prefix
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        parts.extend([
            scope.application.clone(),
            scope.store.clone(),
            scope.partition.to_string(),
        ]);
        Path::from_iter(parts)
    }
}

/// Opens the objects `spec` names (`dir:PATH`, created; `s3:BUCKET/PREFIX` on the server
/// `test_support::S3::from_env` describes) and the prefix snapshots go under.
pub fn open_spec(spec: &str) -> Result<(Arc<dyn ObjectStore>, String)> {
    if let Some(dir) = spec.strip_prefix("dir:") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|err| Error::from(err).context(format!("creating {}", dir.display())))?;
        let local = LocalFileSystem::new_with_prefix(LocalPath::new(&dir))
            .map_err(|err| Error::invalid_input(format!("opening {}: {err}", dir.display())))?;
        return Ok((Arc::new(local), String::new()));
    }
    if let Some(rest) = spec.strip_prefix("s3:") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let s3 = test_support::S3::from_env();
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(s3.endpoint.clone())
            .with_allow_http(s3.allow_http)
            .with_region(s3.region.clone())
            .with_access_key_id(s3.access_key_id.clone())
            .with_secret_access_key(s3.secret_access_key.clone())
            .build()
            .map_err(|err| Error::invalid_input(format!("configuring S3 {bucket}: {err}")))?;
        return Ok((Arc::new(store), prefix.to_owned()));
    }
    Err(Error::invalid_input(format!(
        "unknown snapshot place {spec:?}: dir:PATH or s3:BUCKET/PREFIX"
    )))
}
