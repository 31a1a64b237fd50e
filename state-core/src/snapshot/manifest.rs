//! The manifest: what a snapshot is, written last so a snapshot without one does not
//! exist.

use serde::{Deserialize, Serialize};

use super::Checkpoint;
use crate::{Error, Offset, Partition, Result};

/// Version of the manifest's own layout; a reader refuses any other.
pub const MANIFEST_FORMAT: u32 = 1;

/// Whose snapshots: one store partition of one application.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotScope {
    /// The application id.
    pub application: String,
    /// The store name.
    pub store: String,
    /// The partition.
    pub partition: Partition,
}

impl SnapshotScope {
    /// The scope of `store`'s `partition` in `application`.
    pub fn new(
        application: impl Into<String>,
        store: impl Into<String>,
        partition: Partition,
    ) -> Self {
        Self {
            application: application.into(),
            store: store.into(),
            partition,
        }
    }
}

impl std::fmt::Display for SnapshotScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "application {} store {} partition {}",
            self.application, self.store, self.partition
        )
    }
}

/// One file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Its path in the store directory, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// `blake3:<hex>` of its bytes; also its name in the snapshot store, so a file two
    /// snapshots share is kept once.
    pub checksum: String,
}

/// What a snapshot is: whose, which backend wrote it, at which changelog position, and
/// every file with its size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// [`MANIFEST_FORMAT`] when written.
    pub format: u32,
    /// The application id.
    pub application: String,
    /// The store name.
    pub store: String,
    /// The partition.
    pub partition: Partition,
    /// The backend that wrote the files.
    pub backend: String,
    /// The backend's format version of the files.
    pub backend_format: u32,
    /// The last changelog offset the snapshot holds; the tail starts after it.
    pub position: Offset,
    /// Who wrote it (an instance and a random part), so two writers never name a
    /// manifest alike.
    pub writer: String,
    /// When it was written, in milliseconds since the Unix epoch (the writer's clock;
    /// for people, not for ordering).
    pub created_millis: u64,
    /// Every file.
    pub files: Vec<SnapshotFile>,
}

impl SnapshotManifest {
    /// The manifest of `checkpoint` of `scope`'s store, with each file's checksum in
    /// `checksums` (same order as the checkpoint's files).
    pub fn of(
        scope: &SnapshotScope,
        checkpoint: &Checkpoint,
        checksums: Vec<String>,
        writer: impl Into<String>,
        created_millis: u64,
    ) -> Result<Self> {
        if checksums.len() != checkpoint.files.len() {
            return Err(Error::internal(format!(
                "{} checksums for {} checkpoint files",
                checksums.len(),
                checkpoint.files.len()
            )));
        }
        Ok(Self {
            format: MANIFEST_FORMAT,
            application: scope.application.clone(),
            store: scope.store.clone(),
            partition: scope.partition,
            backend: checkpoint.backend.clone(),
            backend_format: checkpoint.backend_format,
            position: checkpoint.applied(scope.partition)?,
            writer: writer.into(),
            created_millis,
            files: checkpoint
                .files
                .iter()
                .zip(checksums)
                .map(|(file, checksum)| SnapshotFile {
                    path: file.path.clone(),
                    size: file.size,
                    checksum,
                })
                .collect(),
        })
    }

    /// The manifest as stored: JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads a manifest stored at `origin` (named in errors): `Corruption` when the bytes
    /// are not a manifest, `InvalidInput` for another manifest format.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(|err| {
            Error::corruption(format!("snapshot manifest {origin} is not readable: {err}"))
        })?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(Error::invalid_input(format!(
                "snapshot manifest {origin} has format {}; this statestore reads format {MANIFEST_FORMAT}",
                manifest.format
            )));
        }
        for file in &manifest.files {
            check_relative(&file.path, origin)?;
        }
        Ok(manifest)
    }

    /// The scope it belongs to.
    pub fn scope(&self) -> SnapshotScope {
        SnapshotScope::new(&self.application, &self.store, self.partition)
    }

    /// Refuses, as [`Foreign`](crate::ErrorKind::Foreign), a manifest of another
    /// application, store, partition or backend format than `scope` and `backend` /
    /// `backend_format`: such files are never opened.
    pub fn check_belongs(
        &self,
        scope: &SnapshotScope,
        backend: &str,
        backend_format: u32,
    ) -> Result<()> {
        if self.scope() != *scope {
            return Err(Error::foreign(format!(
                "snapshot at position {} written by {} belongs to {}, not {scope}",
                self.position,
                self.writer,
                self.scope()
            )));
        }
        if self.backend != backend || self.backend_format != backend_format {
            return Err(Error::foreign(format!(
                "snapshot at position {} of {scope} holds {} files (format {}), not {backend} (format {backend_format})",
                self.position, self.backend, self.backend_format
            )));
        }
        Ok(())
    }

    /// The bytes of every file together.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A file path from a manifest must stay inside the directory it is restored into.
fn check_relative(path: &str, origin: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::corruption(format!(
            "snapshot manifest {origin} names a file outside its store directory: {path:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckpointFile, Position};

    fn manifest() -> SnapshotManifest {
        let checkpoint = Checkpoint {
            dir: "/tmp/x".into(),
            backend: "redb".into(),
            backend_format: 1,
            position: Position::of(3, 41),
            files: vec![CheckpointFile {
                path: "store.redb".into(),
                size: 10,
            }],
        };
        let scope = SnapshotScope::new("shop", "rewards", 3);
        SnapshotManifest::of(&scope, &checkpoint, vec!["blake3:00".into()], "w", 7).unwrap()
    }

    #[test]
    fn a_manifest_reads_back_what_was_written() {
        let written = manifest();
        let read = SnapshotManifest::from_json(&written.to_json(), "m").unwrap();
        assert_eq!(read, written);
        assert_eq!(read.position, 41);
    }

    #[test]
    fn garbage_is_corruption_naming_the_object() {
        let err = SnapshotManifest::from_json(b"{\"format\":", "s3://b/m.json").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corruption);
        assert!(err.to_string().contains("s3://b/m.json"), "{err}");
    }

    #[test]
    fn paths_that_leave_the_store_directory_are_refused() {
        for path in ["../x", "/etc/passwd", "a//b", "a/./b", ""] {
            let mut m = manifest();
            m.files[0].path = path.into();
            let err = SnapshotManifest::from_json(&m.to_json(), "m").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Corruption, "{path}");
        }
    }

    #[test]
    fn a_manifest_of_another_store_or_backend_is_foreign() {
        let m = manifest();
        let ours = SnapshotScope::new("shop", "rewards", 3);
        m.check_belongs(&ours, "redb", 1).unwrap();
        for (scope, backend) in [
            (SnapshotScope::new("shop", "rewards", 4), "redb"),
            (SnapshotScope::new("shop", "visits", 3), "redb"),
            (SnapshotScope::new("bank", "rewards", 3), "redb"),
            (ours.clone(), "rocksdb"),
        ] {
            let err = m.check_belongs(&scope, backend, 1).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Foreign, "{err}");
        }
        assert_eq!(
            m.check_belongs(&ours, "redb", 2).unwrap_err().kind(),
            crate::ErrorKind::Foreign
        );
    }
}
