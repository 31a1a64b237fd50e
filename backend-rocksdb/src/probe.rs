//! What a store directory holds, decided by reading only, before RocksDB touches it.
//!
//! Restore wipes a store the backend reports damaged, so "damaged" must only ever be said
//! of a directory this backend wrote. Inside a damaged database nothing can be trusted
//! (a truncated MANIFEST lists only the default column family, exactly like another
//! program's database), so ownership is marked outside it: an empty stamp file written
//! *before* the database is created. Its name is the mark, so damage to file contents
//! (a torn copy, bit rot) cannot erase it, and a crash half-way through creating a store
//! leaves a stamped directory, which is ours and may be rebuilt. Everything else in a
//! store's place — another backend's files, unknown files, another program's RocksDB —
//! is foreign and refused.

use std::io;
use std::path::Path;

use state_core::{Error, Result};

/// The stamp file: its presence marks a statestore RocksDB store directory.
pub(crate) const STAMP: &str = "STATESTORE-ROCKSDB";

/// Entries named at most when describing what a foreign directory holds.
const SHOWN: usize = 6;

/// What a store directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contents {
    /// No directory, or an empty one: nothing there to lose.
    Nothing,
    /// The stamp: a statestore RocksDB store, intact or damaged.
    Stamped,
    /// A RocksDB database (a `CURRENT` file) without the stamp: a store written before
    /// stamps existed, or another program's database. Its column families and format
    /// marker decide, and if they cannot be read it is not ours to wipe.
    Unstamped,
}

/// Looks at `path` without changing it. A file where the directory should be is
/// `InvalidInput`; a directory holding neither a stamp nor a RocksDB database is
/// `Foreign`, naming what it holds.
pub(crate) fn probe(path: &Path) -> Result<Contents> {
    let io_error =
        |err: io::Error| Error::from(err).context(format!("inspecting {}", path.display()));
    match std::fs::metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Contents::Nothing),
        Err(err) => return Err(io_error(err)),
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::invalid_input(format!(
                "rocksdb store path {} exists and is not a directory",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_error)? {
        names.push(
            entry
                .map_err(io_error)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    if names.is_empty() {
        return Ok(Contents::Nothing);
    }
    if names.iter().any(|name| name == STAMP) {
        return Ok(Contents::Stamped);
    }
    if names.iter().any(|name| name == "CURRENT") {
        return Ok(Contents::Unstamped);
    }
    Err(foreign(
        path,
        &format!("it holds {} and no RocksDB database", listing(names)),
    ))
}

/// The error for a directory statestore's RocksDB backend did not write.
pub(crate) fn foreign(path: &Path, found: &str) -> Error {
    Error::foreign(format!(
        "{} is not a statestore rocksdb store: {found}; it was left as it is",
        path.display()
    ))
}

/// `a, b and 3 more`, sorted.
fn listing(mut names: Vec<String>) -> String {
    names.sort();
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let mut text = names.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}
