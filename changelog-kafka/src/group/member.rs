//! The state one member shares between its polling thread, its rebalance callbacks and
//! the restore tasks they start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::join_all;

use state_core::{
    Error, Offset, Partition, PartitionRestores, PartitionedStores, ProcessingGuarantee, Result,
};
use tokio::runtime::Handle;

use super::view;
use super::{GroupListener, StandbyPolicy};

/// `Ok` when every result is, else the first error.
fn first_error<T>(results: Vec<Result<T>>) -> Result<()> {
    results
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// A restore that finished, for the polling thread to resume its partition.
pub(crate) struct Restored {
    pub(crate) partition: Partition,
    /// The assignment it belongs to; a stale one (revoked since) is ignored.
    pub(crate) generation: u64,
    pub(crate) result: Result<PartitionRestores>,
}

/// Which partitions are where, and what was processed.
#[derive(Default)]
pub(crate) struct Assignment {
    /// Bumped on every assign and revoke of a partition.
    pub(crate) generations: BTreeMap<Partition, u64>,
    /// Assigned here (restoring or served).
    pub(crate) assigned: BTreeSet<Partition>,
    /// Restored and resumed: records of these are processed.
    pub(crate) ready: BTreeSet<Partition>,
    /// The next input offset to consume, per partition, after processing.
    pub(crate) processed: BTreeMap<Partition, Offset>,
    /// The offsets of `processed` last committed.
    pub(crate) committed: BTreeMap<Partition, Offset>,
    /// An error a rebalance callback could not return.
    pub(crate) error: Option<Error>,
}

/// Everything the callbacks need.
pub(crate) struct Member {
    /// One manager per store name; every partition has a store in each.
    pub(crate) stores: Vec<Arc<dyn PartitionedStores>>,
    pub(crate) runtime: Handle,
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) standbys: StandbyPolicy,
    pub(crate) listener: Arc<dyn GroupListener>,
    pub(crate) restored: Mutex<Sender<Restored>>,
    pub(crate) assignment: Mutex<Assignment>,
    /// Whether standbys tail their changelogs now.
    pub(crate) standby_updates: AtomicBool,
    /// Held by the standby updater for each round of updates.
    pub(crate) standby_round: tokio::sync::Mutex<()>,
    /// Where standbys go under [`StandbyPolicy::Replicas`].
    pub(crate) placement: Placement,
}

/// What placing [`StandbyPolicy::Replicas`] standbys needs.
pub(crate) struct Placement {
    /// This member's client id, which the group's description lists it by.
    pub(crate) identity: String,
    pub(crate) group_id: String,
    /// A client outside the group that reads the group's description, so placement
    /// never waits on (or blocks) the group consumer's polling thread.
    pub(crate) describer: rdkafka::consumer::BaseConsumer,
    pub(crate) timeout: std::time::Duration,
    /// Held by each placement, so two never open and close standbys at once.
    pub(crate) running: tokio::sync::Mutex<()>,
    /// Set by every rebalance callback, cleared by a placement that saw the group
    /// `Stable`: while set, the standby updater retries placement every second.
    pub(crate) pending: AtomicBool,
}

impl Member {
    pub(crate) fn assignment(&self) -> MutexGuard<'_, Assignment> {
        // Every update leaves the maps consistent, so a panic elsewhere does not matter.
        self.assignment
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the first error for the polling thread to return.
    pub(crate) fn fail(&self, error: Error) {
        log::error!("{error}");
        self.assignment().error.get_or_insert(error);
    }
}

impl Member {
    /// Whether input offsets travel inside each partition's changelog transaction.
    pub(crate) fn exactly_once(&self) -> bool {
        self.stores
            .iter()
            .any(|s| s.context().guarantee() == ProcessingGuarantee::ExactlyOnce)
    }

    /// Assigns `partition` in every store, one after the other, unless `still_wanted`
    /// says the assignment was withdrawn.
    pub(crate) async fn assign(
        &self,
        partition: Partition,
        still_wanted: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<PartitionRestores> {
        let mut restores = PartitionRestores::new();
        for store in &self.stores {
            let summary = store.assign_while(partition, still_wanted).await?;
            restores.insert(store.store_name().to_owned(), summary);
        }
        Ok(restores)
    }

    /// Revokes (or, `lost`, closes without committing) `partitions` in every store;
    /// every store is handled, the first error is returned.
    pub(crate) async fn revoke(
        &self,
        partitions: &[Partition],
        after: state_core::AfterRevoke,
        lost: bool,
    ) -> Result<()> {
        first_error(
            join_all(self.stores.iter().map(|store| async move {
                if lost {
                    store.lose(partitions).await
                } else {
                    store.revoke(partitions, after).await
                }
            }))
            .await,
        )
    }

    /// Commits every store; every store is tried, the first error is returned.
    pub(crate) async fn commit(&self) -> Result<()> {
        first_error(join_all(self.stores.iter().map(|store| store.commit())).await)
    }

    /// Closes every store's standbys and stores.
    pub(crate) async fn close(&self) -> Result<()> {
        first_error(join_all(self.stores.iter().map(|store| store.close())).await)
    }

    /// Whether any store has a standby to tail.
    pub(crate) fn has_standbys(&self) -> bool {
        self.stores.iter().any(|s| {
            !s.partitions_in(state_core::PartitionRole::Standby)
                .is_empty()
        })
    }

    /// One round of standby updates in every store.
    pub(crate) async fn update_standbys(&self) -> Result<u64> {
        let mut applied = 0;
        for store in &self.stores {
            applied += store.update_standbys().await?;
        }
        Ok(applied)
    }

    /// Under exactly-once, hands each of `offsets` (next input offset per partition) to
    /// its partition's store, so the store's next commit carries it in its transaction.
    pub(crate) async fn attach_source_offsets(
        &self,
        offsets: &[(Partition, Offset)],
        group: Option<rdkafka::consumer::ConsumerGroupMetadata>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let group: Arc<dyn std::any::Any + Send + Sync> = Arc::new(group.ok_or_else(|| {
            Error::internal(format!(
                "the group consumer of {} has no group metadata to commit offsets with",
                self.topic
            ))
        })?);
        for &(partition, offset) in offsets {
            for store in &self.stores {
                let source = state_core::SourceOffsets {
                    topic: self.topic.clone(),
                    offsets: BTreeMap::from([(partition, offset)]),
                    group: group.clone(),
                };
                store.set_source_offsets(partition, source).await;
            }
        }
        Ok(())
    }

    /// Opens and closes standbys as the policy places them: under
    /// [`StandbyPolicy::AllUnowned`] one for every partition not assigned here; under
    /// [`StandbyPolicy::Replicas`] those the group's current placement puts here.
    pub(crate) fn refresh_standbys(self: &Arc<Self>) {
        match self.standbys {
            StandbyPolicy::None => {}
            StandbyPolicy::AllUnowned => self.stand_by_all_unowned(),
            StandbyPolicy::Replicas(k) => {
                self.placement.pending.store(true, Ordering::SeqCst);
                let member = self.clone();
                self.runtime.spawn(async move {
                    if let Err(err) = member.place_replicas(k).await {
                        log::warn!("placing standbys of {}: {err}", member.topic);
                    }
                });
            }
        }
    }

    /// Opens the standbys the group's placement puts here and closes the others (keeping
    /// their directories). Does nothing while the group is rebalancing (placement stays
    /// pending and the standby updater tries again).
    pub(crate) async fn place_replicas(self: &Arc<Self>, k: usize) -> Result<()> {
        let _running = self.placement.running.lock().await;
        // Cleared first: a rebalance callback from now on sets it again.
        self.placement.pending.store(false, Ordering::SeqCst);
        let placed = self.place_replicas_now(k).await;
        if !matches!(placed, Ok(true)) {
            self.placement.pending.store(true, Ordering::SeqCst);
        }
        placed.map(drop)
    }

    /// One placement; `Ok(false)` when the group was not `Stable`.
    async fn place_replicas_now(self: &Arc<Self>, k: usize) -> Result<bool> {
        let member = self.clone();
        let view = tokio::task::spawn_blocking(move || {
            let placement = &member.placement;
            view::describe(
                &placement.describer,
                &placement.group_id,
                &member.topic,
                placement.timeout,
            )
        })
        .await
        .map_err(|err| Error::internal(format!("describing the group: {err}")))??;
        let Some(view) = view else {
            return Ok(false);
        };
        let assigned = self.assignment().assigned.clone();
        let wanted: BTreeSet<Partition> = view
            .standbys_on(&self.placement.identity, self.partitions, k)
            .difference(&assigned)
            .copied()
            .collect();
        let mut results = Vec::new();
        for store in &self.stores {
            let standing: BTreeSet<Partition> = store
                .partitions_in(state_core::PartitionRole::Standby)
                .into_iter()
                .collect();
            let lost: Vec<Partition> = standing.difference(&wanted).copied().collect();
            if !lost.is_empty() {
                log::info!(
                    "store {}: closing standbys {lost:?}, placed elsewhere now",
                    store.store_name()
                );
                results.push(store.remove_standbys(&lost).await);
            }
            for &partition in wanted.difference(&standing) {
                // Assigned here since the group was described: the assign opens it.
                if self.assignment().assigned.contains(&partition) {
                    continue;
                }
                results.push(store.add_standby(partition).await);
            }
        }
        first_error(results).map(|()| true)
    }

    /// Starts standbys for every partition not assigned here.
    fn stand_by_all_unowned(self: &Arc<Self>) {
        let unowned: Vec<Partition> = {
            let assignment = self.assignment();
            (0..self.partitions)
                .filter(|p| !assignment.assigned.contains(p))
                .collect()
        };
        let member = self.clone();
        self.runtime.spawn(async move {
            for partition in unowned {
                // Assigned again since: the assign promotes or opens it.
                if member.assignment().assigned.contains(&partition) {
                    continue;
                }
                for store in &member.stores {
                    if let Err(err) = store.add_standby(partition).await {
                        log::warn!(
                            "starting the standby of store {} partition {partition}: {err}",
                            store.store_name()
                        );
                    }
                }
            }
        });
    }
}
