//! The one place redb's errors become [`state_core::Error`].

use std::path::Path;

use state_core::{Error, ErrorKind};

/// Maps any redb error (`DatabaseError`, `TransactionError`, `TableError`, `StorageError`,
/// `CommitError`, ...) raised while doing `action` on the file at `path`.
pub(crate) fn map_redb_error(path: &Path, action: &str, err: impl Into<redb::Error>) -> Error {
    let err: redb::Error = err.into();
    let path = path.display();
    let (kind, message) = match &err {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => (
            ErrorKind::Unavailable,
            format!(
                "{action}: redb file {path} is already open (by another store handle in this \
                 process or by another process); close it first"
            ),
        ),
        redb::Error::Corrupted(_) | redb::Error::RepairAborted => (
            ErrorKind::Corruption,
            format!("{action}: redb file {path} is damaged"),
        ),
        redb::Error::Io(io) if is_damage(io.kind()) => (
            ErrorKind::Corruption,
            format!("{action}: redb file {path} is damaged or not a redb file"),
        ),
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => (
            ErrorKind::NotFound,
            format!("{action}: redb file {path} does not exist"),
        ),
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_) => (
            ErrorKind::Io,
            format!("{action}: I/O on redb file {path} failed"),
        ),
        redb::Error::UpgradeRequired(version) => (
            ErrorKind::InvalidInput,
            format!("{action}: redb file {path} has old file format {version}"),
        ),
        redb::Error::ValueTooLarge(len) => (
            ErrorKind::InvalidInput,
            format!("{action}: a {len}-byte value is too large for redb file {path}"),
        ),
        redb::Error::TableTypeMismatch { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)
        | redb::Error::TypeDefinitionChanged { .. } => (
            ErrorKind::InvalidInput,
            format!("{action}: redb file {path} was not written by statestore"),
        ),
        redb::Error::TableDoesNotExist(table) => (
            ErrorKind::Corruption,
            format!("{action}: redb file {path} lacks the statestore table {table:?}"),
        ),
        redb::Error::DatabaseClosed => (
            ErrorKind::Closed,
            format!("{action}: redb file {path} was closed"),
        ),
        redb::Error::TransactionInProgress | redb::Error::WouldBlock => (
            ErrorKind::Unavailable,
            format!("{action}: redb file {path} is busy with another transaction"),
        ),
        _ => (
            ErrorKind::Internal,
            format!("{action}: redb failed on file {path}"),
        ),
    };
    Error::new(kind, message).with_source(err)
}

/// I/O error kinds redb reports when the bytes it reads make no sense (a truncated or
/// foreign file) rather than when the disk fails.
fn is_damage(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
    )
}

/// Maps a filesystem error on `path` outside redb (creating the directory, removing the
/// file), keeping the kind `state_core` derives from the I/O error.
pub(crate) fn map_io_error(path: &Path, action: &str, err: std::io::Error) -> Error {
    Error::from(err).context(format!("{action} {}", path.display()))
}
