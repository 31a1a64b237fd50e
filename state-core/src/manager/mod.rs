//! The store manager: every store of one instance, for every partition it owns or stands
//! by for, following the partitions as a consumer group moves them — Kafka Streams' task
//! manager and state directory.
//!
//! A manager has a list of stores ([`StoreManager::add_store`], e.g. `rewards` and
//! `visits`); each partition gets one of each, opened, restored, served, committed and
//! closed together. Every store of every partition logs through **one changelog sink**,
//! so one commit is one sink commit — under exactly-once one transaction holding every
//! store's records and the input offsets (Kafka Streams' exactly-once v2) — after which
//! each store writes its interval with its position.
//!
//! ## One state machine per partition
//!
//! The manager is the one owner of a partition's lifecycle; a consumer group only
//! reports events ([`assign`](StoreManager::assign), [`revoke`](StoreManager::revoke),
//! [`lose`](StoreManager::lose), [`set_standbys`](StoreManager::set_standbys)) and reads
//! back which partitions are ready ([`take_ready`](StoreManager::take_ready)).
//!
//! Every change of a partition's state goes through one function, which refuses any
//! move this table does not list with an error naming the state and the event (the
//! table is the lifecycle's data; a test checks this copy against it). A revoke or a
//! loss waits for a running commit, so `Committing` moves only back to `Active`.
//!
//! | from | event | to |
//! | --- | --- | --- |
//! | `Closed` | assign | `Restoring` |
//! | `Lost` | assign | `Restoring` |
//! | `Standby` | assign | `Restoring` |
//! | `Revoking` | assign | `Restoring` |
//! | `Restoring` | assign | `Restoring` |
//! | `Restoring` | restored | `Active` |
//! | `Restoring` | restore failed | `Closed` |
//! | `Active` | commit starts | `Committing` |
//! | `Committing` | commit ends | `Active` |
//! | `Restoring` | revoke | `Revoking` |
//! | `Active` | revoke | `Revoking` |
//! | `Revoking` | revoked, kept as standby | `Standby` |
//! | `Revoking` | revoked, closed | `Closed` |
//! | `Restoring` | lose | `Lost` |
//! | `Active` | lose | `Lost` |
//! | `Closed` | standby opened | `Standby` |
//! | `Lost` | standby opened | `Standby` |
//! | `Standby` | standby closed | `Closed` |
//!
//! Events that change nothing: an assign of a partition already served; a revoke or a
//! loss of one not owned here; and, when an assignment came meanwhile, the end of a
//! revoke, a standby opening or closing (the assignment keeps its state).
//!
//! - **Assign** bumps the partition's epoch and returns a restore job (spawn it, or
//!   await it): it opens each store (a kept directory is reused, a standby is taken
//!   over), waits until the input's last transaction is settled
//!   ([`ChangelogSink::settle_input`]), restores each changelog tail and only then makes
//!   the partition `Active` and ready. Restores of several partitions run in parallel
//!   up to a bound.
//! - **Commit** commits every active partition at once (a commit of some alone would
//!   put the others' records in the transaction without their input offsets).
//! - **Revoke** commits (all active partitions, for the same reason), then closes the
//!   revoked partitions' stores keeping their directories — a partition that comes back
//!   replays only what it missed — or keeps them as standbys. A revoke that arrives
//!   mid-restore cancels the restore at its next batch.
//! - **Lose** (the group moved the partition on without a clean revoke) closes without
//!   committing; the sink's open interval is aborted, so under exactly-once the other
//!   partitions append their uncommitted records again at the next commit. The stores
//!   hold only committed writes (uncommitted ones live in the logging buffers), so unlike
//!   Kafka Streams under exactly-once nothing has to be wiped.
//! - **Standby**: a copy of a partition owned elsewhere, tailing its changelogs;
//!   promoted by a later assign, which then restores only what the standby lagged.
//!
//! Each partition's stores sit behind one lock, held for a whole restore, one record's
//! processing ([`ActivePartition`]) or one commit, so a store is never served before its
//! restore ends. Commits, revokes and losses run one at a time and are the only
//! operations that hold several partitions at once.
//!
//! The manager knows nothing about Kafka's group protocol; `changelog-kafka` translates
//! a consumer's rebalance callbacks into these events.

mod assign;
mod commit;
mod handle;
mod lifecycle;
mod open;
mod query;
mod snapshots;
mod standby;
mod standbys;
mod state;
mod task;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OnceCell, Semaphore};

pub use assign::{ReadyPartition, RestoreJob};
pub use commit::ManagerCommit;
pub use handle::StoreHandle;
pub use query::{PartitionQuery, QueryLag, ReadOnlyStore, Staleness};
pub use standby::StandbyLag;
pub use state::PartitionState;
use state::Table;
pub use task::ActivePartition;

use crate::builder::StoreRecipe;
use crate::restore::{FanOutRestoreListener, RestoreListener, RestoreProgress, RestoreSummary};
use crate::snapshot::{SnapshotPolicy, SnapshotUploader};
use crate::{
    ChangelogReader, ChangelogSink, Error, Partition, Result, SinkOptions, StoreBuilder,
    StoreContext,
};
use snapshots::Snapshots;

/// Default bound on restores running at once.
pub const DEFAULT_MAX_PARALLEL_RESTORES: usize = 4;

/// What each store of a partition restored when the partition was assigned, by store
/// name (`None`: logging disabled, nothing to restore).
pub type PartitionRestores = BTreeMap<String, Option<RestoreSummary>>;

/// What [`StoreManager::revoke`] does with a revoked partition's stores after committing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRevoke {
    /// Close them, keeping the local directories.
    Close,
    /// Keep them open as standbys that tail the changelogs.
    KeepAsStandby,
}

/// Distinguishes managers, so a store handle is used only with its own.
static NEXT_MANAGER: AtomicU64 = AtomicU64::new(1);

/// One store of the manager's list and what it shares across partitions.
struct Registered {
    recipe: StoreRecipe,
    /// The changelog topic, ensured once (`None` without logging).
    topic: OnceCell<Option<String>>,
    reader: OnceCell<Arc<dyn ChangelogReader>>,
}

/// The stores of one instance for the partitions it owns or stands by for (see the
/// [module docs](self)).
///
/// # Example
///
/// A consumer group reports assignments and revocations (`statestore::kafka`'s
/// `StatefulConsumer` does, with the facade's `kafka` feature); here they are reported
/// by hand, on the in-process changelog. `supplier` makes a backend's store, for example
/// `statestore::Stores::in_memory_key_value_store`.
///
/// ```
/// use std::path::Path;
/// use std::sync::Arc;
///
/// use state_core::changelog::in_memory::InMemoryChangelog;
/// use state_core::{
///     AfterRevoke, KeyValueBytesStoreSupplier, PartitionState, ProcessingGuarantee, Result,
///     Serdes, SinkOptions, StoreBuilder, StoreContext, StoreManager,
/// };
///
/// async fn serve<S>(supplier: impl Fn(&str) -> S, state_dir: &Path) -> Result<()>
/// where
///     S: KeyValueBytesStoreSupplier + 'static,
/// {
///     let changelog = InMemoryChangelog::new();
///     // Partition 0 stands for every partition: each gets its own stores.
///     let context = StoreContext::new("shop", 0, 6, state_dir)?
///         .with_changelog(Arc::new(changelog.clone()));
///     let mut manager = StoreManager::new(context).with_max_parallel_restores(2);
///     let rewards = manager.add_store(StoreBuilder::new(
///         supplier("rewards"), Serdes::string(), Serdes::f64()))?;
///     // Every store of every partition logs through one sink.
///     let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, "shop-1");
///     manager.use_sink(Arc::new(changelog.sink_now(&options)?))?;
///     let manager = Arc::new(manager);
///
///     for (_, restored) in manager.assign_all(&[1, 4]).await {
///         restored?; // the partition's stores, restored from their changelogs
///     }
///     if let Some(partition) = manager.active(4).await {
///         partition.store(&rewards)?.put(&"alice".to_owned(), &12.5)?;
///     }
///     manager.commit().await?; // every store of every partition at once
///     manager.revoke(&[4], AfterRevoke::Close).await?; // committed, closed, directory kept
///     assert_eq!(manager.state(4), Some(PartitionState::Closed));
///     assert_eq!(manager.state(1), Some(PartitionState::Active));
///     manager.close().await
/// }
/// ```
pub struct StoreManager {
    id: u64,
    context: StoreContext,
    stores: Vec<Registered>,
    progress: Arc<RestoreProgress>,
    restore_permits: Semaphore,
    table: Table,
    /// Partitions whose restore ended since [`take_ready`](Self::take_ready) last ran.
    ready: Mutex<Vec<(u64, ReadyPartition)>>,
    /// The one sink every logged store writes through.
    sink: OnceCell<Arc<dyn ChangelogSink>>,
    /// Held by every commit, revoke and loss, and by each [`ActivePartition`] being
    /// handed out (see `commit`).
    commits: AsyncMutex<()>,
    /// When and where partitions are snapshotted, if they are.
    snapshots: Option<Snapshots>,
}

impl StoreManager {
    /// A manager with no stores yet, building them with `context` (whose partition is
    /// replaced by each partition's own). The context's restore listener keeps receiving
    /// every restore, next to the manager's own [`progress`](Self::progress) counters.
    pub fn new(context: StoreContext) -> Self {
        let progress = Arc::new(RestoreProgress::new());
        let listeners: Vec<Arc<dyn RestoreListener>> =
            vec![progress.clone(), context.restore_listener().clone()];
        let context =
            context.with_restore_listener(Arc::new(FanOutRestoreListener::new(listeners)));
        Self {
            id: NEXT_MANAGER.fetch_add(1, Ordering::Relaxed),
            context,
            stores: Vec::new(),
            progress,
            restore_permits: Semaphore::new(DEFAULT_MAX_PARALLEL_RESTORES),
            table: Table::default(),
            ready: Mutex::default(),
            sink: OnceCell::new(),
            commits: AsyncMutex::new(()),
            snapshots: None,
        }
    }

    /// Snapshots the stores of active partitions as `policy` says (after commits, on a
    /// clean revoke, on close) through `uploader`, whose
    /// [`run`](SnapshotUploader::run) the application spawns; and restores each assigned
    /// store from its newest usable snapshot in the uploader's store when that is ahead
    /// of the local copy ([`StoreContext::with_snapshots`]). A commit waits only for the
    /// local checkpoints ([`ManagerCommit::snapshot_pause`]); stores whose backend takes
    /// no checkpoints are not snapshotted.
    pub fn with_snapshots(mut self, policy: SnapshotPolicy, uploader: SnapshotUploader) -> Self {
        self.context = self.context.with_snapshots(uploader.store().clone());
        let application = self.context.application_id().to_owned();
        self.snapshots = Some(Snapshots {
            policy,
            scratch: self
                .context
                .state_dir()
                .join(&application)
                .join(".snapshots"),
            uploader,
            application,
        });
        self
    }

    /// At most `restores` partitions restore at once (at least one).
    pub fn with_max_parallel_restores(mut self, restores: usize) -> Self {
        self.restore_permits = Semaphore::new(restores.max(1));
        self
    }

    /// Adds a store every partition gets; returns the handle that reaches it in an
    /// [`ActivePartition`]. Add every store before the first assignment.
    ///
    /// The name must be new to this manager and, with the application id, make a valid
    /// changelog topic name (`InvalidInput` otherwise).
    pub fn add_store<K: 'static, V: 'static>(
        &mut self,
        builder: StoreBuilder<K, V>,
    ) -> Result<StoreHandle<K, V>> {
        let name = builder.name().to_owned();
        crate::changelog_topic(self.context.application_id(), &name)?;
        if self.stores.iter().any(|s| s.recipe.name() == name) {
            return Err(Error::invalid_input(format!(
                "store {name} is already in this store manager"
            )));
        }
        self.stores.push(Registered {
            recipe: builder.recipe(),
            topic: OnceCell::new(),
            reader: OnceCell::new(),
        });
        Ok(StoreHandle {
            manager: self.id,
            index: self.stores.len() - 1,
            name: name.into(),
            keys: builder.key_serde().clone(),
            values: builder.value_serde().clone(),
        })
    }

    /// Logs every store through `sink` — a consumer group's own, which commits input
    /// offsets with the group's identity — instead of one the manager would make from the
    /// context's changelog. Must come before the first store opens; its guarantee must
    /// be the context's.
    pub fn use_sink(&self, sink: Arc<dyn ChangelogSink>) -> Result<()> {
        if sink.guarantee() != self.context.guarantee() {
            return Err(Error::invalid_input(format!(
                "a {} sink for a store manager whose context is {}",
                sink.guarantee().as_str(),
                self.context.guarantee().as_str()
            )));
        }
        self.sink
            .set(sink)
            .map_err(|_| Error::invalid_input("the store manager already has its changelog sink"))
    }

    /// The names of the stores every partition gets, in the order they were added.
    pub fn store_names(&self) -> Vec<&str> {
        self.stores.iter().map(|s| s.recipe.name()).collect()
    }

    /// The context partitions are built with.
    pub fn context(&self) -> &StoreContext {
        &self.context
    }

    /// Per store partition restore counters: records restored, remaining, rate.
    pub fn progress(&self) -> &Arc<RestoreProgress> {
        &self.progress
    }

    /// Where `partition` stands here, if it ever stood anywhere.
    pub fn state(&self, partition: Partition) -> Option<PartitionState> {
        self.table.state(partition)
    }

    /// Every partition's state.
    pub fn states(&self) -> BTreeMap<Partition, PartitionState> {
        self.table.states()
    }

    /// Partitions in `state`, ascending.
    pub fn partitions_in(&self, state: PartitionState) -> Vec<Partition> {
        self.table
            .states()
            .into_iter()
            .filter(|(_, s)| *s == state)
            .map(|(p, _)| p)
            .collect()
    }

    /// Partitions assigned here (restoring or served), ascending.
    pub fn owned(&self) -> Vec<Partition> {
        self.table
            .states()
            .into_iter()
            .filter(|(_, s)| s.is_owned())
            .map(|(p, _)| p)
            .collect()
    }

    /// Partitions served here (restored; committing ones included), ascending.
    pub fn served(&self) -> Vec<Partition> {
        self.table
            .states()
            .into_iter()
            .filter(|(_, s)| matches!(s, PartitionState::Active | PartitionState::Committing))
            .map(|(p, _)| p)
            .collect()
    }

    /// Whether a partition is restoring.
    pub fn is_restoring(&self) -> bool {
        self.table
            .states()
            .values()
            .any(|s| *s == PartitionState::Restoring)
    }

    /// The stores of active `partition`, waiting while it restores or commits; `None`
    /// when the partition is not active here.
    pub async fn active(&self, partition: Partition) -> Option<ActivePartition> {
        // The gate: no commit may start between the state check and the lock, or the
        // commit could miss a partition written after it looked (see `commit`).
        let _gate = self.commits.lock().await;
        if self.table.state(partition) != Some(PartitionState::Active) {
            return None;
        }
        let slot = self.table.cell(partition).lock_owned().await;
        ActivePartition::of(slot, self.id)
    }

    /// The stores of active `partition` if they are free right now; `None` while it
    /// restores, commits, or is not active here.
    pub fn try_active(&self, partition: Partition) -> Option<ActivePartition> {
        let _gate = self.commits.try_lock().ok()?;
        if self.table.state(partition) != Some(PartitionState::Active) {
            return None;
        }
        let slot = self.table.cell(partition).try_lock_owned().ok()?;
        ActivePartition::of(slot, self.id)
    }

    /// Commits every active partition and closes every store and standby, keeping the
    /// directories.
    pub async fn close(&self) -> Result<()> {
        let owned = self.owned();
        let revoked = self
            .give_up(&owned, AfterRevoke::Close, snapshots::Trigger::Close)
            .await;
        let standbys = self.set_standbys(&Default::default()).await;
        revoked.and(standbys)
    }

    /// The sink every logged store writes through: the one given to
    /// [`use_sink`](Self::use_sink), or one made from the context's changelog on first
    /// use (transactional id `<application.id>-<random>` under exactly-once).
    async fn sink(&self) -> Result<&Arc<dyn ChangelogSink>> {
        self.sink
            .get_or_try_init(|| async {
                let logged = self
                    .stores
                    .iter()
                    .find(|s| s.recipe.logging_enabled())
                    .map_or("(none)", |s| s.recipe.name());
                let changelog = self.context.changelog_for(logged)?;
                let id = format!(
                    "{}-{}",
                    self.context.application_id(),
                    random_suffix(self.id)
                );
                changelog
                    .sink(&SinkOptions::new(self.context.guarantee(), id))
                    .await
            })
            .await
    }

    /// Whether any store logs to a changelog.
    fn any_logged(&self) -> bool {
        self.stores.iter().any(|s| s.recipe.logging_enabled())
    }
}

impl Registered {
    /// The changelog topic, created on first use.
    async fn topic(&self, context: &StoreContext) -> Result<Option<&str>> {
        let topic = self
            .topic
            .get_or_try_init(|| self.recipe.ensure_topic(context))
            .await?;
        Ok(topic.as_deref())
    }

    /// The changelog reader, created on first use.
    async fn reader(
        &self,
        context: &StoreContext,
        topic: &str,
    ) -> Result<&Arc<dyn ChangelogReader>> {
        self.reader
            .get_or_try_init(|| async {
                context
                    .changelog_for(self.recipe.name())?
                    .reader(topic, crate::RESTORE_ISOLATION)
                    .await
            })
            .await
    }
}

/// 64 bits unique to this process and manager, for a transactional id nobody else has.
fn random_suffix(manager: u64) -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one((std::process::id(), manager));
    format!("{random:016x}")
}
