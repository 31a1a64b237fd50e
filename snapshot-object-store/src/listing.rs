//! Listing and reading a scope's manifests, shared by `list`, `upload` (which builds on
//! the newest) and `retain` (which keeps the newest and whatever they name).
//!
//! Reading a manifest ends one of three ways, and the callers treat them differently:
//! its bytes are a manifest of this layout ([`Outcome::Readable`]); its bytes are not
//! ([`Outcome::Unreadable`]: garbage, another format, a name this crate did not write,
//! a name disagreeing with the content), which no retry changes; or it could not be
//! fetched ([`Outcome::Unfetched`]: the store failed), which may pass. `list` shows all
//! three; `upload` and `retain` stop on the third, since what they decide depends on
//! every manifest present.

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use state_core::{Error, Result, SnapshotManifest, SnapshotScope};

use crate::ObjectSnapshotStore;
use crate::error::map_error;
use crate::layout::{ManifestKey, ScopeKeys, checksum_hex, direct_child, file_name};

/// One manifest object as found.
#[derive(Debug)]
pub(crate) struct Listed {
    /// Where it is.
    pub(crate) location: Path,
    /// What its name says, when it is a name this crate writes.
    pub(crate) key: Option<ManifestKey>,
    /// What reading it gave.
    pub(crate) outcome: Outcome,
}

/// What reading one manifest gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A manifest of this layout.
    Readable(SnapshotManifest),
    /// Bytes or a name that are no manifest of this layout; rereading will not help.
    Unreadable(Error),
    /// The store failed to serve it.
    Unfetched(Error),
}

impl Listed {
    /// The manifest, if readable.
    pub(crate) fn readable(&self) -> Option<&SnapshotManifest> {
        match &self.outcome {
            Outcome::Readable(manifest) => Some(manifest),
            _ => None,
        }
    }

    /// The manifest or why there is none.
    pub(crate) fn into_result(self) -> Result<SnapshotManifest> {
        match self.outcome {
            Outcome::Readable(manifest) => Ok(manifest),
            Outcome::Unreadable(err) | Outcome::Unfetched(err) => Err(err),
        }
    }
}

impl ObjectSnapshotStore {
    /// Every manifest of `scope`, newest first (names this crate did not write last),
    /// each read. A manifest deleted between listing and reading is left out.
    pub(crate) async fn list_manifests(
        &self,
        scope: &SnapshotScope,
        keys: &ScopeKeys,
    ) -> Result<Vec<Listed>> {
        let dir = keys.manifests();
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|err| {
                map_error(
                    err,
                    format!("listing the snapshots of {scope} at {}", self.url(&dir)),
                )
            })?;
        let mut found: Vec<(Option<ManifestKey>, Path)> = metas
            .into_iter()
            // Only direct children: anything deeper was not written by this crate.
            .filter(|meta| direct_child(&dir, &meta.location))
            .map(|meta| {
                (
                    ManifestKey::parse(&file_name(&meta.location)),
                    meta.location,
                )
            })
            .collect();
        // Newest first; a `None` key sorts below every `Some`, so unknown names go last.
        found.sort_by(|a, b| b.cmp(a));
        let read = futures::stream::iter(found)
            .map(|(key, location)| async move {
                let outcome = self.read_manifest(&location, key.as_ref()).await?;
                Some(Listed {
                    location,
                    key,
                    outcome,
                })
            })
            .buffered(self.config.max_concurrent_transfers)
            .filter_map(|listed| async move { listed })
            .collect()
            .await;
        Ok(read)
    }

    /// Reads the manifest at `location`; `None` when it is gone.
    async fn read_manifest(&self, location: &Path, key: Option<&ManifestKey>) -> Option<Outcome> {
        let url = self.url(location);
        let bytes = match self.store.get(location).await {
            Ok(got) => got.bytes().await,
            Err(err) => Err(err),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return None,
            Err(err) => {
                let err = map_error(err, format!("reading snapshot manifest {url}"));
                return Some(Outcome::Unfetched(err));
            }
        };
        Some(match check(&bytes, &url, key) {
            Ok(manifest) => Outcome::Readable(manifest),
            Err(err) => Outcome::Unreadable(err),
        })
    }
}

/// Parses a manifest and checks it against its name: same position and time, and every
/// checksum a blake3 hex (so it names a file object and nothing else).
fn check(bytes: &[u8], url: &str, key: Option<&ManifestKey>) -> Result<SnapshotManifest> {
    let Some(key) = key else {
        return Err(Error::corruption(format!(
            "{url} is not named like a snapshot manifest (m-<position>-<millis>-<writer>.json)"
        )));
    };
    let manifest = SnapshotManifest::from_json(bytes, url)?;
    if manifest.position != key.position || manifest.created_millis != key.created_millis {
        return Err(Error::corruption(format!(
            "snapshot manifest {url} holds position {} created at {}, but its name says \
             position {} created at {}",
            manifest.position, manifest.created_millis, key.position, key.created_millis
        )));
    }
    for file in &manifest.files {
        checksum_hex(
            &file.checksum,
            &format!("snapshot manifest {url}, file {}", file.path),
        )?;
    }
    Ok(manifest)
}
