//! When the manager snapshots an active partition: after a commit once its policy says
//! so, and before a clean revoke or close. Only the start of the local checkpoint
//! happens here, with the partition held
//! ([`KeyValueStore::begin_checkpoint`]: what must hold the store still); writing its
//! files where the backend defers that, and the upload, run in the [`SnapshotUploader`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::task::Task;
use crate::snapshot::scratch::scratch_dir;
use crate::snapshot::{SnapshotPolicy, SnapshotScope, SnapshotUploader};
use crate::{KeyValueStore, Offset, Partition, Result};

/// The manager's snapshot settings.
pub(super) struct Snapshots {
    pub(super) policy: SnapshotPolicy,
    pub(super) uploader: SnapshotUploader,
    /// Where checkpoints wait for their upload: beside the stores (a RocksDB
    /// checkpoint hard-links its files, which needs the same filesystem).
    pub(super) scratch: PathBuf,
    pub(super) application: String,
}

/// Where a partition's stores stood at their last snapshot (or since the partition
/// became active here).
#[derive(Debug, Clone)]
pub(crate) struct SnapshotMark {
    at: Instant,
    /// Each store's applied offset then, in registration order.
    applied: Vec<Option<Offset>>,
}

impl SnapshotMark {
    /// Where `stores` stand now.
    pub(crate) fn now<'a>(
        partition: Partition,
        stores: impl Iterator<Item = &'a dyn KeyValueStore>,
    ) -> Self {
        Self {
            at: Instant::now(),
            applied: stores.map(|store| applied(store, partition)).collect(),
        }
    }

    /// The mark of a partition just restored: a store restored from a snapshot stands at
    /// its snapshot's position, any other at none (it has no snapshot yet, so what it
    /// holds counts as new).
    pub(crate) fn restored(restores: impl Iterator<Item = Option<Offset>>) -> Self {
        Self {
            at: Instant::now(),
            applied: restores.collect(),
        }
    }

    /// Changelog records committed since the mark, over every store.
    fn records_since(&self, partition: Partition, stores: &[&dyn KeyValueStore]) -> u64 {
        stores
            .iter()
            .zip(&self.applied)
            .map(|(store, then)| match (applied(*store, partition), then) {
                (Some(now), Some(then)) => u64::try_from(now - then).unwrap_or(0),
                (Some(now), None) => u64::try_from(now + 1).unwrap_or(0),
                (None, _) => 0,
            })
            .sum()
    }
}

/// Why a partition is snapshotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// After a commit, when the policy says it is due.
    Commit,
    /// Before a clean revoke.
    Revoke,
    /// Before the manager closes.
    Close,
}

/// What snapshotting after one operation cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Taken {
    pub(super) checkpoints: usize,
    pub(super) pause: Duration,
}

impl Snapshots {
    /// Takes a checkpoint of every logged store of `task` that can snapshot itself and
    /// hands it to the uploader, when `trigger` and the policy say so. A checkpoint that
    /// fails is logged and skipped: a snapshot is an optimisation, never a reason to fail
    /// a commit or a revoke.
    pub(super) fn take(&self, task: &mut Task, trigger: Trigger) -> Taken {
        let partition = task.partition;
        let stores: Vec<&dyn KeyValueStore> = task
            .stores
            .iter()
            .map(|store| store.committed().as_ref())
            .collect();
        // Revokes and closes too skip a partition with nothing new since its last
        // snapshot (one the commit before them may just have taken).
        let records = task.snapshotted.records_since(partition, &stores);
        let wanted = match trigger {
            Trigger::Commit => self.policy.due(records, task.snapshotted.at.elapsed()),
            Trigger::Revoke => self.policy.on_revoke && records > 0,
            Trigger::Close => self.policy.on_close && records > 0,
        };
        if !wanted {
            return Taken::default();
        }
        let started = Instant::now();
        let mut checkpoints = 0;
        for (store, logged) in stores.iter().zip(task.stores.iter().map(|s| s.is_logged())) {
            // An unlogged store has no changelog position to restore a tail from.
            if !logged || !store.capability().snapshots || applied(*store, partition).is_none() {
                continue;
            }
            match self.checkpoint(*store, partition, trigger) {
                Ok(()) => checkpoints += 1,
                Err(err) => log::warn!(
                    "no snapshot of store {} partition {partition}: {err}",
                    store.name()
                ),
            }
        }
        task.snapshotted = SnapshotMark::now(partition, stores.into_iter());
        Taken {
            checkpoints,
            pause: started.elapsed(),
        }
    }

    fn checkpoint(
        &self,
        store: &dyn KeyValueStore,
        partition: Partition,
        trigger: Trigger,
    ) -> Result<()> {
        let prefix = format!(".{}-{partition}.", store.name());
        let dir = scratch_dir(&self.scratch, &prefix)?;
        let checkpoint = match trigger {
            // The partition stays: its files are written later, off the commit path.
            Trigger::Commit => store.begin_checkpoint(&dir)?,
            // The store closes next, and a checkpoint begun on a store that closed may no
            // longer be written (redb's copy reads the store's file): write it now.
            Trigger::Revoke | Trigger::Close => store.checkpoint(&dir)?.into(),
        };
        let scope = SnapshotScope::new(&self.application, store.name(), partition);
        self.uploader.submit(scope, checkpoint);
        Ok(())
    }
}

fn applied(store: &dyn KeyValueStore, partition: Partition) -> Option<Offset> {
    store
        .position()
        .ok()
        .and_then(|position| position.applied(partition))
}
