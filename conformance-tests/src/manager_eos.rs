//! Several stores per partition under one sink: a commit is one sink commit holding
//! every store's records and the input offsets (exactly-once: one transaction), then the
//! stores' writes; a crash between the transaction and the writes, or between two
//! stores' writes, recovers exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{KeyValueBytesStoreSupplier, ProcessingGuarantee, changelog_topic_name};

use crate::crash_points::{ArmedSupplier, SupplierWrap};
use crate::harness::{BackendFactory, block_on};
use crate::manager::{APP, Instance, STORE, Setup, VISITS, expected, input, instance_with};

/// An instance with `rewards` and `visits`.
fn two_stores(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
    wrap: Option<SupplierWrap>,
) -> Instance {
    instance_with(
        backend,
        changelog,
        guarantee,
        Setup {
            visits: true,
            wrap,
            ..Setup::default()
        },
    )
}

/// Crash points in the stores' position writes, one switch per store.
struct Switches {
    rewards: Arc<AtomicBool>,
    visits: Arc<AtomicBool>,
}

impl Switches {
    fn new() -> Self {
        Self {
            rewards: Arc::default(),
            visits: Arc::default(),
        }
    }

    fn wrap(&self) -> SupplierWrap {
        let (rewards, visits) = (self.rewards.clone(), self.visits.clone());
        Arc::new(move |supplier: Arc<dyn KeyValueBytesStoreSupplier>| {
            let switch = if supplier.name() == VISITS {
                visits.clone()
            } else {
                rewards.clone()
            };
            ArmedSupplier::new(supplier, switch) as Arc<dyn KeyValueBytesStoreSupplier>
        })
    }
}

/// Two stores on two partitions commit in one sink commit with the input offsets: a
/// failure in one store's changelog leaves nothing of either store and no offset
/// committed (exactly-once: the one transaction is aborted); the retry commits it all.
pub fn stores_commit_together_with_the_input_offsets(
    backend: &dyn BackendFactory,
    guarantee: ProcessingGuarantee,
) {
    let changelog = InMemoryChangelog::new();
    let node = two_stores(backend, &changelog, guarantee, None);
    node.assign(&[0, 1]);
    node.process(0, 4, 30, 2);
    node.process(1, 9, 30, 5);
    let visits_topic = changelog_topic_name(APP, VISITS);
    changelog.fail_next_flush(&visits_topic).unwrap();
    assert!(block_on(node.manager.commit()).is_err());
    if guarantee == ProcessingGuarantee::ExactlyOnce {
        let rewards_topic = changelog_topic_name(APP, STORE);
        for p in [0, 1] {
            let committed = changelog
                .records(&rewards_topic, p)
                .unwrap()
                .iter()
                .filter(|r| r.status.is_visible_committed())
                .count();
            assert_eq!(
                committed, 0,
                "rewards {p}: the failed visits aborted it too"
            );
        }
    }
    assert!(changelog.committed_offsets(&input()).is_empty());
    let done = block_on(node.manager.commit()).unwrap();
    assert_eq!(done.partitions, vec![0, 1]);
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(0, 5), (1, 10)])
    );
    let next = two_stores(backend, &changelog, guarantee, None);
    next.assign(&[0, 1]);
    for (p, amount) in [(0, 2), (1, 5)] {
        assert_eq!(next.totals(p), expected(p, 30, amount));
        assert_eq!(
            next.totals_of(p, next.visits.as_ref().unwrap()),
            expected(p, 30, 1)
        );
    }
}

/// Exactly-once: the transaction commits, then the process dies before any store writes
/// its interval. The new owner restores both stores from the changelogs, and they equal
/// the input up to the committed offset exactly.
pub fn crash_between_the_transaction_and_the_store_writes_recovers_exactly(
    backend: &dyn BackendFactory,
) {
    crash_after_the_transaction(backend, true);
}

/// Exactly-once: the first store writes its interval, the second dies before its own.
/// Recovery is exact for both.
pub fn crash_between_two_stores_writes_recovers_exactly(backend: &dyn BackendFactory) {
    crash_after_the_transaction(backend, false);
}

fn crash_after_the_transaction(backend: &dyn BackendFactory, before_both: bool) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::ExactlyOnce;
    let switches = Switches::new();
    let node = two_stores(backend, &changelog, guarantee, Some(switches.wrap()));
    node.assign_one(2);
    node.process(2, 0, 40, 3);
    block_on(node.manager.commit()).unwrap();
    node.process(2, 1, 40, 4);
    switches.visits.store(true, Ordering::SeqCst);
    if before_both {
        switches.rewards.store(true, Ordering::SeqCst);
    }
    let err = block_on(node.manager.commit()).unwrap_err();
    assert!(err.to_string().contains("durable there"), "{err}");
    assert_eq!(
        changelog.committed_offsets(&input()).get(&2),
        Some(&2),
        "the transaction, offsets included, committed"
    );
    // The crash: the instance goes without closing.
    drop(node);
    let next = two_stores(backend, &changelog, guarantee, None);
    next.assign_one(2);
    assert_eq!(next.totals(2), expected(2, 40, 7));
    assert_eq!(
        next.totals_of(2, next.visits.as_ref().unwrap()),
        expected(2, 40, 2)
    );
}

/// A store whose write failed after the sink committed catches up at the next commit
/// without a crash: its changes stay buffered and are written with the position the
/// changelog acknowledged.
pub fn a_failed_store_write_is_caught_up_by_the_next_commit(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let switches = Switches::new();
    let node = two_stores(
        backend,
        &changelog,
        ProcessingGuarantee::ExactlyOnce,
        Some(switches.wrap()),
    );
    node.assign_one(5);
    node.process(5, 0, 10, 1);
    switches.visits.store(true, Ordering::SeqCst);
    assert!(block_on(node.manager.commit()).is_err());
    let done = block_on(node.manager.commit()).unwrap();
    assert_eq!(done.records, 10, "the visits interval, written now");
    let active = block_on(node.manager.active(5)).unwrap();
    let visits = active.store(node.visits.as_ref().unwrap()).unwrap();
    let committed: Vec<_> = crate::harness::contents(visits.committed().as_ref());
    assert_eq!(
        committed.len(),
        10,
        "the store itself holds the interval now"
    );
}

/// A partition lost with uncommitted changes ends the sink's interval; the partition
/// that stays writes its own uncommitted changes again in the next transaction, with its
/// offset, and the lost one's changes and offset never become visible.
pub fn a_loss_aborts_the_interval_and_the_rest_is_written_again(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::ExactlyOnce;
    let node = two_stores(backend, &changelog, guarantee, None);
    node.assign(&[0, 1]);
    node.process(0, 0, 15, 1);
    node.process(1, 0, 15, 1);
    block_on(node.manager.lose(&[0])).unwrap();
    block_on(node.manager.commit()).unwrap();
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(1, 1)])
    );
    let next = two_stores(backend, &changelog, guarantee, None);
    next.assign(&[0, 1]);
    assert!(next.totals(0).is_empty(), "nothing of the lost partition");
    assert_eq!(next.totals(1), expected(1, 15, 1));
    assert_eq!(
        next.totals_of(1, next.visits.as_ref().unwrap()),
        expected(1, 15, 1)
    );
}
