//! Commit, revoke and loss: the operations that hold several partitions at once.
//!
//! Every store of the instance logs through one sink, whose interval holds the records
//! of every active partition, so each of these operations takes every active
//! partition's lock (in ascending order, one operation at a time) before it touches the
//! sink: a commit of some partitions alone would commit the others' records without
//! their input offsets. [`StoreManager::active`] passes the same gate before it hands a
//! partition out, so no partition is written behind a running commit's back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use tracing::Instrument;

use super::lifecycle::Event;
use super::snapshots::{Taken, Trigger};
use super::state::{Cell, PartitionState, Slot};
use super::{AfterRevoke, StoreManager, standby::Standby};
use crate::builder::ByteStore;
use crate::logging::{LoggedStore, abort_together, commit_together};
use crate::{Error, KeyValueStore, Partition, Result, SourceCommit, SourceOffsets};

/// What a [`StoreManager::commit`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagerCommit {
    /// The active partitions committed, ascending.
    pub partitions: Vec<Partition>,
    /// Changelog records made durable, over every store.
    pub records: usize,
    /// What became of the input offsets processed since the last commit.
    pub source: SourceCommit,
    /// Stores checkpointed for a snapshot after the commit (their uploads run in the
    /// background).
    pub snapshots: usize,
    /// How long those checkpoints held the commit.
    pub snapshot_pause: Duration,
}

/// A partition's lock, held.
type Held = (Partition, OwnedMutexGuard<Slot>);

impl StoreManager {
    /// Commits every active partition at once: each store's changes since the last commit
    /// and the input offsets processed into them become durable in one sink commit (one
    /// transaction under exactly-once), then each store writes them with its position;
    /// stores without logging are flushed.
    ///
    /// On error every store keeps its uncommitted changes (reads still see them) and the
    /// next commit appends again what the changelog lacks. An error from a store's own
    /// write after the sink committed leaves that store behind the changelog, which holds
    /// its changes; the input offsets then count as committed.
    pub async fn commit(&self) -> Result<ManagerCommit> {
        let _commits = self.commits.lock().await;
        let mut held = self.hold(BTreeMap::new()).await;
        self.commit_held(&mut held).await
    }

    /// Gives `partitions` up: commits every active partition (see
    /// [`commit`](Self::commit)), then closes the stores of `partitions` keeping their
    /// directories, or keeps them as standbys. A partition still restoring stops at its
    /// restore's next batch. Partitions not owned here are left as they are. Every
    /// partition is handled even when the commit or a close fails; the first error is
    /// returned. A revoked store whose commit failed still holds its last commit, and the
    /// changelog holds nothing newer that counts (exactly-once) or a prefix
    /// (at-least-once).
    pub async fn revoke(&self, partitions: &[Partition], after: AfterRevoke) -> Result<()> {
        self.give_up(partitions, after, Trigger::Revoke).await
    }

    /// [`revoke`](Self::revoke), snapshotting the revoked partitions for `trigger` after
    /// the commit.
    pub(super) async fn give_up(
        &self,
        partitions: &[Partition],
        after: AfterRevoke,
        trigger: Trigger,
    ) -> Result<()> {
        let _commits = self.commits.lock().await;
        let mut first_error = None;
        let revoked = self.withdraw(partitions, Event::Revoke, &mut first_error);
        let mut held = self.hold(self.cells_of(&revoked)).await;
        match self.commit_held(&mut held).await {
            Ok(_) => {
                self.snapshot(&mut held, |p| revoked.contains(&p), trigger);
            }
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
        for (partition, slot) in held.iter_mut().filter(|(p, _)| revoked.contains(p)) {
            let stores = take_stores(slot);
            let standby = after == AfterRevoke::KeepAsStandby && !stores.is_empty();
            if standby {
                **slot = Slot::Standby(
                    stores
                        .into_iter()
                        .map(|s| Standby::new(*partition, s))
                        .collect(),
                );
            } else if let Err(err) = close_all(stores) {
                first_error.get_or_insert(err);
            }
            // An assignment that came meanwhile (not from a consumer group, whose events
            // arrive one at a time) keeps its state.
            if let Err(err) =
                self.table
                    .transition(*partition, Event::Revoked { standby }, Some(slot))
            {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), |err| {
            Err(err.context(format!("revoking partitions {partitions:?}")))
        })
    }

    /// Closes `partitions` without committing, for partitions the group already gave to
    /// someone else (Kafka's "partitions lost"): committing would race the new owner.
    /// Their uncommitted writes are dropped and the stores keep their last commit. The
    /// sink's open interval is ended ([`ChangelogSink::abort`](crate::ChangelogSink::abort)),
    /// so the partitions that stay append their uncommitted writes again at the next
    /// commit.
    pub async fn lose(&self, partitions: &[Partition]) -> Result<()> {
        let _commits = self.commits.lock().await;
        let mut first_error = None;
        let lost = self.withdraw(partitions, Event::Lose, &mut first_error);
        let mut held = self.hold(self.cells_of(&lost)).await;
        if let Some(sink) = self.sink.get() {
            let mut logged = logged_stores(&mut held);
            if !logged.is_empty()
                && let Err(err) = abort_together(sink.as_ref(), &mut logged).await
            {
                first_error.get_or_insert(err);
            }
        }
        // Their state says Lost since they were withdrawn.
        for (_, slot) in held.iter_mut().filter(|(p, _)| lost.contains(p)) {
            if let Err(err) = close_all(take_stores(slot)) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), |err| {
            Err(err.context(format!("closing lost partitions {partitions:?}")))
        })
    }

    /// Ends the assignment here of each of `partitions` that is owned (`event` is a
    /// revoke or a loss): its restore (if any) stops and will not make it active. Returns
    /// those partitions; a refused move is kept in `first_error`.
    fn withdraw(
        &self,
        partitions: &[Partition],
        event: Event,
        first_error: &mut Option<Error>,
    ) -> BTreeSet<Partition> {
        let mut withdrawn = BTreeSet::new();
        for &partition in partitions {
            match self.table.transition(partition, event, None) {
                Ok(done) if done.moved() => {
                    withdrawn.insert(partition);
                }
                Ok(_) => {}
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        withdrawn
    }

    fn cells_of(&self, partitions: &BTreeSet<Partition>) -> BTreeMap<Partition, Cell> {
        partitions
            .iter()
            .map(|&p| (p, self.table.cell(p)))
            .collect()
    }

    /// Locks `extra` and every active partition, in ascending order.
    async fn hold(&self, mut cells: BTreeMap<Partition, Cell>) -> Vec<Held> {
        cells.extend(self.table.cells_in(&[PartitionState::Active]));
        let mut held = Vec::with_capacity(cells.len());
        for (partition, cell) in cells {
            held.push((partition, cell.lock_owned().await));
        }
        held
    }

    /// Commits every task in `held` (see [`commit`](Self::commit)).
    async fn commit_held(&self, held: &mut [Held]) -> Result<ManagerCommit> {
        let timer = crate::metrics::CommitTimer::start();
        let mut serving = Vec::new();
        for (partition, slot) in held.iter() {
            if self.table.state(*partition) == Some(PartitionState::Active) {
                self.table
                    .transition(*partition, Event::CommitStarted, Some(slot))?;
                // Pushed only once moved, so every partition moved is moved back.
                serving.push(*partition);
            }
        }
        let span = tracing::info_span!(
            "commit",
            partitions = ?serving,
            records = tracing::field::Empty
        );
        let outcome = self.commit_tasks(held).instrument(span.clone()).await;
        if let Ok(summary) = &outcome {
            span.record("records", summary.records);
        }
        let outcome = outcome.map(|mut summary| {
            let taken = self.snapshot(held, |_| true, Trigger::Commit);
            summary.snapshots = taken.checkpoints;
            summary.snapshot_pause = taken.pause;
            summary
        });
        let mut first_error = outcome.as_ref().err().map(Error::duplicate);
        for (partition, slot) in held.iter().filter(|(p, _)| serving.contains(p)) {
            if let Err(err) = self
                .table
                .transition(*partition, Event::CommitEnded, Some(slot))
            {
                first_error.get_or_insert(err);
            }
        }
        let result = match first_error {
            Some(err) if outcome.is_ok() => Err(err),
            _ => outcome,
        };
        timer.end(result.is_ok());
        result
    }

    async fn commit_tasks(&self, held: &mut [Held]) -> Result<ManagerCommit> {
        let mut source = SourceOffsets::none();
        let mut partitions = Vec::new();
        for (partition, slot) in held.iter() {
            if let Slot::Active(task) = &**slot {
                partitions.push(*partition);
                if let Some(next) = task.pending_offset() {
                    source.set(*partition, next);
                }
            }
        }
        let mut logged = logged_stores(held);
        let mut first_error = None;
        let mut summary = ManagerCommit {
            partitions,
            ..ManagerCommit::default()
        };
        if !logged.is_empty() || !source.is_empty() {
            match self.sink().await {
                Ok(sink) => match commit_together(sink.as_ref(), &mut logged, &source).await {
                    Ok(joint) => {
                        summary.source = joint.sink.source;
                        for store in joint.stores {
                            match store {
                                Ok(done) => summary.records += done.records,
                                Err(err) => {
                                    first_error.get_or_insert(err);
                                }
                            }
                        }
                    }
                    Err(err) => first_error = Some(err),
                },
                Err(err) => first_error = Some(err),
            }
        }
        drop(logged);
        if summary.source == SourceCommit::Committed {
            for (partition, slot) in held.iter_mut() {
                if let Slot::Active(task) = &mut **slot
                    && let Some(next) = source.get(*partition)
                {
                    task.committed = Some(next);
                }
            }
        }
        // Unlogged stores hold their writes until now: applied as one batch each.
        for (_, slot) in held.iter() {
            if let Slot::Active(task) = &**slot {
                for store in &task.stores {
                    if let Err(err) = store.commit_unlogged() {
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        first_error.map_or(Ok(summary), Err)
    }
}

impl StoreManager {
    /// Snapshots the active partitions of `held` that `which` picks, for `trigger`.
    fn snapshot(
        &self,
        held: &mut [Held],
        which: impl Fn(Partition) -> bool,
        trigger: Trigger,
    ) -> Taken {
        let Some(snapshots) = &self.snapshots else {
            return Taken::default();
        };
        let mut total = Taken::default();
        for (_, slot) in held.iter_mut().filter(|(p, _)| which(*p)) {
            if let Slot::Active(task) = &mut **slot {
                let taken = snapshots.take(task, trigger);
                total.checkpoints += taken.checkpoints;
                total.pause += taken.pause;
            }
        }
        total
    }
}

/// Every logged store of every task in `held`.
fn logged_stores(held: &mut [Held]) -> Vec<&mut LoggedStore> {
    held.iter_mut()
        .filter_map(|(_, slot)| match &mut **slot {
            Slot::Active(task) => Some(task.stores.iter_mut()),
            _ => None,
        })
        .flatten()
        .filter_map(ByteStore::logged_mut)
        .collect()
}

/// The committed stores a slot holds (a task's or a cancelled restore's), leaving it
/// empty; uncommitted writes are dropped.
fn take_stores(slot: &mut Slot) -> Vec<std::sync::Arc<dyn KeyValueStore>> {
    match std::mem::replace(slot, Slot::Empty) {
        Slot::Active(task) => task
            .stores
            .into_iter()
            .map(ByteStore::into_committed)
            .collect(),
        Slot::Standby(standbys) => standbys.into_iter().map(Standby::into_store).collect(),
        Slot::Empty => Vec::new(),
    }
}

/// Closes every store; the first error is returned.
pub(super) fn close_all(stores: Vec<std::sync::Arc<dyn KeyValueStore>>) -> Result<()> {
    let mut first_error = None;
    for store in stores {
        if let Err(err) = store.close() {
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}
