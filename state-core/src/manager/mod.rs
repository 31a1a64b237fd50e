//! The store manager: the stores of one instance, one per partition, following the
//! partitions as a consumer group assigns and revokes them — Kafka Streams' task manager
//! and state directory, for one store.
//!
//! - **Assign**: open the local store if the directory holds one (or take over the
//!   partition's standby), restore the changelog tail, and only then hand the store out.
//!   Restores of several partitions run in parallel up to a bound.
//! - **Revoke**: commit, then close the store and keep its directory — a partition that
//!   comes back replays only what it missed — or keep it open as a standby.
//! - **Lose** (the group moved the partition on without a clean revoke): close without
//!   committing. The store holds only committed writes (uncommitted ones live in the
//!   logging buffer), so unlike Kafka Streams under exactly-once nothing has to be wiped.
//! - **Standby**: a copy of a partition owned elsewhere, tailing its changelog; promoted
//!   by a later assign, which then restores only what the standby lagged.
//!
//! The manager knows nothing about Kafka's group protocol; `changelog-kafka` wires it to
//! a consumer's rebalance callbacks.

mod active;
mod partitioned;
mod standby;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::join_all;
use tokio::sync::{Mutex as AsyncMutex, OnceCell, Semaphore};

pub use active::ActiveStore;
pub use partitioned::{PartitionRestores, PartitionedStores};
use standby::Standby;
pub use standby::StandbyLag;

use crate::restore::{FanOutRestoreListener, RestoreListener, RestoreProgress};
use crate::{
    ChangelogReader, CommitSummary, Error, ErrorKind, KeyValueStore, Partition, RestoreSummary,
    Result, StoreBuilder, StoreContext, TypedKeyValueStore, changelog_topic_name, open_or_rebuild,
};

/// What a partition's store is doing on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionRole {
    /// Assigned; restoring from the changelog. Not served yet.
    Restoring,
    /// Assigned, restored and served.
    Active,
    /// Not owned here; a standby copy tails the changelog.
    Standby,
    /// Closed; its local directory (durable backends) is kept for a later assignment.
    Closed,
}

/// What [`StoreManager::revoke`] does with a revoked partition's store after committing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRevoke {
    /// Close it, keeping the local directory.
    Close,
    /// Keep it open as a standby that tails the changelog.
    KeepAsStandby,
}

/// One partition's store in whatever role it has.
enum Slot<K, V> {
    Empty,
    Standby(Standby),
    // Boxed: a typed store is several times the size of the other variants.
    Active(Box<TypedKeyValueStore<K, V>>),
}

type SlotCell<K, V> = Arc<AsyncMutex<Slot<K, V>>>;

/// Default bound on restores running at once.
pub const DEFAULT_MAX_PARALLEL_RESTORES: usize = 4;

/// The stores of one [`StoreBuilder`] for the partitions an instance owns or stands by for.
///
/// Every partition has its own lock: an assign holds it for the whole restore, so
/// [`store`](Self::store) cannot hand out a store before its restore finished, and a
/// revoke arriving mid-restore waits for it. Operations on different partitions run
/// concurrently.
pub struct StoreManager<K, V> {
    builder: StoreBuilder<K, V>,
    context: StoreContext,
    progress: Arc<RestoreProgress>,
    restore_permits: Semaphore,
    slots: Mutex<BTreeMap<Partition, SlotCell<K, V>>>,
    roles: Mutex<BTreeMap<Partition, PartitionRole>>,
    reader: OnceCell<Arc<dyn ChangelogReader>>,
}

impl<K: 'static, V: 'static> StoreManager<K, V> {
    /// A manager building `builder`'s store for each partition with `context` (whose
    /// partition is replaced by each partition's own). The context's restore listener
    /// keeps receiving every restore, next to the manager's own
    /// [`progress`](Self::progress) counters.
    pub fn new(builder: StoreBuilder<K, V>, context: StoreContext) -> Self {
        let progress = Arc::new(RestoreProgress::new());
        let listeners: Vec<Arc<dyn RestoreListener>> =
            vec![progress.clone(), context.restore_listener().clone()];
        let context =
            context.with_restore_listener(Arc::new(FanOutRestoreListener::new(listeners)));
        Self {
            builder,
            context,
            progress,
            restore_permits: Semaphore::new(DEFAULT_MAX_PARALLEL_RESTORES),
            slots: Mutex::new(BTreeMap::new()),
            roles: Mutex::new(BTreeMap::new()),
            reader: OnceCell::new(),
        }
    }

    /// At most `restores` partitions restore at once (at least one).
    pub fn with_max_parallel_restores(mut self, restores: usize) -> Self {
        self.restore_permits = Semaphore::new(restores.max(1));
        self
    }

    /// The store name.
    pub fn store_name(&self) -> &str {
        self.builder.name()
    }

    /// The context partitions are built with.
    pub fn context(&self) -> &StoreContext {
        &self.context
    }

    /// Per-partition restore counters: records restored, remaining, rate.
    pub fn progress(&self) -> &Arc<RestoreProgress> {
        &self.progress
    }

    /// The role of `partition` here, if it ever had one.
    pub fn role(&self, partition: Partition) -> Option<PartitionRole> {
        lock(&self.roles).get(&partition).copied()
    }

    /// Every partition's role.
    pub fn roles(&self) -> BTreeMap<Partition, PartitionRole> {
        lock(&self.roles).clone()
    }

    /// Partitions in `role`, ascending.
    pub fn partitions_in(&self, role: PartitionRole) -> Vec<Partition> {
        lock(&self.roles)
            .iter()
            .filter(|(_, r)| **r == role)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Makes `partition` active here: takes over its standby or opens its local store,
    /// restores the changelog tail and only then serves it. Returns what was restored
    /// (`None` when it was already active or logging is disabled).
    pub async fn assign(&self, partition: Partition) -> Result<Option<RestoreSummary>> {
        self.assign_while(partition, || true).await
    }

    /// [`assign`](Self::assign), unless `still_wanted` — asked once the partition's lock
    /// is held, so no revoke can run in between — says the assignment was withdrawn
    /// meanwhile (a rebalance revoked the partition before its restore could start);
    /// then nothing is opened and `Ok(None)` is returned.
    pub async fn assign_while(
        &self,
        partition: Partition,
        still_wanted: impl FnOnce() -> bool + Send,
    ) -> Result<Option<RestoreSummary>> {
        let mut slot = self.slot(partition).lock_owned().await;
        if !still_wanted() {
            return Ok(None);
        }
        let standby = match std::mem::replace(&mut *slot, Slot::Empty) {
            Slot::Active(store) => {
                *slot = Slot::Active(store);
                return Ok(None);
            }
            Slot::Standby(standby) => Some(standby.into_store()),
            Slot::Empty => None,
        };
        self.set_role(partition, PartitionRole::Restoring);
        let built = async {
            let _permit = self.restore_permits.acquire().await.map_err(|_| {
                Error::new(ErrorKind::Closed, "store manager restore permits closed")
            })?;
            let context = self.context.for_partition(partition);
            let (store, rebuilt) = match standby {
                Some(store) => (store, None),
                None => open_or_rebuild(
                    self.builder.supplier().as_ref(),
                    &context.store_dir(self.builder.name())?,
                )?,
            };
            self.builder.build_on(store, rebuilt, &context).await
        }
        .await;
        match built {
            Ok(store) => {
                let summary = store.restore_summary().cloned();
                *slot = Slot::Active(Box::new(store));
                self.set_role(partition, PartitionRole::Active);
                Ok(summary)
            }
            Err(err) => {
                self.set_role(partition, PartitionRole::Closed);
                Err(err.context(format!(
                    "assigning partition {partition} of store {}",
                    self.store_name()
                )))
            }
        }
    }

    /// [`assign`](Self::assign) for several partitions, in parallel up to the restore
    /// bound; one result per partition, in the order given.
    pub async fn assign_all(
        &self,
        partitions: &[Partition],
    ) -> Vec<(Partition, Result<Option<RestoreSummary>>)> {
        join_all(
            partitions
                .iter()
                .map(|&p| async move { (p, self.assign(p).await) }),
        )
        .await
    }

    /// Commits each of `partitions` that is active and then closes its store (keeping
    /// the directory) or keeps it as a standby. Partitions that are not active are left
    /// as they are. Every partition is handled even when one fails; the first error is
    /// returned. A store whose commit failed is still consistent — it holds its last
    /// commit, and the changelog holds the rest — so it is closed or kept all the same.
    pub async fn revoke(&self, partitions: &[Partition], after: AfterRevoke) -> Result<()> {
        let mut first_error = None;
        for &partition in partitions {
            let Some(cell) = self.existing_slot(partition) else {
                continue;
            };
            let mut slot = cell.lock_owned().await;
            let Slot::Active(mut store) = std::mem::replace(&mut *slot, Slot::Empty) else {
                continue;
            };
            if let Err(err) = store.commit().await {
                first_error.get_or_insert(err.context(format!(
                    "committing revoked partition {partition} of store {}",
                    self.store_name()
                )));
            }
            let store = store.into_committed();
            match after {
                AfterRevoke::KeepAsStandby => {
                    *slot = Slot::Standby(Standby::new(store));
                    self.set_role(partition, PartitionRole::Standby);
                }
                AfterRevoke::Close => {
                    self.set_role(partition, PartitionRole::Closed);
                    if let Err(err) = store.close() {
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Closes `partitions` without committing, for partitions the group already gave to
    /// someone else (Kafka's "partitions lost"): committing would race the new owner.
    /// Uncommitted writes are dropped; the store keeps its last commit.
    pub async fn lose(&self, partitions: &[Partition]) -> Result<()> {
        self.close_where(partitions, |slot| match slot {
            Slot::Active(store) => Ok(store.into_committed()),
            other => Err(other),
        })
        .await
    }

    /// Commits every active store. Every store is tried; the first error is returned.
    pub async fn commit(&self) -> Result<Vec<(Partition, CommitSummary)>> {
        let mut committed = Vec::new();
        let mut first_error = None;
        for (partition, cell) in self.all_slots() {
            let mut slot = cell.lock().await;
            if let Slot::Active(store) = &mut *slot {
                match store.commit().await {
                    Ok(summary) => committed.push((partition, summary)),
                    Err(err) => {
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        first_error.map_or(Ok(committed), Err)
    }

    /// The store of active `partition`, waiting while it restores; `None` when the
    /// partition is not active here.
    pub async fn store(&self, partition: Partition) -> Option<ActiveStore<K, V>> {
        let slot = self.existing_slot(partition)?.lock_owned().await;
        ActiveStore::of(slot)
    }

    /// The store of active `partition` if it is free right now; `None` while it
    /// restores, commits or is not active here.
    pub fn try_store(&self, partition: Partition) -> Option<ActiveStore<K, V>> {
        let slot = self.existing_slot(partition)?.try_lock_owned().ok()?;
        ActiveStore::of(slot)
    }

    /// Starts a standby for `partition` unless it is active or standing by already: opens
    /// the local store (a kept directory is reused); the next
    /// [`update_standbys`](Self::update_standbys) catches it up.
    pub async fn add_standby(&self, partition: Partition) -> Result<()> {
        if !self.builder.logging_enabled() {
            return Err(Error::invalid_input(format!(
                "store {} has logging disabled: a standby needs a changelog to tail",
                self.store_name()
            )));
        }
        let mut slot = self.slot(partition).lock_owned().await;
        if !matches!(*slot, Slot::Empty) {
            return Ok(());
        }
        let dir = self
            .context
            .for_partition(partition)
            .store_dir(self.store_name())?;
        let (store, _) = open_or_rebuild(self.builder.supplier().as_ref(), &dir)?;
        *slot = Slot::Standby(Standby::new(store));
        self.set_role(partition, PartitionRole::Standby);
        Ok(())
    }

    /// Closes the standbys of `partitions` (keeping their directories).
    pub async fn remove_standbys(&self, partitions: &[Partition]) -> Result<()> {
        self.close_where(partitions, |slot| match slot {
            Slot::Standby(standby) => Ok(standby.into_store()),
            other => Err(other),
        })
        .await
    }

    /// Closes the store of each of `partitions` whose slot `take` gives one up (a slot it
    /// hands back stays as it was). Every partition is handled; the first error is
    /// returned.
    async fn close_where(
        &self,
        partitions: &[Partition],
        take: impl Fn(Slot<K, V>) -> std::result::Result<Arc<dyn KeyValueStore>, Slot<K, V>>,
    ) -> Result<()> {
        let mut first_error = None;
        for &partition in partitions {
            let Some(cell) = self.existing_slot(partition) else {
                continue;
            };
            let mut slot = cell.lock_owned().await;
            match take(std::mem::replace(&mut *slot, Slot::Empty)) {
                Ok(store) => {
                    self.set_role(partition, PartitionRole::Closed);
                    if let Err(err) = store.close() {
                        first_error.get_or_insert(err);
                    }
                }
                Err(other) => *slot = other,
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Applies to every idle standby one batch of what its changelog holds beyond it
    /// (the first call per standby catches it up fully), waiting at most the changelog
    /// reader's poll timeout. Returns the records applied; a standby that fails is logged
    /// and retried from its position on the next call.
    pub async fn update_standbys(&self) -> Result<u64> {
        let standbys: Vec<_> = self
            .all_slots()
            .into_iter()
            .filter(|(p, _)| self.role(*p) == Some(PartitionRole::Standby))
            .collect();
        if standbys.is_empty() {
            return Ok(0);
        }
        let reader = self.reader().await?;
        let options = self.builder.restore_options(&self.context);
        let applied = join_all(standbys.into_iter().map(|(partition, cell)| {
            let (reader, options) = (reader.clone(), &options);
            async move {
                // A standby being promoted or closed is skipped, not waited for.
                let Ok(mut slot) = cell.try_lock_owned() else {
                    return 0;
                };
                let Slot::Standby(standby) = &mut *slot else {
                    return 0;
                };
                match standby.poll(reader.as_ref(), partition, options).await {
                    Ok(applied) => applied,
                    Err(err) => {
                        log::warn!(
                            "standby of store {} partition {partition} failed to update, retrying from its position: {err}",
                            self.store_name()
                        );
                        0
                    }
                }
            }
        }))
        .await;
        Ok(applied.into_iter().sum())
    }

    /// How far each standby lags its changelog now.
    pub async fn standby_lags(&self) -> Result<Vec<StandbyLag>> {
        let reader = self.reader().await?;
        let mut lags = Vec::new();
        for (partition, cell) in self.all_slots() {
            let (next_offset, applied) = match &*cell.lock().await {
                Slot::Standby(standby) => (standby.next_offset(partition)?, standby.applied()),
                _ => continue,
            };
            let end_offset = reader.offsets(partition).await?.end;
            lags.push(StandbyLag {
                partition,
                next_offset,
                end_offset,
                lag: u64::try_from(end_offset - next_offset).unwrap_or(0),
                applied,
            });
        }
        Ok(lags)
    }

    /// Commits and closes every active store and closes every standby, keeping the
    /// directories.
    pub async fn close(&self) -> Result<()> {
        let partitions: Vec<Partition> = self.all_slots().into_iter().map(|(p, _)| p).collect();
        let revoked = self.revoke(&partitions, AfterRevoke::Close).await;
        let standbys = self.remove_standbys(&partitions).await;
        revoked.and(standbys)
    }

    async fn reader(&self) -> Result<Arc<dyn ChangelogReader>> {
        self.reader
            .get_or_try_init(|| async {
                let name = self.store_name();
                let changelog = self.context.changelog_for(name)?;
                let topic = changelog_topic_name(self.context.application_id(), name);
                changelog
                    .reader(&topic, self.context.guarantee().isolation())
                    .await
            })
            .await
            .cloned()
    }

    fn slot(&self, partition: Partition) -> SlotCell<K, V> {
        lock(&self.slots)
            .entry(partition)
            .or_insert_with(|| Arc::new(AsyncMutex::new(Slot::Empty)))
            .clone()
    }

    fn existing_slot(&self, partition: Partition) -> Option<SlotCell<K, V>> {
        lock(&self.slots).get(&partition).cloned()
    }

    fn all_slots(&self) -> Vec<(Partition, SlotCell<K, V>)> {
        lock(&self.slots)
            .iter()
            .map(|(p, cell)| (*p, cell.clone()))
            .collect()
    }

    fn set_role(&self, partition: Partition, role: PartitionRole) {
        lock(&self.roles).insert(partition, role);
    }
}

/// The maps behind these locks stay whole across a panic elsewhere, so keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
