//! Assignment: a partition's restore job, from its stores' opening to `Active`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::{Either, join_all, select};

use super::state::{Cancel, PartitionState, Slot};
use super::task::Task;
use super::{PartitionRestores, Registered, StoreManager, standby::Standby};
use crate::builder::ByteStore;
use crate::logging::LoggedStore;
use crate::restore::restore;
use crate::{Error, ErrorKind, KeyValueStore, Partition, Result, open_or_rebuild};

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
                let started = self.table.entry_with(partition, |entry| {
                    if matches!(
                        entry.state,
                        PartitionState::Active | PartitionState::Committing
                    ) {
                        return None;
                    }
                    entry.epoch += 1;
                    entry.state = PartitionState::Restoring;
                    entry.cancel = Arc::default();
                    Some((entry.epoch, entry.cancel.clone()))
                });
                let manager = self.clone();
                let job: RestoreJob = Box::pin(async move {
                    let outcome = match started {
                        Some((epoch, cancel)) => {
                            manager.restore_job(partition, epoch, cancel).await
                        }
                        None => Ok(None),
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
        let entries = self.table.lock();
        ready
            .into_iter()
            .filter(|(epoch, ready)| {
                entries
                    .get(&ready.partition)
                    .is_some_and(|entry| entry.epoch == *epoch)
            })
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
        if !self
            .table
            .set_if_current(partition, epoch, PartitionState::Restoring)
        {
            // Withdrawn before its restore could start: nothing is opened.
            return Ok(None);
        }
        let standbys = match std::mem::replace(&mut *slot, Slot::Empty) {
            Slot::Standby(standbys) => Some(standbys),
            Slot::Empty => None,
            Slot::Active(task) => {
                *slot = Slot::Active(task);
                self.table
                    .set_if_current(partition, epoch, PartitionState::Active);
                return Ok(None);
            }
        };
        let built = self.build_task(partition, standbys, &cancel).await;
        let outcome = match built {
            Ok(task) => {
                let restores = task.restores.clone();
                *slot = Slot::Active(Box::new(task));
                if self
                    .table
                    .set_if_current(partition, epoch, PartitionState::Active)
                {
                    Ok(Some(restores))
                } else {
                    // Withdrawn meanwhile: the revoke or loss waiting for this cell
                    // closes the stores.
                    return Ok(None);
                }
            }
            Err((err, opened)) if cancel.is_raised() => {
                // Cancelled by a revoke or loss, which now decides what becomes of the
                // stores: they are consistent, only behind.
                log::info!("restore of partition {partition} cancelled by its revoke: {err}");
                *slot = Slot::Standby(opened.into_iter().map(Standby::new).collect());
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
                    .set_if_current(partition, epoch, PartitionState::Closed);
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
        let mut opened: Vec<Arc<dyn KeyValueStore>> = Vec::new();
        let mut rebuilt = Vec::new();
        let context = self.context.for_partition(partition);
        let mut standbys = standbys.map(Vec::into_iter);
        for registered in &self.stores {
            let from_standby = standbys.as_mut().and_then(Iterator::next);
            let store = match from_standby {
                Some(standby) => Ok((standby.into_store(), None)),
                None => context
                    .store_dir(registered.recipe.name())
                    .and_then(|dir| open_or_rebuild(registered.recipe.supplier(), &dir)),
            };
            match store {
                Ok((store, wiped)) => {
                    opened.push(store);
                    rebuilt.push(wiped);
                }
                Err(err) => return Err((err, opened)),
            }
        }
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
            let mut stores = Vec::with_capacity(opened.len());
            let mut restores = PartitionRestores::new();
            for ((registered, store), wiped) in self.stores.iter().zip(&opened).zip(&rebuilt) {
                let (byte_store, summary) =
                    restore_one(registered, &context, store, wiped.clone(), sink, cancel).await?;
                stores.push(byte_store);
                restores.insert(registered.recipe.name().to_owned(), summary);
            }
            Ok(Task {
                partition,
                stores,
                restores,
                processed: None,
                committed: None,
            })
        }
        .await;
        restored.map_err(|err| (err, opened))
    }
}

/// Restores one store of a partition and wraps it to log through `sink`.
async fn restore_one(
    registered: &Registered,
    context: &crate::StoreContext,
    store: &Arc<dyn KeyValueStore>,
    wiped: Option<crate::WipeReason>,
    sink: Option<&Arc<dyn crate::ChangelogSink>>,
    cancel: &Cancel,
) -> Result<(ByteStore, Option<crate::RestoreSummary>)> {
    let (Some(topic), Some(sink)) = (registered.topic(context).await?, sink) else {
        return Ok((ByteStore::Unlogged(store.clone()), None));
    };
    let reader = registered.reader(context, topic).await?;
    let mut options = registered.recipe.restore_options(context);
    options.cancel = Some(cancel.raised.clone());
    let mut summary = restore(
        store.as_ref(),
        reader.as_ref(),
        context.partition(),
        &options,
        context.restore_listener().as_ref(),
    )
    .await?;
    if summary.wiped.is_none() {
        summary.wiped = wiped;
    }
    let logged = LoggedStore::new(store.clone(), sink.clone(), topic, context.partition());
    Ok((ByteStore::Logged(logged), Some(summary)))
}

fn cancelled(partition: Partition) -> Error {
    Error::new(
        ErrorKind::Closed,
        format!("assignment of partition {partition} withdrawn before its input settled"),
    )
}
