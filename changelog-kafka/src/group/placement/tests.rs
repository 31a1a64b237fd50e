use super::*;

const PARTITIONS: i32 = 240;
// Computed independently (a Python FNV-1a + SplitMix64 finalizer), not copied from a run.
const PINNED_A0: u64 = 0x3025_e00c_34f8_8fc7;
const PINNED_I7: u64 = 0x2b78_dae2_0901_764a;

fn members(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn without(names: &[&str], gone: &str) -> BTreeSet<String> {
    let mut left = members(names);
    left.remove(gone);
    left
}

/// Partitions whose owner differs between two plans.
fn owners_moved(before: &Plan, after: &Plan) -> Vec<usize> {
    (0..before.owners.len())
        .filter(|&p| before.owners[p] != after.owners[p])
        .collect()
}

#[test]
fn every_member_owns_an_even_share() {
    for (names, partitions) in [
        (&["a", "b", "c"][..], 6),
        (&["a", "b", "c", "d"][..], 6),
        (&["a", "b", "c", "d"][..], 12),
        (&["a", "b", "c", "d", "e"][..], PARTITIONS),
        (&["a", "b", "c"][..], 2),
    ] {
        let plan = Plan::new(&members(names), partitions, 1);
        assert_eq!(plan.owners.len(), partitions as usize);
        let (floor, ceiling) = (
            partitions as usize / names.len(),
            (partitions as usize).div_ceil(names.len()),
        );
        for name in names {
            let owned = plan.owned_by(name).len();
            assert!(
                (floor..=ceiling).contains(&owned),
                "{name} owns {owned} of {partitions} over {} members",
                names.len()
            );
        }
    }
}

#[test]
fn k_standbys_per_partition_never_on_the_owner() {
    let names = ["a", "b", "c", "d"];
    for k in 0..=4 {
        let plan = Plan::new(&members(&names), PARTITIONS, k);
        for p in 0..PARTITIONS as usize {
            let standbys = &plan.standbys[p];
            assert_eq!(standbys.len(), k.min(3), "partition {p}, k = {k}");
            assert!(!standbys.contains(&plan.owners[p]));
            let distinct: BTreeSet<_> = standbys.iter().collect();
            assert_eq!(distinct.len(), standbys.len());
        }
    }
}

/// The point of the plan: whichever owner dies, each of its partitions goes to its first
/// standby, and the next standby moves up into its place.
#[test]
fn a_dead_owners_partitions_go_to_their_first_standbys() {
    let names = ["a", "b", "c", "d"];
    for partitions in [6, 12, PARTITIONS] {
        let plan = Plan::new(&members(&names), partitions, 2);
        for victim in names {
            let after = Plan::new(&without(&names, victim), partitions, 2);
            for p in plan.owned_by(victim) {
                let p = p as usize;
                assert_eq!(after.owners[p], plan.standbys[p][0], "partition {p}");
                assert_eq!(after.standbys[p][0], plan.standbys[p][1], "partition {p}");
            }
        }
    }
}

/// The weights are part of the wire contract: members running different versions during
/// a rolling upgrade must agree, so a change here would move every partition.
#[test]
fn weights_never_change() {
    assert_eq!(weight("a", 0), PINNED_A0);
    assert_eq!(weight("instance-1", 7), PINNED_I7);
}

#[test]
fn standbys_spread_evenly() {
    let names = ["a", "b", "c", "d"];
    let plan = Plan::new(&members(&names), PARTITIONS, 1);
    for name in names {
        let held = plan.standbys_on(name).len();
        // 240 standbys over 4 members: 60 each on average.
        assert!((35..=85).contains(&held), "{name} holds {held}");
    }
}

/// Standbys in `after` on a member that held no copy of the partition in `before`
/// (neither owned it nor stood by for it): the copies a change makes build anew.
fn standbys_moved(before: &Plan, after: &Plan) -> usize {
    (0..before.standbys.len())
        .map(|p| {
            after.standbys[p]
                .iter()
                .filter(|m| !before.standbys[p].contains(m) && before.owners[p] != **m)
                .count()
        })
        .sum()
}

/// A member joining takes about its share of the partitions, and one leaving gives up
/// its own and few others; standbys move about as much: warm copies stay where they are.
/// (Measured: 51 owners and 58 of 240 standbys move when a fifth member joins, 64 owners
/// and 74 standbys when one of four leaves.)
#[test]
fn a_member_joining_or_leaving_moves_few_owners_and_standbys() {
    let four = ["a", "b", "c", "d"];
    let five = ["a", "b", "c", "d", "e"];
    // Moves beyond the ones that must happen, for the even shares: at most 5 %.
    let slack = PARTITIONS as usize / 20;
    let before = Plan::new(&members(&four), PARTITIONS, 1);
    let joined = Plan::new(&members(&five), PARTITIONS, 1);
    let moved = owners_moved(&before, &joined);
    let to_newcomer = joined.owned_by("e").len();
    let standbys_to_newcomer = joined.standbys_on("e").len();
    let standbys = standbys_moved(&before, &joined);
    eprintln!(
        "join: {} owners moved, {to_newcomer} to the newcomer; {standbys} standbys moved, \
         {standbys_to_newcomer} to the newcomer",
        moved.len()
    );
    // The newcomer's share (48 of 240) must move.
    assert!(moved.len() <= to_newcomer + slack, "{} moved", moved.len());
    assert!(
        standbys <= standbys_to_newcomer + slack,
        "{standbys} standbys moved"
    );

    let left = Plan::new(&without(&four, "d"), PARTITIONS, 1);
    let moved = owners_moved(&before, &left);
    let of_d = before.owned_by("d").len();
    // d's standbys must move, and each partition d owned takes its standby as owner.
    let must = before.standbys_on("d").len() + of_d;
    let standbys = standbys_moved(&before, &left);
    eprintln!(
        "leave: {} owners moved, {of_d} of them d's; {standbys} standbys moved, {must} had to",
        moved.len()
    );
    assert!(moved.len() <= of_d + slack, "{} moved", moved.len());
    assert!(standbys <= must + slack, "{standbys} standbys moved");
}

#[test]
fn fewer_members_than_k_plus_one_put_a_standby_on_every_other_member() {
    let plan = Plan::new(&members(&["a", "b"]), 6, 3);
    for p in 0..6 {
        assert_eq!(plan.standbys[p].len(), 1);
    }
    let alone = Plan::new(&members(&["a"]), 6, 1);
    assert_eq!(alone.owned_by("a").len(), 6);
    assert!(alone.standbys_on("a").is_empty());
    assert!(Plan::new(&BTreeSet::new(), 6, 1).owned_by("a").is_empty());
}
