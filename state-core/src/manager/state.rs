//! The lifecycle table: one entry per partition the manager has seen, saying where the
//! partition stands and guarding the resources (stores) it holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{Mutex as AsyncMutex, Notify};

use super::lifecycle::{self, Event};
use super::standby::Standby;
use super::task::Task;
use crate::{Error, KeyValueStore, Partition, Result};

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

/// What a partition holds: the resources of its state, which lives in the [`Table`]
/// alone. Only the partition's holder (the restore job, a commit, a revoke or loss, the
/// standby upkeep) changes it, and [`Table::transition`] checks that it fits the state it
/// moves to: `Active` and `Committing` hold a task, `Standby` holds standbys, `Closed`
/// and `Lost` hold nothing; `Restoring` and `Revoking` are in transit and may hold any.
pub(crate) enum Slot {
    Empty,
    Standby(Vec<Standby>),
    // Boxed: a task is several times the size of the other variants.
    Active(Box<Task>),
}

impl Slot {
    fn fits(&self, state: PartitionState) -> bool {
        match state {
            PartitionState::Active | PartitionState::Committing => {
                matches!(self, Slot::Active(_))
            }
            PartitionState::Standby => matches!(self, Slot::Standby(_)),
            PartitionState::Closed | PartitionState::Lost => matches!(self, Slot::Empty),
            PartitionState::Restoring | PartitionState::Revoking => true,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Slot::Empty => "nothing",
            Slot::Standby(_) => "standbys",
            Slot::Active(_) => "a task",
        }
    }
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

/// What [`Table::transition`] did.
#[derive(Debug)]
pub(crate) struct Transition {
    /// The state after it; `None` when the event left it as it was.
    pub(crate) to: Option<PartitionState>,
    /// The partition's epoch after the event.
    pub(crate) epoch: u64,
    /// The partition's cancel flag after the event.
    pub(crate) cancel: Arc<Cancel>,
}

impl Transition {
    /// Whether the event moved the partition (a move to the same state counts).
    pub(crate) fn moved(&self) -> bool {
        self.to.is_some()
    }
}

/// One partition's entry.
pub(crate) struct Entry {
    /// Written by [`Table::transition`] alone.
    state: PartitionState,
    /// Bumped on every assign, revoke and loss: a restore started for an older
    /// assignment sees it changed and does not make the partition active.
    epoch: u64,
    cancel: Arc<Cancel>,
    cell: Cell,
    /// What queries may read, derived from the slot at each move (see [`Readable`]).
    readable: Readable,
}

/// The committed stores of a partition that queries may read without taking its cell
/// (which processing holds for each record and a commit for its whole length): set from
/// the slot whenever the partition moves, so it never outlives the state it came from.
/// An active store's committed side holds only committed writes (uncommitted ones live in
/// the logging buffers), and a standby's is its changelog's committed prefix.
///
/// Weak references: the table never keeps a store open. A durable store releases its
/// files (RocksDB's LOCK) when its last handle goes, and a partition closed and opened
/// again here must find them free; a query holds a store only for its read.
#[derive(Clone, Default)]
pub(crate) enum Readable {
    /// Nothing to read: restoring, revoking, closed or lost.
    #[default]
    Nothing,
    /// Served here: each registered store's committed side, in registration order.
    Active(Arc<[Weak<dyn KeyValueStore>]>),
    /// A standby copy of each registered store.
    Standby(Arc<[Weak<dyn KeyValueStore>]>),
}

impl Readable {
    fn of(state: PartitionState, slot: Option<&Slot>) -> Self {
        match (state, slot) {
            (PartitionState::Active | PartitionState::Committing, Some(Slot::Active(task))) => {
                Readable::Active(
                    task.stores
                        .iter()
                        .map(|s| Arc::downgrade(s.committed()))
                        .collect(),
                )
            }
            (PartitionState::Standby, Some(Slot::Standby(standbys))) => {
                Readable::Standby(standbys.iter().map(|s| Arc::downgrade(s.store())).collect())
            }
            _ => Readable::Nothing,
        }
    }
}

/// Every partition's entry, behind one lock that is never held across an `await`.
#[derive(Default)]
pub(crate) struct Table {
    entries: Mutex<BTreeMap<Partition, Entry>>,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<Partition, Entry>> {
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

    /// Runs `f` on `partition`'s entry, creating it (`Closed`, empty) first when missing.
    fn entry_with<T>(&self, partition: Partition, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.lock();
        let entry = entries.entry(partition).or_insert_with(|| Entry {
            state: PartitionState::Closed,
            epoch: 0,
            cancel: Arc::default(),
            cell: Arc::new(AsyncMutex::new(Slot::Empty)),
            readable: Readable::Nothing,
        });
        f(entry)
    }

    /// The one function that changes a partition's state: applies `event` as the
    /// lifecycle table says (see `lifecycle`), refusing an illegal move with an error
    /// naming the state and the event. `holding` is the partition's slot when the caller
    /// holds it (and has already put the resources of the new state in it): it must fit
    /// the state moved to.
    ///
    /// An assignment starts a new epoch with a new cancel flag; a revoke or loss starts a
    /// new epoch and raises the flag, so a restore still running for the assignment stops
    /// at its next batch and its events are stale.
    pub(crate) fn transition(
        &self,
        partition: Partition,
        event: Event,
        holding: Option<&Slot>,
    ) -> Result<Transition> {
        self.entry_with(partition, |entry| {
            let from = entry.state;
            let to = lifecycle::next(from, entry.epoch, event)
                .map_err(|err| err.context(format!("partition {partition}")))?;
            if let (Some(to), Some(slot)) = (to, holding)
                && !slot.fits(to)
            {
                return Err(Error::internal(format!(
                    "partition {partition} moving from {from:?} to {to:?} holds {}",
                    slot.name()
                )));
            }
            if let Some(to) = to {
                match event {
                    Event::Assign => {
                        entry.epoch += 1;
                        entry.cancel = Arc::default();
                    }
                    Event::Revoke | Event::Lose => {
                        entry.epoch += 1;
                        entry.cancel.raise();
                    }
                    _ => {}
                }
                crate::metrics::partition_moved(entry.state, to);
                entry.state = to;
                entry.readable = Readable::of(to, holding);
            }
            Ok(Transition {
                to,
                epoch: entry.epoch,
                cancel: entry.cancel.clone(),
            })
        })
    }

    /// Whether `epoch` is still `partition`'s assignment.
    pub(crate) fn is_current(&self, partition: Partition, epoch: u64) -> bool {
        self.lock()
            .get(&partition)
            .is_some_and(|entry| entry.epoch == epoch)
    }

    /// `(partition, cell)` of every partition in one of `states`, ascending.
    pub(crate) fn cells_in(&self, states: &[PartitionState]) -> Vec<(Partition, Cell)> {
        self.lock()
            .iter()
            .filter(|(_, e)| states.contains(&e.state))
            .map(|(p, e)| (*p, e.cell.clone()))
            .collect()
    }

    /// The state of `partition` and what queries may read of it.
    pub(crate) fn readable(&self, partition: Partition) -> Option<(PartitionState, Readable)> {
        self.lock()
            .get(&partition)
            .map(|e| (e.state, e.readable.clone()))
    }

    /// Every partition's state.
    pub(crate) fn states(&self) -> BTreeMap<Partition, PartitionState> {
        self.lock().iter().map(|(p, e)| (*p, e.state)).collect()
    }
}
