//! The store manager's state machine: every transition, and the races a consumer group
//! makes — a revoke or loss during a restore, a loss during a commit, an assignment
//! withdrawn before its restore starts. Gates hold a restore or a commit at a chosen
//! step, so each race happens for sure.

use std::sync::Arc;
use std::thread;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{AfterRevoke, ChangelogSink, PartitionState, ProcessingGuarantee, SinkOptions};
use test_support::eventually;

use crate::gates::{Gate, GatedRestore, GatedSink, REACH_WITHIN};
use crate::harness::{BackendFactory, block_on};
use crate::manager::{Instance, STORE, Setup, VISITS, expected, input, instance, instance_with};

const P: i32 = 3;

/// An instance whose restores stop after their first batch of 500 while `restores` is
/// shut, and whose commits stop while `commits` is shut.
fn gated(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    restores: &Arc<Gate>,
    commits: &Arc<Gate>,
) -> Instance {
    gated_with(backend, changelog, restores, commits, false)
}

/// [`gated`], with the second store `visits` registered after `rewards` when `visits`.
fn gated_with(
    backend: &dyn BackendFactory,
    changelog: &InMemoryChangelog,
    restores: &Arc<Gate>,
    commits: &Arc<Gate>,
    visits: bool,
) -> Instance {
    let guarantee = ProcessingGuarantee::ExactlyOnce;
    let options = SinkOptions::new(guarantee, "app-gated").with_source(input());
    let sink: Arc<dyn ChangelogSink> = Arc::new(GatedSink {
        inner: Arc::new(changelog.sink_now(&options).unwrap()),
        gate: commits.clone(),
    });
    instance_with(
        backend,
        changelog,
        guarantee,
        Setup {
            listener: Some(Arc::new(GatedRestore {
                gate: restores.clone(),
            })),
            sink: Some(sink),
            batch_size: Some(500),
            visits,
            ..Setup::default()
        },
    )
}

/// A changelog with 3,000 committed records in partition `P` of the rewards store.
fn written(backend: &dyn BackendFactory) -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    let writer = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce);
    writer.assign_one(P);
    writer.add(P, 3000, 1);
    changelog
}

/// Walks one partition through every state: assigned (`Restoring`, held at a gate),
/// `Active`, `Committing` (held at a gate), revoked to `Closed` and to `Standby`,
/// promoted, lost, assigned again, and stood by for and dropped without ever being
/// owned.
pub fn every_transition_of_the_state_machine(backend: &dyn BackendFactory) {
    let changelog = written(backend);
    let (restores, commits) = (Gate::new(), Gate::new());
    let node = gated(backend, &changelog, &restores, &commits);
    let state = || node.manager.state(P);
    assert_eq!(state(), None);

    // (none) -> Restoring -> Active
    restores.shut();
    let jobs = node.manager.assign(&[P]);
    assert_eq!(state(), Some(PartitionState::Restoring));
    thread::scope(|s| {
        let restoring = s.spawn(|| block_on(futures::future::join_all(jobs)));
        restores.wait_reached();
        assert_eq!(state(), Some(PartitionState::Restoring));
        assert!(node.manager.try_active(P).is_none(), "served mid-restore");
        restores.open();
        let (_, outcome) = restoring.join().unwrap().pop().unwrap();
        assert!(outcome.unwrap().is_some());
    });
    assert_eq!(state(), Some(PartitionState::Active));

    // Active -> Committing -> Active
    node.process(P, 0, 10, 1);
    commits.shut();
    thread::scope(|s| {
        let committing = s.spawn(|| block_on(node.manager.commit()));
        commits.wait_reached();
        assert_eq!(state(), Some(PartitionState::Committing));
        assert!(
            node.manager.try_active(P).is_none(),
            "handed out mid-commit"
        );
        commits.open();
        assert_eq!(committing.join().unwrap().unwrap().partitions, vec![P]);
    });
    assert_eq!(state(), Some(PartitionState::Active));

    // Active -> Revoking -> Closed; its commit is held, so Revoking shows.
    node.process(P, 1, 10, 1);
    commits.shut();
    thread::scope(|s| {
        let revoking = s.spawn(|| block_on(node.manager.revoke(&[P], AfterRevoke::Close)));
        commits.wait_reached();
        assert_eq!(state(), Some(PartitionState::Revoking));
        commits.open();
        revoking.join().unwrap().unwrap();
    });
    assert_eq!(state(), Some(PartitionState::Closed));

    // Closed -> Restoring -> Active -> Revoking -> Standby -> (promoted) Active
    node.assign_one(P);
    block_on(node.manager.revoke(&[P], AfterRevoke::KeepAsStandby)).unwrap();
    assert_eq!(state(), Some(PartitionState::Standby));
    assert_eq!(node.assign_one(P), 0, "a warm standby restores nothing");
    assert_eq!(state(), Some(PartitionState::Active));
    let mut want = expected(P, 3000, 1);
    for total in want.values_mut().take(10) {
        *total = 3;
    }
    assert_eq!(node.totals(P), want);

    // Active -> Lost -> Restoring -> Active
    node.process(P, 2, 10, 100);
    block_on(node.manager.lose(&[P])).unwrap();
    assert_eq!(state(), Some(PartitionState::Lost));
    node.assign_one(P);
    assert_eq!(node.totals(P), want, "the lost writes are gone");

    // (none) -> Standby -> Closed, for a partition never owned here.
    block_on(node.manager.set_standbys(&[0].into())).unwrap();
    assert_eq!(node.manager.state(0), Some(PartitionState::Standby));
    block_on(node.manager.set_standbys(&[].into())).unwrap();
    assert_eq!(node.manager.state(0), Some(PartitionState::Closed));
    assert_eq!(
        node.manager.state(P),
        Some(PartitionState::Active),
        "set_standbys leaves owned partitions alone"
    );
}

/// A revoke that arrives while the partition restores stops the restore at its next
/// batch instead of waiting for it: the partition is never served, ends `Closed`, is
/// not reported ready, and keeps what it applied — a durable store restores only the
/// rest when it comes back.
pub fn revoke_during_restore_cancels_it(backend: &dyn BackendFactory) {
    let changelog = written(backend);
    let (restores, commits) = (Gate::new(), Gate::new());
    let node = gated(backend, &changelog, &restores, &commits);
    restores.shut();
    let jobs = node.manager.assign(&[P]);
    thread::scope(|s| {
        let restoring = s.spawn(|| block_on(futures::future::join_all(jobs)));
        restores.wait_reached();
        let revoking = s.spawn(|| block_on(node.manager.revoke(&[P], AfterRevoke::Close)));
        eventually(REACH_WITHIN, "the revoke to withdraw the partition", || {
            node.manager.state(P) == Some(PartitionState::Revoking)
        });
        restores.open();
        let (_, outcome) = restoring.join().unwrap().pop().unwrap();
        assert!(
            outcome.unwrap().is_none(),
            "a withdrawn restore reports nothing"
        );
        revoking.join().unwrap().unwrap();
    });
    assert_eq!(node.manager.state(P), Some(PartitionState::Closed));
    assert!(node.manager.take_ready().is_empty(), "never ready");
    let durable = backend.supplier(crate::manager::STORE).durable();
    let rest = node.assign_one(P);
    assert_eq!(rest, if durable { 2500 } else { 3000 }, "durable={durable}");
    assert_eq!(node.totals(P), expected(P, 3000, 1));
}

/// A revoke that keeps the partition as a standby while its first store (of two)
/// restores: each store stays in its own place. The standby holds both (the one whose
/// restore was cut short opened again from its directory), tails each store's own
/// changelog, reports both lags, and a promotion serves each store's own data — never
/// one store's copy under the other's name, nor a second open of a store still held.
pub fn revoke_to_standby_during_a_restore_keeps_every_store_in_its_place(
    backend: &dyn BackendFactory,
) {
    let changelog = InMemoryChangelog::new();
    let writer = instance_with(
        backend,
        &changelog,
        ProcessingGuarantee::ExactlyOnce,
        Setup {
            visits: true,
            ..Setup::default()
        },
    );
    writer.assign_one(P);
    writer.add(P, 3000, 7);
    let (restores, commits) = (Gate::new(), Gate::new());
    let node = gated_with(backend, &changelog, &restores, &commits, true);
    restores.shut();
    let jobs = node.manager.assign(&[P]);
    thread::scope(|s| {
        let restoring = s.spawn(|| block_on(futures::future::join_all(jobs)));
        // Held after the first batch of the first store, `rewards`.
        restores.wait_reached();
        let revoking = s.spawn(|| block_on(node.manager.revoke(&[P], AfterRevoke::KeepAsStandby)));
        eventually(REACH_WITHIN, "the revoke to withdraw the partition", || {
            node.manager.state(P) == Some(PartitionState::Revoking)
        });
        restores.open();
        let (_, outcome) = restoring.join().unwrap().pop().unwrap();
        assert!(
            outcome.unwrap().is_none(),
            "a withdrawn restore reports nothing"
        );
        revoking.join().unwrap().unwrap();
    });
    assert_eq!(node.manager.state(P), Some(PartitionState::Standby));
    block_on(node.manager.update_standbys()).unwrap();
    let lags = block_on(node.manager.standby_lags()).unwrap();
    let stores: Vec<&str> = lags.iter().map(|lag| lag.store.as_str()).collect();
    assert_eq!(stores, [STORE, VISITS], "{lags:?}");
    writer.add(P, 10, 7);
    block_on(node.manager.update_standbys()).unwrap();
    node.assign_one(P);
    let mut rewards = expected(P, 3000, 14);
    rewards.extend(expected(P, 3000, 7).into_iter().skip(10));
    let mut visits = expected(P, 3000, 2);
    visits.extend(expected(P, 3000, 1).into_iter().skip(10));
    assert_eq!(node.totals(P), rewards);
    assert_eq!(node.totals_of(P, node.visits.as_ref().unwrap()), visits);
}

/// A loss during a restore closes the partition `Lost` once the restore stops.
pub fn lose_during_restore(backend: &dyn BackendFactory) {
    let changelog = written(backend);
    let (restores, commits) = (Gate::new(), Gate::new());
    let node = gated(backend, &changelog, &restores, &commits);
    restores.shut();
    let jobs = node.manager.assign(&[P]);
    thread::scope(|s| {
        let restoring = s.spawn(|| block_on(futures::future::join_all(jobs)));
        restores.wait_reached();
        let losing = s.spawn(|| block_on(node.manager.lose(&[P])));
        eventually(REACH_WITHIN, "the loss to withdraw the partition", || {
            node.manager.state(P) == Some(PartitionState::Lost)
        });
        restores.open();
        assert!(
            restoring
                .join()
                .unwrap()
                .pop()
                .unwrap()
                .1
                .unwrap()
                .is_none()
        );
        losing.join().unwrap().unwrap();
    });
    assert_eq!(node.manager.state(P), Some(PartitionState::Lost));
    assert!(node.manager.try_active(P).is_none());
}

/// An assignment revoked before its restore job runs opens nothing: the job finds its
/// assignment gone, the partition is `Closed`, and a later assignment restores it all.
pub fn assignment_withdrawn_before_its_restore_starts_opens_nothing(backend: &dyn BackendFactory) {
    let changelog = written(backend);
    let node = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce);
    let jobs = node.manager.assign(&[P]);
    block_on(node.manager.revoke(&[P], AfterRevoke::Close)).unwrap();
    let (_, outcome) = block_on(futures::future::join_all(jobs)).pop().unwrap();
    assert!(outcome.unwrap().is_none());
    assert_eq!(node.manager.state(P), Some(PartitionState::Closed));
    assert!(node.manager.try_active(P).is_none());
    assert!(node.manager.take_ready().is_empty());
    assert_eq!(node.assign_one(P), 3000);
}

/// The group moves two partitions on while a commit is under way and that commit fails
/// (the member was fenced): the loss waits for the commit, then closes the lost
/// partition `Lost` without committing; the partition that stays writes its changes
/// again at the next commit, and nothing of the lost one's interval is ever visible.
pub fn lose_during_a_failing_commit(backend: &dyn BackendFactory) {
    let changelog = InMemoryChangelog::new();
    let (restores, commits) = (Gate::new(), Gate::new());
    let node = gated(backend, &changelog, &restores, &commits);
    node.assign(&[0, 1]);
    node.add(0, 20, 1);
    node.process(0, 1, 20, 10);
    node.process(1, 1, 20, 10);
    commits.shut();
    thread::scope(|s| {
        let committing = s.spawn(|| block_on(node.manager.commit()));
        commits.wait_reached();
        assert_eq!(node.manager.state(0), Some(PartitionState::Committing));
        let losing = s.spawn(|| block_on(node.manager.lose(&[0])));
        changelog
            .fail_next_flush(&state_core::changelog_topic_name("app", "rewards"))
            .unwrap();
        commits.open();
        assert!(committing.join().unwrap().is_err(), "the commit failed");
        losing.join().unwrap().unwrap();
    });
    assert_eq!(node.manager.state(0), Some(PartitionState::Lost));
    assert_eq!(node.manager.state(1), Some(PartitionState::Active));
    let committed = block_on(node.manager.commit()).unwrap();
    assert_eq!(committed.partitions, vec![1]);
    assert_eq!(node.totals(1), expected(1, 20, 10));
    let offsets = changelog.committed_offsets(&input());
    assert_eq!(offsets.get(&1), Some(&2));
    assert_eq!(
        offsets.get(&0),
        Some(&1),
        "the lost partition's last commit only"
    );
    let next = instance(backend, &changelog, ProcessingGuarantee::ExactlyOnce);
    next.assign(&[0, 1]);
    assert_eq!(next.totals(0), expected(0, 20, 1));
    assert_eq!(next.totals(1), expected(1, 20, 10));
}
