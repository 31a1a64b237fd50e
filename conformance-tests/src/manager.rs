//! The store manager on one backend and the in-process changelog: partitions are
//! served only once restored, a revoked partition keeps its directory and replays only
//! the tail when it comes back, a promoted standby replays only its lag, a lost
//! partition drops uncommitted writes, and restores run in parallel up to the bound.
//! The state machine's transitions and races are in `manager_races`, commits of several
//! stores in `manager_eos`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    AfterRevoke, ChangelogSink, InputBinding, Offset, Partition, PartitionRestores, PartitionState,
    ProcessingGuarantee, RestoreListener, RestoreOptions, RestorePhase, RestoreTarget, Result,
    Serdes, SinkOptions, StoreBuilder, StoreContext, StoreHandle, StoreManager,
};
use tempfile::TempDir;
use test_support::eventually;

use crate::harness::{BackendFactory, block_on};

pub(crate) const PARTITIONS: i32 = 6;
pub(crate) const STORE: &str = "rewards";
pub(crate) const VISITS: &str = "visits";
pub(crate) const APP: &str = "app";

pub(crate) type Totals = BTreeMap<String, i64>;

/// One instance: its own state directory, sharing the changelog with the others.
pub(crate) struct Instance {
    pub(crate) manager: Arc<StoreManager>,
    pub(crate) rewards: StoreHandle<String, i64>,
    pub(crate) visits: Option<StoreHandle<String, i64>>,
    _dir: TempDir,
}

/// How [`instance_with`] builds an instance.
#[derive(Default)]
pub(crate) struct Setup {
    pub(crate) listener: Option<Arc<dyn RestoreListener>>,
    pub(crate) parallel_restores: Option<usize>,
    /// A second store, `visits`, next to `rewards`.
    pub(crate) visits: bool,
    /// The sink every store logs through; by default one of the changelog bound to
    /// [`input`], with a transactional id of its own.
    pub(crate) sink: Option<Arc<dyn ChangelogSink>>,
    /// Wraps each store's supplier (crash points).
    pub(crate) wrap: Option<crate::crash_points::SupplierWrap>,
    /// Records per restore batch (default: the backend's).
    pub(crate) batch_size: Option<usize>,
    /// Snapshots taken by this policy through this uploader, and restores from them.
    pub(crate) snapshots: Option<(state_core::SnapshotPolicy, state_core::SnapshotUploader)>,
}

/// The input the instances' sinks commit offsets for.
pub(crate) fn input() -> InputBinding {
    InputBinding::new(APP, "purchases")
}

pub(crate) fn instance(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
) -> Instance {
    instance_with(backend, changelog, guarantee, Setup::default())
}

pub(crate) fn instance_with(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
    setup: Setup,
) -> Instance {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = tempfile::tempdir().unwrap();
    let mut context = StoreContext::new(APP, 0, PARTITIONS, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()))
        .with_guarantee(guarantee);
    if let Some(listener) = setup.listener {
        context = context.with_restore_listener(listener);
    }
    if let Some(batch_size) = setup.batch_size {
        context = context.with_restore_options(RestoreOptions {
            batch_size: Some(batch_size),
            ..RestoreOptions::default()
        });
    }
    let mut manager = StoreManager::new(context);
    if let Some(parallel) = setup.parallel_restores {
        manager = manager.with_max_parallel_restores(parallel);
    }
    if let Some((policy, uploader)) = setup.snapshots {
        manager = manager.with_snapshots(policy, uploader);
    }
    let supplier = |name: &str| {
        let supplier = backend.supplier(name);
        match &setup.wrap {
            Some(wrap) => wrap(supplier),
            None => supplier,
        }
    };
    let rewards = manager
        .add_store(StoreBuilder::new(
            supplier(STORE),
            Serdes::string(),
            Serdes::i64(),
        ))
        .unwrap();
    let visits = setup.visits.then(|| {
        manager
            .add_store(StoreBuilder::new(
                supplier(VISITS),
                Serdes::string(),
                Serdes::i64(),
            ))
            .unwrap()
    });
    let sink = setup.sink.unwrap_or_else(|| {
        let id = format!("{APP}-instance-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let options = SinkOptions::new(guarantee, id).with_source(input());
        Arc::new(changelog.sink_now(&options).unwrap())
    });
    manager.use_sink(sink).unwrap();
    Instance {
        manager: Arc::new(manager),
        rewards,
        visits,
        _dir: dir,
    }
}

impl Instance {
    /// Assigns `partitions` and waits for their restores; what the rewards store restored
    /// of each, in order (`None`: withdrawn or already active).
    pub(crate) fn assign(&self, partitions: &[Partition]) -> Vec<Option<u64>> {
        block_on(self.manager.assign_all(partitions))
            .into_iter()
            .map(|(p, result)| {
                let restores = result.unwrap_or_else(|err| panic!("assigning {p}: {err}"));
                restores.map(|r| restored_by(&r, STORE))
            })
            .collect()
    }

    /// Assigns one partition; what its rewards store restored.
    pub(crate) fn assign_one(&self, partition: Partition) -> u64 {
        self.assign(&[partition])[0].unwrap_or_else(|| panic!("partition {partition} withdrawn"))
    }

    /// Adds `amount` to `count` customers' totals (and visits) in `partition` as the
    /// processing of input record `offset`, without committing.
    pub(crate) fn process(&self, partition: Partition, offset: Offset, count: usize, amount: i64) {
        block_on(async {
            let mut active = self.manager.active(partition).await.expect("active");
            let rewards = active.store(&self.rewards).unwrap();
            let visits = self.visits.as_ref().map(|v| active.store(v).unwrap());
            for c in 0..count {
                let key = customer(partition, c);
                let total = rewards.get(&key).unwrap().unwrap_or(0);
                rewards.put(&key, &(total + amount)).unwrap();
                if let Some(visits) = &visits {
                    let seen = visits.get(&key).unwrap().unwrap_or(0);
                    visits.put(&key, &(seen + 1)).unwrap();
                }
            }
            drop((rewards, visits));
            active.record_processed(offset + 1);
        });
    }

    /// [`process`](Self::process), then a commit of the instance.
    pub(crate) fn add(&self, partition: Partition, count: usize, amount: i64) {
        self.process(partition, 0, count, amount);
        block_on(self.manager.commit()).unwrap();
    }

    /// `partition`'s rewards totals (uncommitted writes included).
    pub(crate) fn totals(&self, partition: Partition) -> Totals {
        self.totals_of(partition, &self.rewards)
    }

    pub(crate) fn totals_of(
        &self,
        partition: Partition,
        store: &StoreHandle<String, i64>,
    ) -> Totals {
        let active = block_on(self.manager.active(partition)).expect("active");
        let store = active.store(store).unwrap();
        store.all().unwrap().map(Result::unwrap).collect()
    }
}

pub(crate) fn customer(partition: Partition, c: usize) -> String {
    format!("p{partition}-customer-{c:04}")
}

pub(crate) fn expected(partition: Partition, count: usize, total: i64) -> Totals {
    (0..count)
        .map(|c| (customer(partition, c), total))
        .collect()
}

pub(crate) fn restored_by(restores: &PartitionRestores, store: &str) -> u64 {
    restores
        .get(store)
        .and_then(Option::as_ref)
        .map_or(0, |s| s.restored)
}

/// A new owner restores every partition before serving it; an `active()` request that
/// arrives mid-restore waits and then sees the full state; the progress counters say
/// what each partition restored.
pub fn assign_restores_before_serving(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let first = instance(backend, &changelog, guarantee);
    for p in 0..PARTITIONS {
        first.assign_one(p);
        first.add(p, 300, 5);
    }
    let second = instance(backend, &changelog, guarantee);
    assert!(
        second.manager.try_active(0).is_none(),
        "served before assignment"
    );
    block_on(async {
        let manager = &second.manager;
        let (assigned, early) = futures::join!(manager.assign_all(&[0, 1, 2, 3, 4, 5]), async {
            // Asked while partition 3 restores (or before it starts): must wait for it.
            let active = manager.active(3).await;
            active.map(|a| a.store(&second.rewards).unwrap().all().unwrap().count())
        });
        for (p, result) in assigned {
            let restores = result.unwrap().unwrap();
            assert_eq!(restored_by(&restores, STORE), 300, "partition {p}");
        }
        if let Some(seen) = early {
            assert_eq!(
                seen, 300,
                "partition 3 was served before its restore finished"
            );
        }
    });
    for p in 0..PARTITIONS {
        assert_eq!(second.totals(p), expected(p, 300, 5));
        let progress = second.manager.progress().get(STORE, p).unwrap();
        assert_eq!(progress.phase, RestorePhase::Done);
        assert_eq!(progress.total_restored, 300);
        assert_eq!(progress.remaining, 0);
    }
    assert_eq!(
        second.manager.partitions_in(PartitionState::Active).len(),
        6
    );
    let ready: Vec<Partition> = second
        .manager
        .take_ready()
        .into_iter()
        .map(|r| r.partition)
        .collect();
    assert_eq!(
        ready.len(),
        6,
        "every restore is reported ready once: {ready:?}"
    );
    assert!(second.manager.take_ready().is_empty());
}

/// A revoked partition keeps its directory: when it comes back after another instance
/// owned it for a while, a durable backend replays only what that instance wrote; the
/// in-memory backend replays everything.
pub fn returning_partition_replays_only_the_tail(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let (first, second) = (
        instance(backend, &changelog, guarantee),
        instance(backend, &changelog, guarantee),
    );
    assert_eq!(first.assign_one(2), 0);
    first.add(2, 200, 1);
    block_on(first.manager.revoke(&[2], AfterRevoke::Close)).unwrap();
    assert_eq!(first.manager.state(2), Some(PartitionState::Closed));

    assert_eq!(second.assign_one(2), 200);
    second.add(2, 50, 1);
    block_on(second.manager.revoke(&[2], AfterRevoke::Close)).unwrap();

    let back = first.assign_one(2);
    let durable = backend.supplier(STORE).durable();
    assert_eq!(back, if durable { 50 } else { 250 }, "durable={durable}");
    let mut want = expected(2, 200, 1);
    want.extend(expected(2, 50, 2));
    assert_eq!(first.totals(2), want);
}

/// A standby tails the owner's changelog; after the owner writes more, promoting the
/// standby replays exactly the records it lagged, and the state matches the owner's.
pub fn promoted_standby_replays_only_its_lag(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let (owner, standby) = (
        instance(backend, &changelog, guarantee),
        instance(backend, &changelog, guarantee),
    );
    owner.assign_one(4);
    owner.add(4, 120, 3);
    block_on(standby.manager.set_standbys(&[4].into())).unwrap();
    assert_eq!(standby.manager.state(4), Some(PartitionState::Standby));
    wait_for_lag(&standby.manager, 4, 0);
    owner.add(4, 40, 3);
    // Records the owner committed after the standby's last update: 40 puts, plus the
    // commit marker under exactly-once.
    let lag = current_lag(&standby.manager, 4);
    assert!(lag >= 40, "standby lag {lag}, expected at least 40");
    drop(owner);
    assert_eq!(standby.assign_one(4), 40, "lag was {lag}");
    assert_eq!(standby.manager.state(4), Some(PartitionState::Active));
    let mut want = expected(4, 120, 3);
    want.extend(expected(4, 40, 6));
    assert_eq!(standby.totals(4), want);
}

/// A revoked partition kept as a standby stays warm: coming back restores nothing new.
pub fn revoked_partition_kept_as_standby_stays_warm(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let (first, second) = (
        instance(backend, &changelog, guarantee),
        instance(backend, &changelog, guarantee),
    );
    first.assign_one(1);
    first.add(1, 100, 2);
    block_on(first.manager.revoke(&[1], AfterRevoke::KeepAsStandby)).unwrap();
    assert_eq!(first.manager.state(1), Some(PartitionState::Standby));
    second.assign_one(1);
    second.add(1, 100, 2);
    block_on(second.manager.revoke(&[1], AfterRevoke::Close)).unwrap();
    wait_for_lag(&first.manager, 1, 0);
    assert_eq!(first.assign_one(1), 0);
    assert_eq!(first.totals(1), expected(1, 100, 4));
}

/// A lost partition is closed without committing: under exactly-once its uncommitted
/// writes never become visible; its committed state comes back.
pub fn lost_partition_drops_uncommitted_writes(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::ExactlyOnce;
    let first = instance(backend, &changelog, guarantee);
    first.assign_one(0);
    first.add(0, 80, 1);
    first.process(0, 1, 1, 1000);
    block_on(first.manager.lose(&[0])).unwrap();
    assert_eq!(first.manager.state(0), Some(PartitionState::Lost));
    assert!(first.manager.try_active(0).is_none());
    let second = instance(backend, &changelog, guarantee);
    second.assign_one(0);
    assert_eq!(second.totals(0), expected(0, 80, 1));
}

/// An unlogged store beside a logged one holds its writes until the manager commits
/// (reads see them meanwhile), then the store itself has them.
pub fn an_unlogged_store_gets_its_writes_at_each_commit(backend: &dyn BackendFactory) {
    use state_core::Serde;
    let changelog = InMemoryChangelog::new();
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new(APP, 0, PARTITIONS, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let mut manager = StoreManager::new(context);
    let rewards = manager
        .add_store(StoreBuilder::new(
            backend.supplier(STORE),
            Serdes::string(),
            Serdes::i64(),
        ))
        .unwrap();
    let cache = manager
        .add_store(
            StoreBuilder::new(backend.supplier("cache"), Serdes::string(), Serdes::i64())
                .with_logging_disabled(),
        )
        .unwrap();
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, "unlogged-instance")
        .with_source(input());
    manager
        .use_sink(Arc::new(changelog.sink_now(&options).unwrap()))
        .unwrap();
    let manager = Arc::new(manager);
    for (partition, result) in block_on(manager.assign_all(&[0])) {
        result.unwrap_or_else(|err| panic!("assigning {partition}: {err}"));
    }
    let key = customer(0, 1);
    let stored = |value: i64| Some(Serdes::i64().serialize(&value).unwrap());
    for (offset, value) in [(0, 5), (1, 6)] {
        block_on(async {
            let mut active = manager.active(0).await.expect("active");
            let cached = active.store(&cache).unwrap();
            cached.put(&key, &value).unwrap();
            active.store(&rewards).unwrap().put(&key, &value).unwrap();
            assert_eq!(
                cached.get(&key).unwrap(),
                Some(value),
                "reads see the write"
            );
            let before = cached.committed().get(key.as_bytes()).unwrap();
            assert_ne!(before, stored(value), "the store has it only at commit");
            drop(cached);
            active.record_processed(offset + 1);
        });
        block_on(manager.commit()).unwrap();
        let active = block_on(manager.active(0)).expect("active");
        let cached = active.store(&cache).unwrap();
        assert_eq!(
            cached.committed().get(key.as_bytes()).unwrap(),
            stored(value)
        );
    }
}

/// Counts restores running at once.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl RestoreListener for Concurrency {
    fn on_restore_start(&self, _: RestoreTarget<'_>, _: Offset, _: Offset) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn on_restore_end(&self, _: RestoreTarget<'_>, _: u64) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// With a bound of two, no more than two partitions restore at once, and all restore.
pub fn restores_run_within_the_parallel_bound(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let writer = instance(backend, &changelog, guarantee);
    for p in 0..PARTITIONS {
        writer.assign_one(p);
        writer.add(p, 2000, 1);
    }
    let concurrency = Arc::new(Concurrency::default());
    let reader = instance_with(
        backend,
        &changelog,
        guarantee,
        Setup {
            listener: Some(concurrency.clone()),
            parallel_restores: Some(2),
            ..Setup::default()
        },
    );
    for (p, restored) in reader.assign(&[0, 1, 2, 3, 4, 5]).into_iter().enumerate() {
        assert_eq!(restored, Some(2000), "partition {p}");
    }
    let peak = concurrency.peak.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "{peak} restores ran at once");
}

pub(crate) fn lag_of(manager: &StoreManager, partition: Partition) -> u64 {
    block_on(manager.update_standbys()).unwrap();
    current_lag(manager, partition)
}

pub(crate) fn wait_for_lag(manager: &StoreManager, partition: Partition, lag: u64) {
    eventually(
        Duration::from_secs(30),
        &format!("the standby lag of partition {partition} falling to {lag}"),
        || {
            let now = lag_of(manager, partition);
            if now <= lag {
                Ok(())
            } else {
                Err(format!("lag {now}"))
            }
        },
    );
}

/// The rewards store's lag without updating the standby.
pub(crate) fn current_lag(manager: &StoreManager, partition: Partition) -> u64 {
    block_on(manager.standby_lags())
        .unwrap()
        .into_iter()
        .find(|l| l.partition == partition && l.store == STORE)
        .expect("a standby")
        .lag
}
