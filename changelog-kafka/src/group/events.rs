//! What a group member reports as partitions move.

use state_core::{Partition, PartitionRestores};

/// Receives a member's partition movements, for operators and tests. Methods run on the
/// polling thread (inside rebalance callbacks for the first and last); keep them short.
pub trait GroupListener: Send + Sync {
    /// The group assigned `partitions` here; they are paused until restored.
    fn on_assigned(&self, partitions: &[Partition]) {
        let _ = partitions;
    }

    /// Every store of `partition` finished restoring (`restores` says what each
    /// replayed, by store name) and the partition is served from now on.
    fn on_ready(&self, partition: Partition, restores: &PartitionRestores) {
        let _ = (partition, restores);
    }

    /// `partitions` left this instance: committed and closed, or — `lost` — closed
    /// without committing because the group already moved them on.
    fn on_revoked(&self, partitions: &[Partition], lost: bool) {
        let _ = (partitions, lost);
    }
}

/// A listener that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopGroupListener;

impl GroupListener for NoopGroupListener {}
