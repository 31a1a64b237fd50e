//! `StandbyPolicy::Replicas(k)` on a real broker: k standbys per partition, never on its
//! owner, placed alike by every member, moving little when membership changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use state_core::Partition;
use test_support::eventually;

use crate::group_scenarios::{owned_by, readies_since};
use crate::scale_out::{Group, Instance, PARTITIONS};

/// How long standbys may take to settle after the group does: placement runs after each
/// rebalance, and again every second while the group was still rebalancing.
const PLACEMENT_DEADLINE: Duration = Duration::from_secs(60);

/// Which instances hold a standby of each partition.
type Standbys = BTreeMap<Partition, Vec<String>>;

/// Waits until every partition has exactly `k` standbys (or one on every instance but
/// its owner, when there are fewer), none on its owner; returns them.
fn wait_for_placement(
    owners: &BTreeMap<Partition, String>,
    instances: &mut [&mut Instance],
    k: usize,
) -> Standbys {
    let expected = k.min(instances.len() - 1);
    eventually(
        PLACEMENT_DEADLINE,
        &format!("standbys settling at {expected} per partition off their owners"),
        || {
            let mut standbys = Standbys::new();
            for instance in instances.iter_mut() {
                for partition in instance.lags().into_keys() {
                    standbys
                        .entry(partition)
                        .or_default()
                        .push(instance.name().to_owned());
                }
            }
            let settled = (0..PARTITIONS).all(|p| {
                standbys.get(&p).map_or(0, Vec::len) == expected
                    && !standbys
                        .get(&p)
                        .is_some_and(|holders| holders.contains(&owners[&p]))
            });
            if settled {
                Ok(standbys)
            } else {
                Err(format!("standbys {standbys:?}, owners {owners:?}"))
            }
        },
    )
}

/// Whether each of `instances` instances owns `⌊P/n⌋` or `⌈P/n⌉` partitions.
fn even_shares(owners: &BTreeMap<Partition, String>, instances: usize) -> bool {
    let total = PARTITIONS as usize;
    let mut shares: BTreeMap<&str, usize> = BTreeMap::new();
    for owner in owners.values() {
        *shares.entry(owner).or_default() += 1;
    }
    shares.len() == instances.min(total)
        && shares
            .values()
            .all(|&n| n == total / instances || n == total.div_ceil(instances))
}

/// Asserts [`even_shares`].
fn assert_even_shares(owners: &BTreeMap<Partition, String>, instances: usize) {
    assert!(
        even_shares(owners, instances),
        "uneven shares of {PARTITIONS} partitions over {instances} instances: {owners:?}"
    );
}

/// Waits until the model holds and the instances own even shares: a cooperative group
/// whose members joined while it rebalanced can hold the model in between, with a
/// rebalance still to come.
fn wait_for_even_model(
    group: &Group,
    instances: &mut [&mut Instance],
) -> BTreeMap<Partition, String> {
    eventually(
        PLACEMENT_DEADLINE,
        "the group settling on even shares",
        || {
            let owners = group.wait_for_model(instances);
            if even_shares(&owners, instances.len()) {
                Ok(owners)
            } else {
                Err(format!("owners {owners:?}"))
            }
        },
    )
}

/// Waits until every standby on `instances` has applied its whole changelog.
fn wait_until_caught_up(instances: &mut [&mut Instance]) {
    // An instance once caught up is not asked again: nothing is written meanwhile.
    let mut caught_up = vec![false; instances.len()];
    eventually(
        PLACEMENT_DEADLINE,
        "every standby applying its whole changelog",
        || {
            for (instance, done) in instances.iter_mut().zip(&mut caught_up) {
                if *done {
                    continue;
                }
                let lags = instance.lags();
                if lags.values().any(|lag| *lag > 0) {
                    return Err(format!("{}'s lags {lags:?}", instance.name()));
                }
                *done = true;
            }
            Ok(())
        },
    );
}

/// Four instances under `Replicas(1)` on `backend`:
/// - after three start, and after a fourth joins, every partition has exactly one
///   standby, never on its owner, and every instance owns an even share;
/// - when the fourth joins, the standbys that move are counted (the placement's unit
///   tests bound them over many partitions);
/// - the instance owning the most partitions is SIGKILLed with the others' standbys
///   paused (their lag known): every partition it owned goes to the instance holding its
///   standby, which replays exactly that lag; the union of the stores equals the model,
///   and the standbys settle again over three members.
pub fn replicas_place_k_standbys_and_move_few(bootstrap: &str, binary: &Path, backend: &str) {
    const K: usize = 1;
    let policy = format!("replicas:{K}");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary);
    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), &policy);
    let mut b = group.start("b", backend, dirs[1].path(), &policy);
    let mut c = group.start("c", backend, dirs[2].path(), &policy);
    let owners = group.wait_for_model(&mut [&mut a, &mut b, &mut c]);
    let three = wait_for_placement(&owners, &mut [&mut a, &mut b, &mut c], K);
    assert_even_shares(&owners, 3);

    group.produce_wave();
    let mut d = group.start("d", backend, dirs[3].path(), &policy);
    let joined = group.wait_for_model(&mut [&mut a, &mut b, &mut c, &mut d]);
    let four = wait_for_placement(&joined, &mut [&mut a, &mut b, &mut c, &mut d], K);
    assert_even_shares(&joined, 4);
    // Standbys that moved, and those that moved to an instance holding no copy of the
    // partition before (neither its standby nor its owner), which build a copy anew.
    let moved: Vec<Partition> = (0..PARTITIONS).filter(|p| three[p] != four[p]).collect();
    let built: Vec<Partition> = moved
        .iter()
        .copied()
        .filter(|p| {
            four[p]
                .iter()
                .any(|h| !three[p].contains(h) && *h != owners[p])
        })
        .collect();
    eprintln!(
        "replicas: {} of {PARTITIONS} standbys moved when d joined ({moved:?}), {} to an \
         instance without a copy ({built:?})",
        moved.len(),
        built.len()
    );

    // The instance owning the most partitions dies.
    let mut instances = vec![a, b, c, d];
    let victim = (0..instances.len())
        .max_by_key(|&i| owned_by(&joined, instances[i].name()).len())
        .unwrap_or_default();
    let victim = instances.remove(victim);
    let victim_owned = owned_by(&joined, victim.name());
    // The survivors' standbys catch up, then stop, so what each promotion must replay
    // is known.
    let mut survivors: Vec<&mut Instance> = instances.iter_mut().collect();
    wait_until_caught_up(&mut survivors);
    for instance in survivors.iter_mut() {
        instance.pause_standbys();
    }
    group.produce_wave();
    let mut everyone: Vec<&mut Instance> = instances.iter_mut().collect();
    let mut victim = victim;
    everyone.push(&mut victim);
    group.wait_for_model(&mut everyone);
    let before: Vec<(BTreeMap<Partition, u64>, usize)> = instances
        .iter_mut()
        .map(|i| (i.lags(), i.readies().len()))
        .collect();
    let victim_name = victim.name().to_owned();
    victim.kill();
    let mut survivors: Vec<&mut Instance> = instances.iter_mut().collect();
    let owners_after = group.wait_for_model(&mut survivors);
    let mut promoted = Vec::new();
    for (instance, (lags, seen)) in instances.iter().zip(&before) {
        let name = instance.name();
        instance.assert_served_only_after_restore();
        for ready in readies_since(instance, *seen) {
            let p = ready.partition;
            if !victim_owned.contains(&p) {
                continue;
            }
            assert_eq!(
                four[&p],
                [name.to_owned()],
                "{victim_name}'s partition {p} went to {name}, not to its standby"
            );
            assert_eq!(
                ready.restored, lags[&p],
                "{name} promoted its standby of {p} and replayed other than it lagged: {ready:?}"
            );
            promoted.push(p);
        }
    }
    promoted.sort_unstable();
    assert_eq!(
        promoted, victim_owned,
        "not every partition of {victim_name} was promoted on its standby once"
    );
    eprintln!(
        "replicas: all {} of {victim_name}'s partitions went to the instance holding their \
         standby, each replaying its lag",
        victim_owned.len()
    );
    assert_even_shares(&owners_after, 3);
    let mut survivors: Vec<&mut Instance> = instances.iter_mut().collect();
    wait_for_placement(&owners_after, &mut survivors, K);
    for instance in instances {
        instance.stop();
    }
}

/// Static membership (`group.instance.id`) on `backend` (a durable one), cooperative (no
/// standbys): see [`static_member_restarts_under`].
pub fn static_member_restarts_without_a_rebalance(bootstrap: &str, binary: &Path, backend: &str) {
    static_member_restarts_under(bootstrap, binary, backend, "none");
}

/// [`static_member_restarts_without_a_rebalance`] under `Replicas(1)`: the eager protocol
/// and statestore's plan, which the restarted member computes again alike.
pub fn static_member_restarts_under_replicas(bootstrap: &str, binary: &Path, backend: &str) {
    static_member_restarts_under(bootstrap, binary, backend, "replicas:1");
}

/// Two static instances under `policy`; one is SIGKILLed and restarted with the same id
/// and directory within the session timeout. It gets the same partitions back without a
/// rebalance (the other instance is never called back), and every partition it reopens
/// replays only the changelog tail written since its last commit.
fn static_member_restarts_under(bootstrap: &str, binary: &Path, backend: &str, policy: &str) {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary);
    group.produce_wave();
    let mut a = group.start_static("a", backend, dirs[0].path(), policy);
    let mut b = group.start_static("b", backend, dirs[1].path(), policy);
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    let b_owned = owned_by(&owners, "b");
    group.produce_wave();
    group.wait_for_model(&mut [&mut a, &mut b]);
    let a_rebalances = a.rebalances();

    b.kill();
    let mut b = group.start_static("b", backend, dirs[1].path(), policy);
    group.produce_wave();
    let after = group.wait_for_model(&mut [&mut a, &mut b]);
    assert_eq!(
        after, owners,
        "the restarted member did not get its partitions back"
    );
    assert_eq!(
        a.rebalances(),
        a_rebalances,
        "the group rebalanced while b restarted"
    );
    let readies = b.readies();
    let mut reopened: Vec<Partition> = readies.iter().map(|r| r.partition).collect();
    reopened.sort_unstable();
    assert_eq!(
        reopened, b_owned,
        "b reopened other partitions than its own"
    );
    for ready in &readies {
        assert!(
            ready.from > 0,
            "b restored partition {} from scratch despite its kept directory: {ready:?}",
            ready.partition
        );
        assert_eq!(ready.restored as i64, ready.end - ready.from, "{ready:?}");
    }
    b.assert_served_only_after_restore();
    a.stop();
    b.stop();
}

/// Changelog records `instances`' standbys read while `waves` of input are processed,
/// as a multiple of the records the changelog gained; `None` when the group rebalanced
/// meanwhile (an instance starved past its session, say), so the figure mixes two
/// placements. Standbys that moved without a rebalance fail the test.
fn standby_reads_per_changelog_record(
    group: &mut Group,
    instances: &mut [&mut Instance],
    waves: u32,
) -> Option<f64> {
    let logged = |group: &Group| -> i64 {
        (0..PARTITIONS)
            .map(|p| group.changelog_high_watermark(p))
            .sum()
    };
    let applied = |instances: &mut [&mut Instance]| -> Vec<BTreeMap<Partition, u64>> {
        instances.iter_mut().map(|i| i.standby_applied()).collect()
    };
    let rebalances = |instances: &mut [&mut Instance]| -> Vec<usize> {
        instances.iter().map(|i| i.rebalances()).collect()
    };
    wait_until_caught_up(instances);
    let (logged_before, applied_before) = (logged(group), applied(instances));
    let rebalances_before = rebalances(instances);
    group.produce_waves(waves);
    group.wait_for_model(instances);
    wait_until_caught_up(instances);
    let (logged_after, applied_after) = (logged(group), applied(instances));
    let rebalances_after = rebalances(instances);
    if rebalances_after != rebalances_before {
        eprintln!(
            "the group rebalanced while input was steady (rebalance callbacks before and \
             after: {rebalances_before:?}, {rebalances_after:?}); measuring again"
        );
        return None;
    }
    let mut read = 0;
    for (i, (before, after)) in applied_before.iter().zip(&applied_after).enumerate() {
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{}'s standbys moved while input was steady, without a rebalance callback on \
             any instance ({rebalances_after:?})",
            instances[i].name()
        );
        read += after.values().sum::<u64>() - before.values().sum::<u64>();
    }
    Some(read as f64 / (logged_after - logged_before) as f64)
}

/// Changelog records read by standbys under steady input, three instances: `AllUnowned`
/// reads every changelog twice (n - 1 copies), `Replicas(1)` once.
pub fn replicas_read_k_copies_of_the_changelog(bootstrap: &str, binary: &Path, backend: &str) {
    // A rebalance voids a measurement (its figure mixes two placements); three in a row fail.
    const MEASUREMENTS: usize = 3;
    for (policy, copies) in [("all", 2), ("replicas:1", 1)] {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut group = Group::new(bootstrap, binary);
        group.produce_wave();
        let mut a = group.start("a", backend, dirs[0].path(), policy);
        let mut b = group.start("b", backend, dirs[1].path(), policy);
        let mut c = group.start("c", backend, dirs[2].path(), policy);
        let mut measured = None;
        for _ in 0..MEASUREMENTS {
            let owners = wait_for_even_model(&group, &mut [&mut a, &mut b, &mut c]);
            wait_for_placement(&owners, &mut [&mut a, &mut b, &mut c], copies);
            eprintln!("standbys under {policy} placed, owners {owners:?}");
            measured =
                standby_reads_per_changelog_record(&mut group, &mut [&mut a, &mut b, &mut c], 4);
            if measured.is_some() {
                break;
            }
        }
        let read = measured.unwrap_or_else(|| {
            panic!("under {policy} the group rebalanced during each of {MEASUREMENTS} measurements")
        });
        eprintln!("standbys under {policy}: {read:.2} changelog copies read");
        assert!(
            (read - copies as f64).abs() < 0.05,
            "under {policy} the standbys read {read:.2} copies of the changelog, not {copies}"
        );
        for instance in [a, b, c] {
            instance.stop();
        }
    }
}
