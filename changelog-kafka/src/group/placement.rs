//! Where the standbys of [`StandbyPolicy::Replicas`](super::StandbyPolicy::Replicas) go:
//! rendezvous (highest-random-weight) hashing of each partition over the group's
//! members, which every member computes alike from the group's description, without
//! coordinating.
//!
//! For partition `p`, every member except `p`'s owner gets the weight `weight(member, p)`;
//! the `k` heaviest hold `p`'s standbys. When a member joins, it takes over a standby
//! only where its weight beats the lightest of the `k` (about `k/n` of all standbys);
//! when one leaves, only its own standbys move, each to the next heaviest member. Warm
//! copies elsewhere stay where they are. (An owner change moves at most one standby of
//! that partition: the new owner's copy, if it had one, goes to the next heaviest.)
//!
//! Weights come from a fixed hash (FNV-1a, then a 64-bit finalizer), never a seeded one:
//! every process, on every machine and version, must compute the same placement.

use std::collections::{BTreeMap, BTreeSet};

use state_core::Partition;

/// The group as standby placement sees it: its members by their stable identity (the
/// client id) and the owner of each assigned partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// Every member of the group.
    pub(crate) members: BTreeSet<String>,
    /// The member each partition is assigned to; a partition missing here is unassigned
    /// at the moment (mid-rebalance) and its standbys go to the `k` heaviest members.
    pub(crate) owners: BTreeMap<Partition, String>,
}

impl GroupView {
    /// The members holding `partition`'s standbys: the `k` heaviest other than its owner,
    /// heaviest first.
    pub(crate) fn standbys_of(&self, partition: Partition, k: usize) -> Vec<&str> {
        let owner = self.owners.get(&partition).map(String::as_str);
        let mut ranked: Vec<(u64, &str)> = self
            .members
            .iter()
            .map(String::as_str)
            .filter(|member| Some(*member) != owner)
            .map(|member| (weight(member, partition), member))
            .collect();
        // Ties (as good as impossible) break by name, so every member agrees.
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        ranked.into_iter().take(k).map(|(_, m)| m).collect()
    }

    /// The partitions of `0..partitions` whose standbys `member` holds.
    pub(crate) fn standbys_on(
        &self,
        member: &str,
        partitions: i32,
        k: usize,
    ) -> BTreeSet<Partition> {
        (0..partitions)
            .filter(|&p| self.standbys_of(p, k).contains(&member))
            .collect()
    }
}

/// The rendezvous weight of `member` for `partition`.
fn weight(member: &str, partition: Partition) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = member.bytes().chain(partition.to_be_bytes());
    let hash = bytes.fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    finalize(hash)
}

/// SplitMix64's finalizer: FNV-1a leaves the last bytes (the partition) weakly mixed
/// into the high bits, which the ranking compares first.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTITIONS: i32 = 240;
    // Computed independently (a Python FNV-1a + SplitMix64 finalizer), not copied from a run.
    const PINNED_A0: u64 = 0x3025_e00c_34f8_8fc7;
    const PINNED_I7: u64 = 0x2b78_dae2_0901_764a;

    fn members(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    /// Partitions dealt round-robin over `members`.
    fn view(names: &[&str]) -> GroupView {
        let members = members(names);
        let ordered: Vec<&String> = members.iter().collect();
        let owners = (0..PARTITIONS)
            .map(|p| (p, ordered[p as usize % ordered.len()].clone()))
            .collect();
        GroupView { members, owners }
    }

    /// Every (partition, standby member) pair of `view`.
    fn placements(view: &GroupView, k: usize) -> BTreeSet<(Partition, String)> {
        (0..PARTITIONS)
            .flat_map(|p| {
                view.standbys_of(p, k)
                    .into_iter()
                    .map(move |m| (p, m.to_owned()))
            })
            .collect()
    }

    #[test]
    fn k_standbys_per_partition_never_on_the_owner() {
        let view = view(&["a", "b", "c", "d"]);
        for k in 0..=4 {
            for p in 0..PARTITIONS {
                let standbys = view.standbys_of(p, k);
                assert_eq!(standbys.len(), k.min(3), "partition {p}, k = {k}");
                assert!(!standbys.contains(&view.owners[&p].as_str()));
                let distinct: BTreeSet<_> = standbys.iter().collect();
                assert_eq!(distinct.len(), standbys.len());
            }
        }
    }

    #[test]
    fn every_member_computes_the_same_placement() {
        let view = view(&["instance-1", "instance-2", "instance-3"]);
        let by_partition = placements(&view, 1);
        let by_member: BTreeSet<(Partition, String)> = view
            .members
            .iter()
            .flat_map(|m| {
                view.standbys_on(m, PARTITIONS, 1)
                    .into_iter()
                    .map(move |p| (p, m.clone()))
            })
            .collect();
        assert_eq!(by_partition, by_member);
    }

    /// The weights are part of the wire contract: members running different versions
    /// during a rolling upgrade must agree, so a change here would move every standby.
    #[test]
    fn weights_never_change() {
        assert_eq!(weight("a", 0), PINNED_A0);
        assert_eq!(weight("instance-1", 7), PINNED_I7);
    }

    #[test]
    fn standbys_spread_evenly() {
        let view = view(&["a", "b", "c", "d"]);
        for member in &view.members {
            let held = view.standbys_on(member, PARTITIONS, 1).len();
            // 240 standbys over 4 members: 60 each on average.
            assert!((35..=85).contains(&held), "{member} holds {held}");
        }
    }

    /// Standbys that are placed after a membership change but were not before.
    fn moved(before: &GroupView, after: &GroupView, k: usize) -> usize {
        placements(after, k)
            .difference(&placements(before, k))
            .count()
    }

    #[test]
    fn a_member_joining_or_leaving_moves_only_its_share() {
        let owners_of = |names: &[&str]| view(names).owners;
        for k in [1, 2] {
            // Owners stay put (a sticky assignor) so only the membership changes.
            let before = view(&["a", "b", "c", "d"]);
            let mut joined = before.clone();
            joined.members.insert("e".to_owned());
            let moved_in = moved(&before, &joined, k);
            let total = PARTITIONS as usize * k;
            // The newcomer takes about k/(n+1)... of all standbys: one fifth here.
            assert!(
                moved_in > total / 10 && moved_in < total * 3 / 10,
                "k = {k}: {moved_in} of {total} standbys moved when e joined"
            );
            // Every move went to the newcomer.
            let new: Vec<_> = placements(&joined, k)
                .difference(&placements(&before, k))
                .map(|(_, m)| m.clone())
                .collect();
            assert!(new.iter().all(|m| m == "e"), "{new:?}");

            // d leaves; its partitions go to the others, as a sticky assignor would.
            let mut left = before.clone();
            left.members.remove("d");
            left.owners = owners_of(&["a", "b", "c"]);
            for (p, owner) in &before.owners {
                if owner != "d" {
                    left.owners.insert(*p, owner.clone());
                }
            }
            let lost_by_d = placements(&before, k)
                .iter()
                .filter(|(_, m)| m == "d")
                .count();
            let new_owners = before.owners.values().filter(|o| *o == "d").count();
            // d's standbys move, plus at most one per partition whose owner changed.
            assert!(
                moved(&before, &left, k) <= lost_by_d + new_owners,
                "k = {k}: {} moved, d held {lost_by_d}",
                moved(&before, &left, k)
            );
        }
    }

    #[test]
    fn an_unassigned_partition_still_gets_k_standbys() {
        let mut view = view(&["a", "b"]);
        view.owners.remove(&3);
        assert_eq!(view.standbys_of(3, 1).len(), 1);
        assert_eq!(view.standbys_of(3, 5).len(), 2);
    }
}
