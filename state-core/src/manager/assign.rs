//! Assignment: a partition's restore job, from its stores' opening to `Active`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::{Either, join_all, select};

use super::lifecycle::Event;
use super::snapshots::SnapshotMark;
use super::state::{Cancel, Slot};
use super::task::Task;
use super::{PartitionRestores, Registered, StoreManager, standby::Standby};
use crate::builder::{ByteStore, CatchUp, Opened};
use crate::{Error, ErrorKind, KeyValueStore, Partition, RestoreSummary, Result, StoreContext};

/// A partition's restore, returned by [`StoreManager::assign`]: spawn it on a runtime or
/// await it. It yields the partition and what each store restored — `Ok(None)` when the
/// assignment was withdrawn (revoked or lost) before the partition became active, or
/// when it was active already.
pub type RestoreJob =
    Pin<Box<dyn Future<Output = (Partition, Result<Option<PartitionRestores>>)> + Send>>;

/// A partition whose restore ended, from [`StoreManager::take_ready`].
#[derive(Debug)]
pub struct ReadyPartition {
    /// The partition.
    pub partition: Partition,
    /// What each store restored (the partition is served from now on), or why the
    /// restore failed (the partition is `Closed`).
    pub restores: Result<PartitionRestores>,
}

impl StoreManager {
    /// Assigns `partitions` here: each becomes `Restoring` at once, and the returned job
    /// per partition (in the order given) opens its stores, restores them and makes it
    /// `Active`. A partition already active gets a job that does nothing.
    pub fn assign(self: &Arc<Self>, partitions: &[Partition]) -> Vec<RestoreJob> {
        partitions
            .iter()
            .map(|&partition| {
                let started = self.table.transition(partition, Event::Assign, None);
                let manager = self.clone();
                let job: RestoreJob = Box::pin(async move {
                    let outcome = match started {
                        Ok(assigned) if assigned.moved() => {
                            manager
                                .restore_job(partition, assigned.epoch, assigned.cancel)
                                .await
                        }
                        Ok(_) => Ok(None),
                        Err(err) => Err(err),
                    };
                    (partition, outcome)
                });
                job
            })
            .collect()
    }

    /// [`assign`](Self::assign) and wait for every restore (in parallel up to the bound);
    /// one result per partition, in the order given.
    pub async fn assign_all(
        self: &Arc<Self>,
        partitions: &[Partition],
    ) -> Vec<(Partition, Result<Option<PartitionRestores>>)> {
        join_all(self.assign(partitions)).await
    }

    /// Partitions whose restore ended since the last call, oldest first — those of a
    /// withdrawn assignment left out. A consumer resumes each one that restored.
    pub fn take_ready(&self) -> Vec<ReadyPartition> {
        let ready = std::mem::take(
            &mut *self
                .ready
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        ready
            .into_iter()
            .filter(|(epoch, ready)| self.table.is_current(ready.partition, *epoch))
            .map(|(_, ready)| ready)
            .collect()
    }

    async fn restore_job(
        &self,
        partition: Partition,
        epoch: u64,
        cancel: Arc<Cancel>,
    ) -> Result<Option<PartitionRestores>> {
        let cell = self.table.cell(partition);
        let mut slot = cell.lock_owned().await;
        if !self.table.is_current(partition, epoch) {
            // Withdrawn before its restore could start: nothing is opened.
            return Ok(None);
        }
        let standbys = match std::mem::replace(&mut *slot, Slot::Empty) {
            Slot::Standby(standbys) => Some(standbys),
            Slot::Empty => None,
            Slot::Active(task) => {
                *slot = Slot::Active(task);
                self.table
                    .transition(partition, Event::Restored { epoch }, Some(&slot))?;
                return Ok(None);
            }
        };
        let outcome = match self.build_task(partition, standbys, &cancel).await {
            Ok(task) => {
                let restores = task.restores.clone();
                *slot = Slot::Active(Box::new(task));
                if !self
                    .table
                    .transition(partition, Event::Restored { epoch }, Some(&slot))?
                    .moved()
                {
                    // Withdrawn meanwhile: the revoke or loss waiting for this cell
                    // closes the stores.
                    return Ok(None);
                }
                Ok(Some(restores))
            }
            Err((err, opened)) if cancel.is_raised() => {
                // Cancelled by a revoke or loss, which now decides what becomes of the
                // stores: they are consistent, only behind.
                log::info!("restore of partition {partition} cancelled by its revoke: {err}");
                *slot = self.cancelled_stores(partition, opened);
                return Ok(None);
            }
            Err((err, opened)) => {
                for store in opened {
                    if let Err(close) = store.close() {
                        log::warn!(
                            "closing store {} after a failed restore: {close}",
                            store.name()
                        );
                    }
                }
                self.table
                    .transition(partition, Event::RestoreFailed { epoch }, Some(&slot))?;
                Err(err.context(format!("assigning partition {partition}")))
            }
        };
        let report = ReadyPartition {
            partition,
            restores: match &outcome {
                Ok(restores) => Ok(restores.clone().unwrap_or_default()),
                Err(err) => Err(err.duplicate()),
            },
        };
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((epoch, report));
        outcome
    }

    /// Opens every store of `partition` (taking over `standbys` if any), settles the
    /// input, and restores each store; on error hands back the stores it opened.
    async fn build_task(
        &self,
        partition: Partition,
        standbys: Option<Vec<Standby>>,
        cancel: &Cancel,
    ) -> std::result::Result<Task, (Error, Vec<Arc<dyn KeyValueStore>>)> {
        let context = self.context.for_partition(partition);
        let kept = standbys.map_or_else(Vec::new, |s| {
            s.into_iter().map(Standby::into_store).collect()
        });
        let opened = self.open_stores(&context, kept)?;
        // The stores to hand back on error. A store being caught up is not among them:
        // restore may replace it with a snapshot, which needs its only handle.
        let mut held: Vec<Option<Arc<dyn KeyValueStore>>> = opened
            .iter()
            .map(|(store, _)| Some(store.clone()))
            .collect();
        let restored = async {
            let _permit = self.restore_permits.acquire().await.map_err(|_| {
                Error::new(ErrorKind::Closed, "store manager restore permits closed")
            })?;
            let sink = match self.any_logged() {
                true => {
                    let sink = self.sink().await?;
                    // A revoke need not wait for a settle that waits on a dead owner's
                    // transaction to time out.
                    let settle = sink.settle_input(partition);
                    match select(settle, Box::pin(cancel.wait())).await {
                        Either::Left((settled, _)) => settled?,
                        Either::Right(_) => return Err(cancelled(partition)),
                    }
                    Some(sink)
                }
                false => None,
            };
            let mut wrapped = Vec::with_capacity(opened.len());
            let mut restores = PartitionRestores::new();
            for (index, (registered, opened)) in self.stores.iter().zip(opened).enumerate() {
                let name = registered.recipe.name();
                let topic = match sink {
                    Some(_) => registered.topic(&context).await?,
                    None => None,
                };
                let (Some(topic), Some(sink)) = (topic, sink) else {
                    wrapped.push(ByteStore::wrap(opened.0, None, partition));
                    restores.insert(name.to_owned(), None);
                    continue;
                };
                held[index] = None;
                let (store, summary) = self
                    .catch_up(registered, &context, topic, opened, cancel)
                    .await?;
                held[index] = Some(store.clone());
                wrapped.push(ByteStore::wrap(store, Some((sink, topic)), partition));
                restores.insert(name.to_owned(), Some(summary));
            }
            let snapshotted = SnapshotMark::restored(self.stores.iter().map(|registered| {
                restores
                    .get(registered.recipe.name())
                    .and_then(|summary| summary.as_ref()?.snapshot.as_ref())
                    .map(|snapshot| snapshot.position)
            }));
            Ok(Task {
                partition,
                stores: wrapped,
                restores,
                processed: None,
                committed: None,
                snapshotted,
            })
        }
        .await;
        restored.map_err(|err| (err, held.into_iter().flatten().collect()))
    }

    /// The slot a cancelled restore leaves: a standby of every store, so each keeps its
    /// place. The store being caught up when the cancel came is not among `opened` (its
    /// handle went with the restore), so it is opened again from its directory; if that
    /// fails, every store is closed and the slot left empty, to be opened afresh.
    fn cancelled_stores(&self, partition: Partition, opened: Vec<Arc<dyn KeyValueStore>>) -> Slot {
        let context = self.context.for_partition(partition);
        match self.open_stores(&context, opened) {
            Ok(all) => Slot::Standby(
                all.into_iter()
                    .map(|(store, _)| Standby::new(partition, store))
                    .collect(),
            ),
            Err((err, held)) => {
                log::warn!(
                    "partition {partition}: reopening a store after its cancelled restore \
                     failed, closing them all: {err}"
                );
                if let Err(close) = super::commit::close_all(held) {
                    log::warn!("partition {partition}: closing after a cancelled restore: {close}");
                }
                Slot::Empty
            }
        }
    }

    /// Restores one opened store of an assigned partition through the one restore path,
    /// stopping at the next batch once `cancel` is raised.
    async fn catch_up(
        &self,
        registered: &Registered,
        context: &StoreContext,
        topic: &str,
        opened: Opened,
        cancel: &Cancel,
    ) -> Result<(Arc<dyn KeyValueStore>, RestoreSummary)> {
        let reader = registered.reader(context, topic).await?;
        let mut options = registered.recipe.restore_options(context);
        options.cancel = Some(cancel.raised.clone());
        let catch_up = CatchUp {
            reader: reader.as_ref(),
            options: &options,
            listener: context.restore_listener().as_ref(),
            from_snapshots: true,
        };
        registered.recipe.catch_up(opened, context, catch_up).await
    }
}

fn cancelled(partition: Partition) -> Error {
    Error::new(
        ErrorKind::Closed,
        format!("assignment of partition {partition} withdrawn before its input settled"),
    )
}
