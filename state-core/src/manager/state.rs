//! The lifecycle table: one entry per partition the manager has seen, saying where the
//! partition stands and guarding the resources (stores) it holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Mutex as AsyncMutex, Notify};

use super::standby::Standby;
use super::task::Task;
use crate::Partition;

/// Where a partition stands on this instance (see the state machine in the
/// [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Assigned here; its stores are opening and restoring. Not served yet.
    Restoring,
    /// Assigned, every store restored; served.
    Active,
    /// Active, with a commit of the instance's stores under way.
    Committing,
    /// Given up by a revoke: being committed and closed, or kept as a standby.
    Revoking,
    /// Not owned here; a standby copy of each store tails its changelog.
    Standby,
    /// Closed; the local directories (durable backends) are kept for a later assignment.
    Closed,
    /// Closed without committing because the group moved it on (Kafka's "partitions
    /// lost"); the stores keep their last commit.
    Lost,
}

impl PartitionState {
    /// Whether the partition is assigned here (restoring or served).
    pub fn is_owned(self) -> bool {
        matches!(
            self,
            PartitionState::Restoring | PartitionState::Active | PartitionState::Committing
        )
    }
}

/// What a partition's cell holds; which variant goes with which state is the table's
/// invariant: `Active` and `Committing` hold a task, `Standby` holds standbys, the
/// others hold nothing once their transition is over.
pub(crate) enum Slot {
    Empty,
    Standby(Vec<Standby>),
    // Boxed: a task is several times the size of the other variants.
    Active(Box<Task>),
}

/// One partition's resources, locked for as long as they are used: a whole restore, one
/// record's processing, one commit.
pub(crate) type Cell = Arc<AsyncMutex<Slot>>;

/// Raised by a revoke or loss to stop the running restore of an assignment early.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    /// What the restore loop checks between batches.
    pub(crate) raised: Arc<AtomicBool>,
    notify: Notify,
}

impl Cancel {
    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Completes once raised.
    pub(crate) async fn wait(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the check, so a raise in between still wakes it.
        notified.as_mut().enable();
        if !self.is_raised() {
            notified.await;
        }
    }
}

/// One partition's entry.
pub(crate) struct Entry {
    pub(crate) state: PartitionState,
    /// Bumped on every assign, revoke and loss: a restore started for an older
    /// assignment sees it changed and does not make the partition active.
    pub(crate) epoch: u64,
    pub(crate) cancel: Arc<Cancel>,
    pub(crate) cell: Cell,
}

/// Every partition's entry, behind one lock that is never held across an `await`.
#[derive(Default)]
pub(crate) struct Table {
    entries: Mutex<BTreeMap<Partition, Entry>>,
}

impl Table {
    pub(crate) fn lock(&self) -> MutexGuard<'_, BTreeMap<Partition, Entry>> {
        // Every update leaves the map whole, so a panic elsewhere does not matter.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of `partition`, if it ever had one.
    pub(crate) fn state(&self, partition: Partition) -> Option<PartitionState> {
        self.lock().get(&partition).map(|e| e.state)
    }

    /// The cell of `partition`, created (empty, without a state) if it has none.
    pub(crate) fn cell(&self, partition: Partition) -> Cell {
        self.entry_with(partition, |entry| entry.cell.clone())
    }

    /// Runs `f` on `partition`'s entry, creating it first when missing.
    pub(crate) fn entry_with<T>(&self, partition: Partition, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.lock();
        let entry = entries.entry(partition).or_insert_with(|| Entry {
            state: PartitionState::Closed,
            epoch: 0,
            cancel: Arc::default(),
            cell: Arc::new(AsyncMutex::new(Slot::Empty)),
        });
        f(entry)
    }

    /// Moves `partition` to `state` if its epoch is still `epoch`; says whether it did.
    pub(crate) fn set_if_current(
        &self,
        partition: Partition,
        epoch: u64,
        state: PartitionState,
    ) -> bool {
        let mut entries = self.lock();
        match entries.get_mut(&partition) {
            Some(entry) if entry.epoch == epoch => {
                entry.state = state;
                true
            }
            _ => false,
        }
    }

    /// Moves `partition` from `from` to `to`; leaves any other state alone.
    pub(crate) fn advance(&self, partition: Partition, from: PartitionState, to: PartitionState) {
        if let Some(entry) = self.lock().get_mut(&partition)
            && entry.state == from
        {
            entry.state = to;
        }
    }

    /// Ends `partition`'s assignment here: bumps the epoch, stops its restore, and moves
    /// it to `state` (`Revoking` or `Lost`). Returns the state it had.
    pub(crate) fn withdraw(
        &self,
        partition: Partition,
        state: PartitionState,
    ) -> Option<PartitionState> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&partition)?;
        let before = entry.state;
        if !before.is_owned() {
            return Some(before);
        }
        entry.epoch += 1;
        entry.cancel.raise();
        entry.state = state;
        Some(before)
    }

    /// `(partition, cell)` of every partition in one of `states`, ascending.
    pub(crate) fn cells_in(&self, states: &[PartitionState]) -> Vec<(Partition, Cell)> {
        self.lock()
            .iter()
            .filter(|(_, e)| states.contains(&e.state))
            .map(|(p, e)| (*p, e.cell.clone()))
            .collect()
    }

    /// Every partition's state.
    pub(crate) fn states(&self) -> BTreeMap<Partition, PartitionState> {
        self.lock().iter().map(|(p, e)| (*p, e.state)).collect()
    }
}
