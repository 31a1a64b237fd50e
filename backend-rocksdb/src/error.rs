//! The one place RocksDB errors become statestore errors.

use std::path::Path;

use rocksdb::ErrorKind as RocksKind;
use state_core::{Error, ErrorKind};

/// Maps a RocksDB error into a [`state_core::Error`] naming the database path.
pub(crate) fn map_rocksdb_error(err: rocksdb::Error, path: &Path) -> Error {
    let message = err.as_ref().to_owned();
    let kind = match err.kind() {
        RocksKind::Corruption => ErrorKind::Corruption,
        // Inside a database directory a file the metadata names but the disk lacks is
        // damage (a garbled CURRENT points at a MANIFEST that does not exist), not an OS
        // failure; restore from the changelog repairs it.
        RocksKind::IOError if message.contains("No such file or directory") => {
            ErrorKind::Corruption
        }
        // Another handle (often the previous owner during a rebalance) holds the LOCK
        // file; it goes away when that handle closes.
        RocksKind::IOError if is_lock_conflict(&message) => ErrorKind::Unavailable,
        RocksKind::IOError => ErrorKind::Io,
        RocksKind::InvalidArgument => ErrorKind::InvalidInput,
        RocksKind::NotSupported => ErrorKind::Unsupported,
        RocksKind::Busy | RocksKind::TryAgain => ErrorKind::Unavailable,
        RocksKind::TimedOut => ErrorKind::Timeout,
        RocksKind::ShutdownInProgress => ErrorKind::Closed,
        _ => ErrorKind::Internal,
    };
    let text = if kind == ErrorKind::Unavailable && is_lock_conflict(&message) {
        format!(
            "rocksdb at {} is open in another process or store handle (its LOCK file is \
             held); only one writer may open a store",
            path.display()
        )
    } else {
        format!("rocksdb at {}: {message}", path.display())
    };
    Error::new(kind, text).with_source(err)
}

fn is_lock_conflict(message: &str) -> bool {
    message.contains("While lock file") || message.contains("lock hold by current process")
}

/// The error for any use of a store after [`close`](state_core::KeyValueStore::close).
pub(crate) fn closed(name: &str, path: &Path) -> Error {
    Error::new(
        ErrorKind::Closed,
        format!("rocksdb store {name} at {} is closed", path.display()),
    )
}

/// The error for a write to a store opened read-only.
pub(crate) fn read_only(name: &str, path: &Path) -> Error {
    Error::unsupported(format!(
        "rocksdb store {name} at {} is open read-only; it cannot be written",
        path.display()
    ))
}
