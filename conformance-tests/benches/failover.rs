//! Failover with standbys on a real broker: three `rewards_instance` processes serve six
//! partitions of `STATESTORE_FAILOVER_KEYS` keys each (default 100,000); the instance
//! owning the most partitions is SIGKILLed, and the time until all of its partitions
//! serve again on the others is measured, per standby policy (`none`, `replicas:1`,
//! `all`) and backend. Before the kill, steady input runs for a while and the changelog
//! records each instance's standbys read are counted, per minute of input.
//!
//! `scripts/kafka.sh start single`, then
//! `cargo bench -p conformance-tests --features kafka,rocksdb --profile dev --bench failover`.
//! `STATESTORE_FAILOVER_ROUNDS` (default 3) rounds per cell, medians printed;
//! `STATESTORE_FAILOVER_BACKENDS` (default `memory,rocksdb`).
//!
//! Without `--bench` (a `cargo test` of every target) it does nothing: it needs a broker
//! and minutes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use conformance_tests::scale_out::{Group, Instance, PARTITIONS};
use state_core::Partition;
use test_support::eventually;

/// Steady input before the kill: purchases a second, and seconds.
const STEADY_RATE: u32 = 5_000;
const STEADY_SECONDS: u32 = 12;
/// The instances' session timeout (`rewards_instance` sets 6 s): the floor of a
/// failover, spent before the group notices the kill.
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Key and value bytes of one changelog record of the workload (`customer-NNNNNN`, and
/// a 16-byte reward).
const RECORD_PAYLOAD: u64 = 15 + 16;
const DEADLINE: Duration = Duration::from_secs(600);

/// One failover.
struct Round {
    /// Kill to the last of the victim's partitions ready on a survivor.
    failover: Duration,
    /// Kill to the first of them assigned to a survivor: the session timeout and the
    /// rebalance.
    detected: Duration,
    /// Longest assigned-to-ready of the victim's partitions.
    slowest_restore: Duration,
    /// Changelog records replayed by the victim's partitions' restores.
    restored: u64,
    /// Longest a survivor's own partition (kept through the failover) went unserved:
    /// zero under cooperative rebalancing, the eager barrier's pause under `Replicas`.
    survivors_paused: Duration,
    /// Of the victim's partitions, how many went where their standby was.
    promoted: usize,
    moved: usize,
    /// Changelog records the standbys of each instance read per minute of steady input.
    standby_reads_per_minute: Vec<f64>,
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let setting = |name: &str, default: u32| -> u32 {
        std::env::var(name).map_or(default, |v| v.parse().expect("a number"))
    };
    let rounds = setting("STATESTORE_FAILOVER_ROUNDS", 3);
    let keys = setting("STATESTORE_FAILOVER_KEYS", 100_000);
    let backends =
        std::env::var("STATESTORE_FAILOVER_BACKENDS").unwrap_or_else(|_| "memory,rocksdb".into());
    let binary = Path::new(env!("CARGO_BIN_EXE_rewards_instance"));
    println!(
        "failover: 3 instances, {PARTITIONS} partitions x {keys} keys, session timeout \
         {SESSION_TIMEOUT:?}, {rounds} rounds per cell (medians)"
    );
    println!(
        "| backend | standbys | kill -> all serving | kill -> assigned | slowest restore | records restored | went to their standby | survivors' own partitions paused | standby records read / instance / min of input |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for backend in backends.split(',') {
        for policy in ["none", "replicas:1", "all"] {
            let results: Vec<Round> = (0..rounds)
                .map(|_| failover(&bootstrap, binary, backend, policy, keys))
                .collect();
            let median = |f: &dyn Fn(&Round) -> f64| -> f64 {
                let mut values: Vec<f64> = results.iter().map(f).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let reads = median(&|r| {
                r.standby_reads_per_minute.iter().sum::<f64>()
                    / r.standby_reads_per_minute.len() as f64
            });
            println!(
                "| {backend} | {policy} | {:.2} s | {:.2} s | {:.0} ms | {:.0} | {} | {:.0} ms | {:.0} ({:.1} MB payload) |",
                median(&|r| r.failover.as_secs_f64()),
                median(&|r| r.detected.as_secs_f64()),
                median(&|r| r.slowest_restore.as_secs_f64() * 1e3),
                median(&|r| r.restored as f64),
                results
                    .iter()
                    .map(|r| format!("{}/{}", r.promoted, r.moved))
                    .collect::<Vec<_>>()
                    .join(", "),
                median(&|r| r.survivors_paused.as_secs_f64() * 1e3),
                reads,
                reads * RECORD_PAYLOAD as f64 / 1e6,
            );
        }
    }
}

fn failover(bootstrap: &str, binary: &Path, backend: &str, policy: &str, keys: u32) -> Round {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut group = Group::new(bootstrap, binary).with_customers(keys * PARTITIONS as u32);
    group.produce_wave();
    let mut instances: Vec<Instance> = ["a", "b", "c"]
        .iter()
        .zip(&dirs)
        .map(|(name, dir)| group.start(name, backend, dir.path(), policy))
        .collect();
    group.wait_until_committed(DEADLINE);
    let copies = match policy {
        "none" => 0,
        "replicas:1" => 1,
        _ => 2,
    };
    let owners = wait_until_settled(&mut instances, copies);

    let reads_before = standby_reads(&mut instances);
    group.produce_steady(STEADY_RATE, STEADY_SECONDS);
    group.wait_until_committed(DEADLINE);
    wait_until_settled(&mut instances, copies);
    let reads_after = standby_reads(&mut instances);
    let minutes = f64::from(STEADY_SECONDS) / 60.0;
    let standby_reads_per_minute = reads_before
        .iter()
        .zip(&reads_after)
        .map(|(before, after)| after.saturating_sub(*before) as f64 / minutes)
        .collect();
    let mut standbys: Vec<Vec<Partition>> = instances
        .iter_mut()
        .map(|i| i.lags().into_keys().collect())
        .collect();

    let victim = (0..instances.len())
        .max_by_key(|&i| owners.values().filter(|&&o| o == i).count())
        .unwrap_or_default();
    let victim_owned: Vec<Partition> = owners
        .iter()
        .filter(|(_, o)| **o == victim)
        .map(|(p, _)| *p)
        .collect();
    standbys.remove(victim);
    let victim = instances.remove(victim);
    let readies_before: Vec<usize> = instances.iter().map(|i| i.readies().len()).collect();
    let killed = Instant::now();
    victim.kill();
    // The measurement comes from the instances' own timestamps, not from this wait.
    eventually(DEADLINE, "the victim's partitions served again", || {
        let served: Vec<Partition> = instances.iter_mut().flat_map(|i| i.owned()).collect();
        if victim_owned.iter().all(|p| served.contains(p)) {
            Ok(())
        } else {
            Err(format!(
                "served {served:?} of the victim's {victim_owned:?}"
            ))
        }
    });
    let mut round = Round {
        failover: Duration::ZERO,
        detected: DEADLINE,
        slowest_restore: Duration::ZERO,
        restored: 0,
        survivors_paused: Duration::ZERO,
        promoted: 0,
        moved: victim_owned.len(),
        standby_reads_per_minute,
    };
    for (i, instance) in instances.iter().enumerate() {
        for (p, (assigned, ready)) in instance.arrivals_since(killed) {
            if !victim_owned.contains(&p) {
                continue;
            }
            let ready = ready.expect("served partitions were ready");
            round.failover = round.failover.max(ready - killed);
            round.detected = round.detected.min(assigned - killed);
            round.slowest_restore = round.slowest_restore.max(ready - assigned);
            if standbys[i].contains(&p) {
                round.promoted += 1;
            }
        }
        for (p, paused) in instance.pauses_since(killed) {
            if !victim_owned.contains(&p) {
                round.survivors_paused = round.survivors_paused.max(paused);
            }
        }
        for ready in instance.readies().into_iter().skip(readies_before[i]) {
            if victim_owned.contains(&ready.partition) {
                round.restored += ready.restored;
            }
        }
    }
    for instance in instances {
        instance.stop();
    }
    round
}

/// Waits until every partition is served by exactly one instance, each instance serves
/// its share, and every partition has `copies` standbys, all caught up; returns each partition's owner (an index into `instances`).
fn wait_until_settled(instances: &mut [Instance], copies: usize) -> BTreeMap<Partition, usize> {
    eventually(
        DEADLINE,
        "the group settling with its standbys caught up",
        || {
            let mut owners = BTreeMap::new();
            let mut served_twice = false;
            let mut standbys: BTreeMap<Partition, usize> = BTreeMap::new();
            let mut caught_up = true;
            for (i, instance) in instances.iter_mut().enumerate() {
                for p in instance.owned() {
                    served_twice |= owners.insert(p, i).is_some();
                }
                for (p, lag) in instance.lags() {
                    *standbys.entry(p).or_default() += 1;
                    caught_up &= lag == 0;
                }
            }
            let balanced = (0..instances.len()).all(|i| {
                owners.values().filter(|&&o| o == i).count()
                    == PARTITIONS as usize / instances.len()
            });
            let settled = !served_twice
                && owners.len() == PARTITIONS as usize
                && balanced
                && caught_up
                && (0..PARTITIONS).all(|p| standbys.get(&p).copied().unwrap_or(0) == copies);
            if settled {
                Ok(owners)
            } else {
                Err(format!("owners {owners:?}, standbys {standbys:?}"))
            }
        },
    )
}

/// Changelog records each instance's standbys applied so far.
fn standby_reads(instances: &mut [Instance]) -> Vec<u64> {
    instances
        .iter_mut()
        .map(|i| i.standby_applied().values().sum())
        .collect()
}
