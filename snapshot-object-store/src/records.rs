//! Retention records: small JSON objects under `retention/` that let passes and uploads
//! of different writers see each other (see the crate's retention notes).
//!
//! - `pending-<millis>-<writer>.json`: the files a pass found unnamed by every manifest
//!   at `millis`. A later pass deletes a file only if a record at least `grace` old
//!   lists it.
//! - `deleting-<millis>-<writer>.json`: the files a pass is about to delete, written
//!   before it looks at their age for the last time and removed when it is done. An
//!   upload naming one of them does not publish.

use std::collections::BTreeSet;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use state_core::{Error, Result};

use crate::ObjectSnapshotStore;
use crate::error::map_error;
use crate::layout::{RecordKey, RecordKind, ScopeKeys, direct_child, file_name};

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordBody {
    /// The pass that wrote it.
    pub(crate) writer: String,
    /// When (the writer's clock), as in its name.
    pub(crate) millis: u64,
    /// File objects, by blake3 hex.
    pub(crate) files: BTreeSet<String>,
}

impl ObjectSnapshotStore {
    /// Every record under `keys`' retention directory, with its location.
    pub(crate) async fn list_records(&self, keys: &ScopeKeys) -> Result<Vec<(RecordKey, Path)>> {
        let dir = keys.retention();
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|err| map_error(err, format!("listing {}", self.url(&dir))))?;
        Ok(metas
            .into_iter()
            .filter(|meta| direct_child(&dir, &meta.location))
            .filter_map(|meta| Some((RecordKey::parse(&file_name(&meta.location))?, meta.location)))
            .collect())
    }

    /// The record at `location`: `Ok(None)` when it is gone, `Err` with kind
    /// `Corruption` when its bytes are no record, another kind when the store failed.
    pub(crate) async fn read_record(&self, location: &Path) -> Result<Option<RecordBody>> {
        let bytes = match self.store.get(location).await {
            Ok(got) => got.bytes().await,
            Err(err) => Err(err),
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(map_error(err, format!("reading {}", self.url(location)))),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|err| {
            Error::corruption(format!(
                "retention record {} is not readable: {err}",
                self.url(location)
            ))
        })
    }

    /// Writes a record of `kind` at `millis` listing `files`; returns its location.
    pub(crate) async fn write_record(
        &self,
        keys: &ScopeKeys,
        kind: RecordKind,
        millis: u64,
        files: BTreeSet<String>,
    ) -> Result<Path> {
        let key = RecordKey {
            kind,
            millis,
            writer: self.writer.clone(),
        };
        let location = keys.record(&key);
        let body = RecordBody {
            writer: self.writer.clone(),
            millis,
            files,
        };
        // Serializing strings and numbers cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.store
            .put(&location, PutPayload::from(bytes))
            .await
            .map_err(|err| map_error(err, format!("writing {}", self.url(&location))))?;
        Ok(location)
    }

    /// Deletes `location`; one that is gone already counts as deleted.
    pub(crate) async fn delete_object(&self, location: &Path) -> Result<()> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(map_error(err, format!("deleting {}", self.url(location)))),
        }
    }
}
