//! What a store directory holds, decided by reading only, before redb touches the file.
//!
//! redb would initialise a new database in an empty or missing file, and restore wipes a
//! file the backend reports damaged; both must only ever happen to what this backend
//! owns. A store is ours when its file has our name and starts with redb's magic bytes.
//! New files are created under a temporary name and linked into place only once they
//! hold the format marker (see `RedbStore::open`), so a crash never leaves an empty or
//! half-made file under the store's name: an empty file there, a file that is not redb,
//! or other files without ours are foreign and refused.

use std::io::{self, Read};
use std::path::Path;

use state_core::{Error, Result};

/// The first bytes of every redb file (redb's `MAGICNUMBER`).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Entries named at most when describing what a foreign directory holds.
const SHOWN: usize = 6;

/// What a store directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contents {
    /// No directory, an empty one, or only creations under way or interrupted by a crash.
    Nothing,
    /// A redb file under the store's name.
    Redb,
}

/// A temporary name of this creator's own for a new file of `file_name`.
pub(crate) fn creating_name(file_name: &str) -> String {
    format!("{file_name}.creating.{}", crate::checkpoint::unique())
}

/// Whether `name` is a temporary file of a creation of `file_name`: this version's
/// (`<file>.creating.<pid>-<n>`) or an older one's (`<file>.creating`).
pub(crate) fn is_creating(name: &str, file_name: &str) -> bool {
    name.strip_prefix(file_name)
        .and_then(|rest| rest.strip_prefix(".creating"))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Looks at `dir` and its store file `file_name` without changing anything.
pub(crate) fn probe(dir: &Path, file_name: &str) -> Result<Contents> {
    match std::fs::metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Contents::Nothing),
        Err(err) => {
            return Err(Error::from(err).context(format!("inspecting {}", dir.display())));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::invalid_input(format!(
                "redb store directory {} exists and is not a directory",
                dir.display()
            )));
        }
        Ok(_) => {}
    }
    match look_at_file(&dir.join(file_name))? {
        Some(contents) => Ok(contents),
        None => others(dir, file_name),
    }
}

/// What the store file at `path` is, or `None` when there is none.
fn look_at_file(path: &Path) -> Result<Option<Contents>> {
    let io_error =
        |err: io::Error| Error::from(err).context(format!("inspecting {}", path.display()));
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(err)),
    };
    if !meta.is_file() {
        return Err(foreign(path, "it is not a regular file"));
    }
    if meta.len() == 0 {
        return Err(foreign(path, "it is an empty file"));
    }
    let mut start = Vec::with_capacity(REDB_MAGIC.len());
    std::fs::File::open(path)
        .and_then(|file| file.take(REDB_MAGIC.len() as u64).read_to_end(&mut start))
        .map_err(io_error)?;
    if !REDB_MAGIC.starts_with(&start) {
        return Err(foreign(
            path,
            &format!(
                "it does not start with redb's magic bytes (it starts with {})",
                hex(&start)
            ),
        ));
    }
    Ok(Some(Contents::Redb))
}

/// No store file: an empty directory is nothing, other files are someone else's.
fn others(dir: &Path, file_name: &str) -> Result<Contents> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|err| Error::from(err).context(format!("listing {}", dir.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|err| Error::from(err).context(format!("listing {}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_creating(&name, file_name) {
            names.push(name);
        }
    }
    if names.iter().any(|name| name == file_name) {
        // Another creator linked the finished file into place after the first look.
        if let Some(contents) = look_at_file(&dir.join(file_name))? {
            return Ok(contents);
        }
        names.retain(|name| name != file_name);
    }
    if names.is_empty() {
        return Ok(Contents::Nothing);
    }
    names.sort();
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let mut listing = names.join(", ");
    if more > 0 {
        listing.push_str(&format!(" and {more} more"));
    }
    Err(Error::foreign(format!(
        "{} is not a statestore redb store: it holds {listing} and no {file_name}; it was \
         left as it is",
        dir.display()
    )))
}

/// The error for a store file this backend did not write.
pub(crate) fn foreign(path: &Path, found: &str) -> Error {
    Error::foreign(format!(
        "{} is not a statestore redb store: {found}; it was left as it is",
        path.display()
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another creator may link the store file between the look at its name and the
    /// listing of the directory: the listing then finds a store, not a foreign file.
    #[test]
    fn a_store_file_linked_after_the_first_look_is_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store.redb"), REDB_MAGIC).unwrap();
        assert_eq!(others(dir.path(), "store.redb").unwrap(), Contents::Redb);
    }

    #[test]
    fn a_file_under_the_store_name_is_still_checked_when_found_by_listing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("store.redb"), b"").unwrap();
        let err = others(dir.path(), "store.redb").unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Foreign);
        assert!(err.to_string().contains("empty file"), "{err}");
    }

    #[test]
    fn other_files_without_the_store_file_are_foreign() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("store.redb.creating.1-1"), b"").unwrap();
        let err = others(dir.path(), "store.redb").unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Foreign);
        assert!(
            err.to_string().contains("notes.txt and no store.redb"),
            "{err}"
        );
    }
}
