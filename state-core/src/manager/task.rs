//! An active partition: its open stores, what their restore did, and the input it
//! processed since its last commit.

use tokio::sync::{OwnedMappedMutexGuard, OwnedMutexGuard};

use super::snapshots::SnapshotMark;
use super::state::Slot;
use super::{PartitionRestores, StoreHandle};
use crate::builder::ByteStore;
use crate::{Error, Offset, Partition, PartitionStore, Result};

/// The resources of one active partition (Kafka Streams' task).
pub(crate) struct Task {
    pub(crate) partition: Partition,
    /// One per registered store, in registration order.
    pub(crate) stores: Vec<ByteStore>,
    pub(crate) restores: PartitionRestores,
    /// The next input offset to consume after what was processed.
    pub(crate) processed: Option<Offset>,
    /// `processed` as of the last commit that committed input offsets.
    pub(crate) committed: Option<Offset>,
    /// Where the stores stood at the last snapshot, for the snapshot policy.
    pub(crate) snapshotted: SnapshotMark,
}

impl Task {
    /// The input offset the next commit must carry, if it moved since the last one.
    pub(crate) fn pending_offset(&self) -> Option<Offset> {
        self.processed.filter(|next| self.committed != Some(*next))
    }
}

/// Exclusive access to an active partition's stores, from
/// [`StoreManager::active`](super::StoreManager::active): while held, the partition cannot
/// be committed, revoked or lost. Hold it for one record, not longer.
pub struct ActivePartition {
    task: OwnedMappedMutexGuard<Slot, Task>,
    manager: u64,
}

impl ActivePartition {
    pub(crate) fn of(slot: OwnedMutexGuard<Slot>, manager: u64) -> Option<Self> {
        OwnedMutexGuard::try_map(slot, |slot| match slot {
            Slot::Active(task) => Some(&mut **task),
            _ => None,
        })
        .ok()
        .map(|task| Self { task, manager })
    }

    /// The partition.
    pub fn partition(&self) -> Partition {
        self.task.partition
    }

    /// The partition's store that `handle` names, typed.
    ///
    /// A handle from another manager is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error.
    pub fn store<K, V>(&self, handle: &StoreHandle<K, V>) -> Result<PartitionStore<'_, K, V>> {
        let store = self
            .task
            .stores
            .get(handle.index)
            .filter(|_| handle.manager == self.manager)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "store handle {} belongs to another store manager",
                    handle.name
                ))
            })?;
        Ok(PartitionStore::over(
            store,
            handle.keys.clone(),
            handle.values.clone(),
            None,
        ))
    }

    /// What each store restored when the partition was assigned, by store name.
    pub fn restores(&self) -> &PartitionRestores {
        &self.task.restores
    }

    /// Records that input up to `next_offset` (exclusive) was processed into the stores:
    /// the next commit carries it as the partition's input offset, together with the
    /// changes it made.
    pub fn record_processed(&mut self, next_offset: Offset) {
        self.task.processed = Some(next_offset);
    }

    /// The next input offset to consume, as far as processing went (`None` before the
    /// first record processed here).
    pub fn processed(&self) -> Option<Offset> {
        self.task.processed
    }

    /// The input offset last committed from here (`None` before the first commit).
    pub fn committed(&self) -> Option<Offset> {
        self.task.committed
    }
}
