//! Interactive queries on one instance: a query reads committed state only, answers
//! "restoring" with what is left while a partition restores, "moving" while it is
//! revoked, "not here" once it is gone, and reads a standby only when stale reads are
//! allowed, with the lag its changelog shows.

use std::sync::Arc;
use std::thread;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    AfterRevoke, ChangelogSink, PartitionQuery, PartitionState, ProcessingGuarantee, Result,
    SinkOptions, Staleness, StoreManager,
};

use crate::gates::{Gate, GatedRestore, GatedSink};
use crate::harness::{BackendFactory, block_on};
use crate::manager::{
    Instance, Setup, current_lag, customer, input, instance, instance_with, wait_for_lag,
};

const P: i32 = 2;

fn query(node: &Instance, partition: i32, staleness: Staleness) -> PartitionQuery<String, i64> {
    block_on(node.manager.query(&node.rewards, partition, staleness)).unwrap()
}

fn value_of(answer: &PartitionQuery<String, i64>, key: &str) -> Result<Option<i64>> {
    match answer {
        PartitionQuery::Active(store) | PartitionQuery::Standby { store, .. } => {
            store.get(&key.to_owned())
        }
        other => panic!("expected a readable store, got {other:?}"),
    }
}

/// An active partition answers from its last commit, never from writes processed since;
/// a partition never assigned, or revoked and closed, is "not here".
pub fn queries_read_committed_state_only(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let node = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce);
    node.assign_one(P);
    node.add(P, 10, 5);
    node.process(P, 1, 10, 1000);
    let key = customer(P, 3);
    let answer = query(&node, P, Staleness::ActiveOnly);
    assert!(matches!(answer, PartitionQuery::Active(_)), "{answer:?}");
    assert_eq!(
        value_of(&answer, &key).unwrap(),
        Some(5),
        "uncommitted write visible"
    );
    assert_eq!(value_of(&answer, "nobody").unwrap(), None);
    let PartitionQuery::Active(store) = &answer else {
        unreachable!()
    };
    let range = store.range(&state_core::KeyRange::all(), 4).unwrap();
    assert_eq!(range.len(), 4);
    assert!(range.iter().all(|(_, v)| *v == 5), "{range:?}");

    block_on(node.manager.commit()).unwrap();
    assert_eq!(
        value_of(&answer, &key).unwrap(),
        Some(1005),
        "commit not visible"
    );
    assert_eq!(
        node.manager.partition_for_key(&node.rewards, &key).unwrap(),
        state_core::partition_for_key(key.as_bytes(), crate::manager::PARTITIONS).unwrap()
    );

    assert!(matches!(
        query(&node, P + 1, Staleness::AllowStandby),
        PartitionQuery::NotHere { state: None }
    ));
    block_on(node.manager.revoke(&[P], AfterRevoke::Close)).unwrap();
    let after = query(&node, P, Staleness::AllowStandby);
    assert!(
        matches!(
            after,
            PartitionQuery::NotHere {
                state: Some(PartitionState::Closed)
            }
        ),
        "{after:?}"
    );
}

/// While a partition restores its query says so, with the offsets left; while its
/// revoke commits, it is "moving"; neither hands out a store.
pub fn queries_say_restoring_and_moving(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let writer = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce);
    writer.assign_one(P);
    writer.add(P, 3000, 1);
    drop(writer);

    let (restores, commits) = (Gate::new(), Gate::new());
    let options =
        SinkOptions::new(ProcessingGuarantee::ExactlyOnce, "app-gated-query").with_source(input());
    let sink: Arc<dyn ChangelogSink> = Arc::new(GatedSink {
        inner: Arc::new(changelog.sink_now(&options).unwrap()),
        gate: commits.clone(),
    });
    let node = instance_with(
        backend,
        &changelog,
        ProcessingGuarantee::ExactlyOnce,
        Setup {
            listener: Some(Arc::new(GatedRestore {
                gate: restores.clone(),
            })),
            sink: Some(sink),
            batch_size: Some(500),
            ..Setup::default()
        },
    );
    restores.shut();
    let jobs = node.manager.assign(&[P]);
    thread::scope(|s| {
        let restoring = s.spawn(|| block_on(futures::future::join_all(jobs)));
        restores.wait_reached();
        match query(&node, P, Staleness::AllowStandby) {
            PartitionQuery::Restoring { remaining } => {
                let left = remaining.expect("a restore under way reports what is left");
                assert!(left > 0 && left <= 3000, "remaining {left}");
            }
            other => panic!("expected Restoring, got {other:?}"),
        }
        restores.open();
        restoring.join().unwrap();
    });
    assert!(matches!(
        query(&node, P, Staleness::ActiveOnly),
        PartitionQuery::Active(_)
    ));

    node.process(P, 0, 1, 1);
    commits.shut();
    thread::scope(|s| {
        let revoking = s.spawn(|| block_on(node.manager.revoke(&[P], AfterRevoke::KeepAsStandby)));
        commits.wait_reached();
        let answer = query(&node, P, Staleness::AllowStandby);
        assert!(matches!(answer, PartitionQuery::Moving), "{answer:?}");
        commits.open();
        revoking.join().unwrap().unwrap();
    });
}

/// A standby answers only a stale query, with the lag its changelog shows: behind by
/// what the owner committed since the standby's last update, its values are the ones
/// before.
pub fn stale_queries_read_a_standby_with_its_lag(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let (owner, standby) = (
        instance(backend, &changelog, guarantee),
        instance(backend, &changelog, guarantee),
    );
    owner.assign_one(P);
    owner.add(P, 50, 3);
    block_on(standby.manager.set_standbys(&[P].into())).unwrap();
    wait_for_lag(&standby.manager, P, 0);
    owner.add(P, 20, 4);

    let fresh = query(&standby, P, Staleness::ActiveOnly);
    assert!(
        matches!(
            fresh,
            PartitionQuery::NotHere {
                state: Some(PartitionState::Standby)
            }
        ),
        "{fresh:?}"
    );
    let stale = query(&standby, P, Staleness::AllowStandby);
    let PartitionQuery::Standby { lag, .. } = &stale else {
        panic!("expected a standby answer, got {stale:?}");
    };
    assert_eq!(lag.lag, 20, "{lag:?}");
    assert_eq!(lag.lag, current_lag(&standby.manager, P));
    assert_eq!(value_of(&stale, &customer(P, 0)).unwrap(), Some(3));
    wait_for_lag(&standby.manager, P, 0);
    assert_eq!(value_of(&stale, &customer(P, 0)).unwrap(), Some(7));
    let owner_answer = query(&owner, P, Staleness::ActiveOnly);
    assert_eq!(value_of(&owner_answer, &customer(P, 0)).unwrap(), Some(7));
}

/// A handle of another manager is refused, never read through.
pub fn a_foreign_handle_is_refused(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let (first, second) = (
        instance(backend, &changelog, guarantee),
        instance(backend, &changelog, guarantee),
    );
    first.assign_one(P);
    let manager: &StoreManager = &first.manager;
    let err = block_on(manager.query(&second.rewards, P, Staleness::ActiveOnly)).unwrap_err();
    assert!(err.to_string().contains("another store manager"), "{err}");
}
