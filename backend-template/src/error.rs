//! The one place engine errors become statestore errors.

use std::path::Path;

use state_core::{Error, ErrorKind};

/// Maps an engine error into a [`state_core::Error`] naming the store's path and what was
/// being done. A real backend takes its engine's error type here and keeps every mapping
/// in this one function: damage of its own files is `Corruption` (restore rebuilds the
/// store), files it did not write are `Foreign` (never wiped), a lock held by another
/// writer is `Unavailable`, the OS's failures are `Io`.
#[allow(dead_code)] // the skeleton has no engine calling it yet
pub(crate) fn map_engine_error(err: std::io::Error, path: &Path, action: &str) -> Error {
    let kind = match err.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::InvalidData => ErrorKind::Corruption,
        std::io::ErrorKind::WouldBlock => ErrorKind::Unavailable,
        _ => ErrorKind::Io,
    };
    Error::new(
        kind,
        format!("template store at {}: {action}: {err}", path.display()),
    )
    .with_source(err)
}

/// The error of every method the skeleton leaves to the new backend.
pub(crate) fn todo(method: &str) -> Error {
    Error::unsupported(format!("backend-template: {method} is not implemented"))
}
