//! Why a restore did not start from a snapshot.

use crate::Offset;

/// Why restore replays the changelog instead of starting from a snapshot. Reported to the
/// [`RestoreListener`](crate::RestoreListener) and logged; never silent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotFallback {
    /// The snapshot store holds no snapshot of this store partition.
    NoSnapshot,
    /// The snapshot store could not be listed; the error says why.
    ListFailed(String),
    /// A manifest could not be read (`id`, the error).
    Unreadable {
        /// The manifest's name.
        id: String,
        /// Why.
        error: String,
    },
    /// A manifest of another application, store, partition or backend, refused.
    Foreign {
        /// The manifest's name.
        id: String,
        /// What it belongs to.
        error: String,
    },
    /// The snapshot's position lies below the changelog's log start: the tail it needs
    /// was deleted.
    BelowLogStart {
        /// The snapshot's position.
        position: Offset,
        /// The changelog's first offset.
        log_start: Offset,
    },
    /// The snapshot's position lies at or past the changelog's end (topic recreated).
    AboveLogEnd {
        /// The snapshot's position.
        position: Offset,
        /// The changelog's end offset.
        log_end: Offset,
    },
    /// The store's backend takes no snapshots ([`Capability::snapshots`](crate::Capability::snapshots)).
    Unsupported(String),
    /// Downloading or opening the snapshot failed (a file missing, truncated or failing
    /// its checksum, a file the backend refuses).
    Failed {
        /// The manifest's name.
        id: String,
        /// Why.
        error: String,
    },
}

impl std::fmt::Display for SnapshotFallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotFallback::NoSnapshot => f.write_str("no snapshot of this store partition"),
            SnapshotFallback::ListFailed(error) => write!(f, "listing snapshots failed: {error}"),
            SnapshotFallback::Unreadable { id, error } => {
                write!(f, "snapshot manifest {id} is unreadable: {error}")
            }
            SnapshotFallback::Foreign { id, error } => {
                write!(f, "snapshot {id} refused as foreign: {error}")
            }
            SnapshotFallback::BelowLogStart {
                position,
                log_start,
            } => write!(
                f,
                "snapshot position {position} is below the changelog log start {log_start}"
            ),
            SnapshotFallback::AboveLogEnd { position, log_end } => write!(
                f,
                "snapshot position {position} is at or past the changelog end {log_end} (topic recreated?)"
            ),
            SnapshotFallback::Unsupported(backend) => {
                write!(f, "the {backend} backend takes no snapshots")
            }
            SnapshotFallback::Failed { id, error } => write!(f, "snapshot {id} failed: {error}"),
        }
    }
}
