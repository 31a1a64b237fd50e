//! The store manager on one backend and the in-process changelog: partitions are
//! served only once restored, a revoked partition keeps its directory and replays only
//! the tail when it comes back, a promoted standby replays only its lag, a lost
//! partition drops uncommitted writes, and restores run in parallel up to the bound.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    AfterRevoke, Offset, Partition, PartitionRole, ProcessingGuarantee, RestoreListener,
    RestorePhase, RestoreTarget, Serdes, StoreBuilder, StoreContext, StoreManager,
};
use tempfile::TempDir;

use crate::harness::{BackendFactory, block_on};

const PARTITIONS: i32 = 6;
const STORE: &str = "rewards";

type Totals = BTreeMap<String, i64>;

/// One instance: its own state directory, sharing the changelog with the others.
struct Instance {
    manager: StoreManager<String, i64>,
    _dir: TempDir,
}

fn instance(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
    listener: Option<Arc<dyn RestoreListener>>,
) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let builder = StoreBuilder::new(backend.supplier(STORE), Serdes::string(), Serdes::i64());
    let mut context = StoreContext::new("app", 0, PARTITIONS, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()))
        .with_guarantee(guarantee);
    if let Some(listener) = listener {
        context = context.with_restore_listener(listener);
    }
    Instance {
        manager: StoreManager::new(builder, context),
        _dir: dir,
    }
}

/// Adds `amount` to `count` customers' totals in `partition` and commits.
fn add(instance: &Instance, partition: Partition, count: usize, amount: i64) {
    block_on(async {
        let mut store = instance.manager.store(partition).await.expect("active");
        for c in 0..count {
            let key = format!("p{partition}-customer-{c:04}");
            let total = store.get(&key).unwrap().unwrap_or(0);
            store.put(&key, &(total + amount)).unwrap();
        }
        store.commit().await.unwrap();
    });
}

fn totals(instance: &Instance, partition: Partition) -> Totals {
    let store = block_on(instance.manager.store(partition)).expect("active");
    store.all().unwrap().map(Result::unwrap).collect()
}

fn expected(partition: Partition, count: usize, total: i64) -> Totals {
    (0..count)
        .map(|c| (format!("p{partition}-customer-{c:04}"), total))
        .collect()
}

fn restored(summary: Option<state_core::RestoreSummary>) -> u64 {
    summary.map_or(0, |s| s.restored)
}

/// A new owner restores every partition before serving it; a `store()` request that
/// arrives mid-restore waits and then sees the full state; the progress counters say
/// what each partition restored.
pub fn assign_restores_before_serving(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let first = instance(backend, &changelog, guarantee, None);
    for p in 0..PARTITIONS {
        block_on(first.manager.assign(p)).unwrap();
        add(&first, p, 300, 5);
    }
    let second = instance(backend, &changelog, guarantee, None);
    assert!(
        second.manager.try_store(0).is_none(),
        "served before assignment"
    );
    block_on(async {
        let manager = &second.manager;
        let (assigned, early) = futures::join!(manager.assign_all(&[0, 1, 2, 3, 4, 5]), async {
            // Asked while partition 3 restores (or before it starts): must wait for it.
            let store = manager.store(3).await;
            store.map(|s| s.all().unwrap().count())
        });
        for (p, result) in assigned {
            assert_eq!(restored(result.unwrap()), 300, "partition {p}");
        }
        if let Some(seen) = early {
            assert_eq!(
                seen, 300,
                "partition 3 was served before its restore finished"
            );
        }
    });
    for p in 0..PARTITIONS {
        assert_eq!(totals(&second, p), expected(p, 300, 5));
        let progress = second.manager.progress().get(STORE, p).unwrap();
        assert_eq!(progress.phase, RestorePhase::Done);
        assert_eq!(progress.total_restored, 300);
        assert_eq!(progress.remaining, 0);
    }
    assert_eq!(second.manager.partitions_in(PartitionRole::Active).len(), 6);
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
        instance(backend, &changelog, guarantee, None),
        instance(backend, &changelog, guarantee, None),
    );
    assert_eq!(restored(block_on(first.manager.assign(2)).unwrap()), 0);
    add(&first, 2, 200, 1);
    block_on(first.manager.revoke(&[2], AfterRevoke::Close)).unwrap();
    assert_eq!(first.manager.role(2), Some(PartitionRole::Closed));

    assert_eq!(restored(block_on(second.manager.assign(2)).unwrap()), 200);
    add(&second, 2, 50, 1);
    block_on(second.manager.revoke(&[2], AfterRevoke::Close)).unwrap();

    let back = restored(block_on(first.manager.assign(2)).unwrap());
    let durable = backend.supplier(STORE).durable();
    assert_eq!(back, if durable { 50 } else { 250 }, "durable={durable}");
    let mut want = expected(2, 200, 1);
    want.extend(expected(2, 50, 2));
    assert_eq!(totals(&first, 2), want);
}

/// A standby tails the owner's changelog; after the owner writes more, promoting the
/// standby replays exactly the records it lagged, and the state matches the owner's.
pub fn promoted_standby_replays_only_its_lag(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let (owner, standby) = (
        instance(backend, &changelog, guarantee, None),
        instance(backend, &changelog, guarantee, None),
    );
    block_on(owner.manager.assign(4)).unwrap();
    add(&owner, 4, 120, 3);
    block_on(standby.manager.add_standby(4)).unwrap();
    assert_eq!(standby.manager.role(4), Some(PartitionRole::Standby));
    wait_for_lag(&standby.manager, 4, 0);
    add(&owner, 4, 40, 3);
    // Records the owner committed after the standby's last update: 40 puts, plus the
    // commit marker under exactly-once.
    let lag = current_lag(&standby.manager, 4);
    assert!(lag >= 40, "standby lag {lag}, expected at least 40");
    drop(owner);
    let summary = block_on(standby.manager.assign(4)).unwrap().unwrap();
    assert_eq!(summary.restored, 40, "lag was {lag}");
    assert_eq!(standby.manager.role(4), Some(PartitionRole::Active));
    let mut want = expected(4, 120, 3);
    want.extend(expected(4, 40, 6));
    assert_eq!(totals(&standby, 4), want);
}

/// A revoked partition kept as a standby stays warm: coming back restores nothing new.
pub fn revoked_partition_kept_as_standby_stays_warm(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let (first, second) = (
        instance(backend, &changelog, ProcessingGuarantee::AtLeastOnce, None),
        instance(backend, &changelog, ProcessingGuarantee::AtLeastOnce, None),
    );
    block_on(first.manager.assign(1)).unwrap();
    add(&first, 1, 100, 2);
    block_on(first.manager.revoke(&[1], AfterRevoke::KeepAsStandby)).unwrap();
    assert_eq!(first.manager.role(1), Some(PartitionRole::Standby));
    block_on(second.manager.assign(1)).unwrap();
    add(&second, 1, 100, 2);
    block_on(second.manager.revoke(&[1], AfterRevoke::Close)).unwrap();
    wait_for_lag(&first.manager, 1, 0);
    assert_eq!(restored(block_on(first.manager.assign(1)).unwrap()), 0);
    assert_eq!(totals(&first, 1), expected(1, 100, 4));
}

/// A lost partition is closed without committing: under exactly-once its uncommitted
/// writes never become visible; its committed state comes back.
pub fn lost_partition_drops_uncommitted_writes(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let first = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce, None);
    block_on(first.manager.assign(0)).unwrap();
    add(&first, 0, 80, 1);
    {
        let store = block_on(first.manager.store(0)).unwrap();
        store.put(&"p0-customer-0000".to_string(), &1000).unwrap();
        store.put(&"uncommitted".to_string(), &1).unwrap();
    }
    block_on(first.manager.lose(&[0])).unwrap();
    assert_eq!(first.manager.role(0), Some(PartitionRole::Closed));
    let second = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce, None);
    block_on(second.manager.assign(0)).unwrap();
    assert_eq!(totals(&second, 0), expected(0, 80, 1));
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
    let writer = instance(backend, &changelog, ProcessingGuarantee::AtLeastOnce, None);
    for p in 0..PARTITIONS {
        block_on(writer.manager.assign(p)).unwrap();
        add(&writer, p, 2000, 1);
    }
    let concurrency = Arc::new(Concurrency::default());
    let mut reader = instance(
        backend,
        &changelog,
        ProcessingGuarantee::AtLeastOnce,
        Some(concurrency.clone()),
    );
    reader.manager = reader.manager.with_max_parallel_restores(2);
    let results = block_on(reader.manager.assign_all(&[0, 1, 2, 3, 4, 5]));
    for (p, result) in results {
        assert_eq!(restored(result.unwrap()), 2000, "partition {p}");
    }
    let peak = concurrency.peak.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "{peak} restores ran at once");
}

fn lag_of(manager: &StoreManager<String, i64>, partition: Partition) -> u64 {
    block_on(manager.update_standbys()).unwrap();
    current_lag(manager, partition)
}

fn wait_for_lag(manager: &StoreManager<String, i64>, partition: Partition, lag: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = lag_of(manager, partition);
        if now <= lag {
            return;
        }
        assert!(Instant::now() < deadline, "standby lag stuck at {now}");
    }
}

/// The lag without updating the standby.
fn current_lag(manager: &StoreManager<String, i64>, partition: Partition) -> u64 {
    block_on(manager.standby_lags())
        .unwrap()
        .into_iter()
        .find(|l| l.partition == partition)
        .expect("a standby")
        .lag
}

/// An assignment withdrawn before its restore could start opens nothing: the partition
/// gets no role and no store, and a later assignment restores it normally.
pub fn withdrawn_assignment_opens_nothing(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let writer = instance(backend, &changelog, ProcessingGuarantee::AtLeastOnce, None);
    block_on(writer.manager.assign(5)).unwrap();
    add(&writer, 5, 10, 1);
    let other = instance(backend, &changelog, ProcessingGuarantee::AtLeastOnce, None);
    assert_eq!(
        block_on(other.manager.assign_while(5, || false)).unwrap(),
        None
    );
    assert_eq!(other.manager.role(5), None);
    assert!(other.manager.try_store(5).is_none());
    block_on(writer.manager.revoke(&[5], AfterRevoke::Close)).unwrap();
    assert_eq!(restored(block_on(other.manager.assign(5)).unwrap()), 10);
}
