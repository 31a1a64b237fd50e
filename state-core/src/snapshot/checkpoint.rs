//! A store's consistent local copy of itself, ready to upload.

use std::path::{Path, PathBuf};

use crate::{Error, Offset, Partition, Position, Result};

/// One file of a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    /// The path relative to the checkpoint directory, `/`-separated: the name the file
    /// gets in the store directory it is restored into.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A consistent copy of one store's committed data and the changelog position committed
/// with it, as files in a local directory, from
/// [`KeyValueStore::checkpoint`](crate::KeyValueStore::checkpoint).
///
/// Opening the directory with the backend's
/// [`open_checkpoint`](crate::KeyValueBytesStoreSupplier::open_checkpoint) gives a store
/// holding exactly that data at exactly that position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The directory holding the files.
    pub dir: PathBuf,
    /// The backend that wrote it ([`Capability::backend`](crate::Capability::backend)).
    pub backend: String,
    /// The backend's format version of these files: a store of another format is not
    /// opened from them.
    pub backend_format: u32,
    /// The changelog position the data is at.
    pub position: Position,
    /// Every file, in the order written.
    pub files: Vec<CheckpointFile>,
}

impl Checkpoint {
    /// Lists every regular file under `dir` (recursively) as checkpoint files, in path
    /// order, for backends whose checkpoint is "whatever the directory holds".
    pub fn list_files(dir: &Path) -> Result<Vec<CheckpointFile>> {
        let mut files = Vec::new();
        collect(dir, dir, &mut files)?;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The last changelog offset applied on `partition`; an error naming the checkpoint
    /// when it has none (an empty store has nothing worth a snapshot).
    pub fn applied(&self, partition: Partition) -> Result<Offset> {
        self.position.applied(partition).ok_or_else(|| {
            Error::invalid_input(format!(
                "checkpoint in {} has no changelog position for partition {partition}",
                self.dir.display()
            ))
        })
    }

    /// Creates `dir`, the new directory a checkpoint goes into: it must not exist yet
    /// (parents are created as needed), so an existing directory is refused before any
    /// work, left as it is, and no two checkpoints ever write into one.
    pub fn claim_dir(dir: &Path) -> Result<()> {
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| {
                Error::from(err).context(format!("creating {}", parent.display()))
            })?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::invalid_input(format!(
                    "checkpoint directory {} already exists: a checkpoint goes into a new \
                     directory only, and what is there was left as it is",
                    dir.display()
                )))
            }
            Err(err) => Err(Error::from(err).context(format!("creating {}", dir.display()))),
        }
    }

    /// Claims the new directory `dir` ([`claim_dir`](Self::claim_dir)) and writes a
    /// checkpoint into it with `write`; when `write` fails, `dir` (ours alone) is removed,
    /// so a failed checkpoint leaves nothing behind.
    pub fn write_into(dir: &Path, write: impl FnOnce() -> Result<Self>) -> Result<Self> {
        Self::claim_dir(dir)?;
        write().map_err(|err| match std::fs::remove_dir_all(dir) {
            Ok(()) => err,
            Err(left) => err.context(format!(
                "checkpoint {} failed and could not be removed ({left})",
                dir.display()
            )),
        })
    }

    /// The path of `file_name` in the checkpoint directory `checkpoint`, which must hold
    /// that file and nothing else: anything else is refused as
    /// [`Foreign`](crate::ErrorKind::Foreign) (not a `backend` checkpoint), left as it is.
    pub fn sole_file(checkpoint: &Path, file_name: &str, backend: &str) -> Result<PathBuf> {
        let listing_error = |err: std::io::Error| {
            Error::from(err).context(format!("listing checkpoint {}", checkpoint.display()))
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(checkpoint).map_err(listing_error)? {
            let name = entry.map_err(listing_error)?.file_name();
            names.push(name.to_string_lossy().into_owned());
        }
        names.sort();
        if names != [file_name] {
            let found = if names.is_empty() {
                "nothing".to_owned()
            } else {
                names.join(", ")
            };
            return Err(Error::foreign(format!(
                "{} is not a statestore {backend} checkpoint: it holds {found} where \
                 {file_name} alone should be; it was left as it is",
                checkpoint.display()
            )));
        }
        Ok(checkpoint.join(file_name))
    }

    /// The bytes of every file together.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<CheckpointFile>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Error::from(err).context(format!("listing checkpoint {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|err| {
            Error::from(err).context(format!("listing checkpoint {}", dir.display()))
        })?;
        let path = entry.path();
        let meta = entry
            .metadata()
            .map_err(|err| Error::from(err).context(format!("reading {}", path.display())))?;
        if meta.is_dir() {
            collect(root, &path, files)?;
        } else if meta.is_file() {
            let relative = path.strip_prefix(root).map_err(|_| {
                Error::internal(format!("{} outside its checkpoint", path.display()))
            })?;
            let name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(CheckpointFile {
                path: name.join("/"),
                size: meta.len(),
            });
        }
    }
    Ok(())
}
