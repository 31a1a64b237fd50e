//! The scale-out scenarios on a real broker (see [`crate::scale_out`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use state_core::Partition;
use test_support::eventually;

use crate::scale_out::{CUSTOMERS, Group, Instance, PARTITIONS, Ready};

/// Waits until each partition of `partitions` has `per_partition` more records in its
/// changelog than `before` (in the same order), open transactions included.
fn wait_until_logged(group: &Group, partitions: &[Partition], before: &[i64], per_partition: i64) {
    eventually(
        Duration::from_secs(60),
        &format!("{per_partition} more records logged on each of partitions {partitions:?}"),
        || {
            for (&p, &before) in partitions.iter().zip(before) {
                let now = group.changelog_high_watermark(p);
                if now < before + per_partition {
                    return Err(format!("partition {p} at {now}, from {before}"));
                }
            }
            Ok(())
        },
    );
}

pub(crate) fn owned_by(owners: &BTreeMap<Partition, String>, name: &str) -> Vec<Partition> {
    owners
        .iter()
        .filter(|(_, o)| o.as_str() == name)
        .map(|(p, _)| *p)
        .collect()
}

/// The readies `instance` reported after the first `seen` of them.
pub(crate) fn readies_since(instance: &Instance, seen: usize) -> Vec<Ready> {
    instance.readies().into_iter().skip(seen).collect()
}

/// Three instances on `backend` (a durable one): start one, add a second and a third
/// (partitions move, state follows, the newcomers restore from scratch), kill one with
/// SIGKILL, remove another cleanly; after each step the union of the stores equals the
/// model and nothing was served before its restore. Partitions that come back to the
/// first instance, which kept their directories, replay only the changelog tail.
pub fn three_instances_scale_out_and_in(bootstrap: &str, binary: &Path, backend: &str) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary);

    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a]);
    assert_eq!(owned_by(&owners, "a").len(), PARTITIONS as usize);

    group.produce_wave();
    let mut b = group.start("b", backend, dirs[1].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    let moved_to_b = owned_by(&owners, "b");
    assert!(
        !moved_to_b.is_empty(),
        "no partition moved to b: {owners:?}"
    );
    for ready in b.readies() {
        assert_eq!(ready.from, 0, "b had no local state: {ready:?}");
        assert_eq!(
            ready.restored as i64, ready.end,
            "cold restore replays it all: {ready:?}"
        );
        assert!(ready.restored > 0, "{ready:?}");
    }

    group.produce_wave();
    let mut c = group.start("c", backend, dirs[2].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a, &mut b, &mut c]);
    for name in ["a", "b", "c"] {
        assert!(
            !owned_by(&owners, name).is_empty(),
            "{name} owns nothing: {owners:?}"
        );
    }
    let a_seen = a.readies().len();

    // A crash: c dies mid-stream without committing or leaving the group.
    group.produce_wave();
    c.assert_served_only_after_restore();
    c.kill();
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    assert!(owned_by(&owners, "c").is_empty());

    // A clean scale-in: b leaves, everything comes back to a.
    group.produce_wave();
    b.assert_served_only_after_restore();
    b.stop();
    let owners = group.wait_for_model(&mut [&mut a]);
    assert_eq!(owned_by(&owners, "a").len(), PARTITIONS as usize);
    a.assert_served_only_after_restore();

    // Every partition that came back to a found its kept directory and replayed only
    // what the other owners appended meanwhile.
    let returned = readies_since(&a, a_seen);
    assert!(!returned.is_empty(), "nothing came back to a");
    for ready in &returned {
        assert!(
            ready.from > 0,
            "a restored from scratch despite its kept directory: {ready:?}"
        );
        assert_eq!(ready.restored as i64, ready.end - ready.from, "{ready:?}");
    }
    assert!(
        returned.iter().any(|r| r.restored > 0),
        "no returning partition had a tail to replay: {returned:?}"
    );
    a.stop();
}

/// Two instances with a standby of every partition they do not own. The survivor's
/// standbys stop tailing (so their lag is known), the owner writes more and is killed;
/// the promoted standbys replay exactly their lag, and the state equals the model.
pub fn promoted_standby_replays_only_its_lag(bootstrap: &str, binary: &Path, backend: &str) {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary);
    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), "all");
    group.wait_for_model(&mut [&mut a]);
    let mut b = group.start("b", backend, dirs[1].path(), "all");
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    let a_owns = owned_by(&owners, "a");
    assert!(
        !a_owns.is_empty() && !owned_by(&owners, "b").is_empty(),
        "{owners:?}"
    );

    // b's standbys of a's partitions catch up, then stop.
    eventually(
        Duration::from_secs(60),
        "b's standbys of a's partitions catching up",
        || {
            let lags = b.lags();
            if a_owns.iter().all(|p| lags.get(p) == Some(&0)) {
                Ok(())
            } else {
                Err(format!("lags {lags:?}"))
            }
        },
    );
    b.pause_standbys();

    group.produce_wave();
    group.wait_for_model(&mut [&mut a, &mut b]);
    let lags = b.lags();
    for p in &a_owns {
        assert!(
            lags[p] > 0,
            "a wrote nothing to partition {p}? lags {lags:?}"
        );
    }
    let b_seen = b.readies().len();
    a.kill();
    let owners = group.wait_for_model(&mut [&mut b]);
    assert_eq!(owned_by(&owners, "b").len(), PARTITIONS as usize);
    b.assert_served_only_after_restore();
    let promoted = readies_since(&b, b_seen);
    let mut took_over: Vec<Partition> = promoted.iter().map(|r| r.partition).collect();
    took_over.sort_unstable();
    assert_eq!(took_over, a_owns, "b took over exactly a's partitions");
    for ready in promoted {
        assert_eq!(
            ready.restored, lags[&ready.partition],
            "promotion replayed more than the standby lagged: {ready:?}"
        );
        assert!(
            ready.from > 0 && (ready.restored as i64) < ready.end,
            "{ready:?}"
        );
    }
    b.stop();
}

/// Exactly-once across a crash: three instances simply add every purchase (no check for
/// replays); one is killed with SIGKILL while it processes a burst, with transactions
/// open. Its partitions move, the new owners fence it, restore the committed state and
/// consume from the committed input offsets: the totals are exact — a purchase counted
/// twice or lost would show.
pub fn exactly_once_group_survives_a_kill(bootstrap: &str, binary: &Path, backend: &str) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // A long commit interval leaves the burst uncommitted when the kill comes.
    let mut group = Group::new(bootstrap, binary)
        .exactly_once()
        .with_commit_interval(Duration::from_secs(30));
    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), "none");
    let mut b = group.start("b", backend, dirs[1].path(), "none");
    let mut c = group.start("c", backend, dirs[2].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a, &mut b, &mut c]);
    let c_owned = owned_by(&owners, "c");

    // Kill c once its share of the burst is processed and logged — sitting in the
    // changelog inside transactions it will never commit.
    let waves = 10;
    let logged_before: Vec<i64> = c_owned
        .iter()
        .map(|&p| group.changelog_high_watermark(p))
        .collect();
    group.produce_waves(waves);
    let per_partition = i64::from(waves * CUSTOMERS) / i64::from(PARTITIONS);
    wait_until_logged(&group, &c_owned, &logged_before, per_partition);
    c.kill();
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    for p in c_owned {
        assert!(
            owners.contains_key(&p),
            "partition {p} of the killed instance was not taken over"
        );
    }
    a.assert_served_only_after_restore();
    b.assert_served_only_after_restore();
    a.stop();
    b.stop();
}

/// Exactly-once against a zombie: an instance frozen with SIGSTOP right after it logged a
/// burst inside transactions it has not committed, for long enough that the group moves
/// its partitions on (past the session timeout, well within its transaction timeout).
/// The new owners restore only what was committed and fence it; thawed, the zombie finds
/// its partitions lost, aborts its transaction (or has its commit refused: the group
/// metadata it would send carries a dead generation, KIP-447) and rejoins. Totals and
/// visits stay exact: anything of the zombie's interval counted would show.
pub fn exactly_once_zombie_is_fenced(bootstrap: &str, binary: &Path, backend: &str) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // A long commit interval leaves the burst uncommitted when the freeze comes, and
    // makes the transaction timeout (twice the interval) far longer than the freeze.
    let mut group = Group::new(bootstrap, binary)
        .exactly_once()
        .with_commit_interval(Duration::from_secs(30));
    group.produce_wave();
    let mut a = group.start("a", backend, dirs[0].path(), "none");
    let mut b = group.start("b", backend, dirs[1].path(), "none");
    let mut c = group.start("c", backend, dirs[2].path(), "none");
    let owners = group.wait_for_model(&mut [&mut a, &mut b, &mut c]);
    let c_owned = owned_by(&owners, "c");
    let logged_before: Vec<i64> = c_owned
        .iter()
        .map(|&p| group.changelog_high_watermark(p))
        .collect();
    let waves = 5;
    group.produce_waves(waves);
    let per_partition = i64::from(waves * CUSTOMERS) / i64::from(PARTITIONS);
    wait_until_logged(&group, &c_owned, &logged_before, per_partition);
    c.suspend();
    // The group moves c's partitions on: a and b serve everything, exactly.
    let owners = group.wait_for_model(&mut [&mut a, &mut b]);
    for p in &c_owned {
        assert!(
            owners.contains_key(p),
            "partition {p} of the zombie was not taken over"
        );
    }
    c.resume();
    group.produce_wave();
    group.wait_for_model(&mut [&mut a, &mut b, &mut c]);
    for instance in [&a, &b, &c] {
        instance.assert_served_only_after_restore();
    }
    a.stop();
    b.stop();
    c.stop();
}
