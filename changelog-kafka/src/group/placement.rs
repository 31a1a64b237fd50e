//! Who owns each partition and who holds its standbys under
//! [`StandbyPolicy::Replicas`](super::StandbyPolicy::Replicas): a pure function of the
//! group's members, which every member computes alike from the group's description,
//! without coordinating.
//!
//! - **Owners**: rendezvous (highest-random-weight) hashing with bounded loads. Every
//!   (member, partition) pair has a fixed weight; pairs are taken heaviest first, and a
//!   partition goes to the member of its heaviest pair that still has room. Room is the
//!   even share: every member owns `⌊P/n⌋` or `⌈P/n⌉` of the `P` partitions.
//! - **Standbys**: the first standby of `p` is the member that would own `p` if its owner
//!   left — the owner of `p` in the plan of the other members; the second is its owner in
//!   the plan without those two, and so on. So when an owner dies, every partition it
//!   owned goes to the member holding its first standby (a warm copy), and its other
//!   standbys stay where they are: the plan of the survivors is, for those partitions,
//!   exactly the one the standbys were placed by.
//!
//! Cost: one pass over the `P·n` sorted pairs per distinct set of excluded members, of
//! which `k = 1` needs at most `n + 1` and `k = 2` at most `n² + 1`: well under a
//! millisecond for 100 partitions over 10 members, computed once per rebalance.
//!
//! Weights come from a fixed hash (FNV-1a, then a 64-bit finalizer), never a seeded one:
//! every process, on every machine and version, must compute the same plan.

use std::collections::{BTreeSet, HashMap};

use state_core::Partition;

/// Every partition's owner and standbys, by member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The owner of each partition, by index.
    owners: Vec<String>,
    /// The standbys of each partition, by index, first to be promoted first.
    standbys: Vec<Vec<String>>,
}

impl Plan {
    /// The plan for `members` (their stable identities), `partitions` partitions and `k`
    /// standbys each (fewer when there are not `k + 1` members). No member, no owners.
    pub(crate) fn new(members: &BTreeSet<String>, partitions: i32, k: usize) -> Self {
        let names: Vec<&str> = members.iter().map(String::as_str).collect();
        let count = usize::try_from(partitions).unwrap_or(0);
        if names.is_empty() {
            return Self {
                owners: Vec::new(),
                standbys: Vec::new(),
            };
        }
        let weights = Weights::new(&names, count);
        let mut plans: HashMap<Vec<usize>, Vec<usize>> = HashMap::new();
        let mut owners_without = |excluded: &[usize]| -> Vec<usize> {
            let mut key = excluded.to_vec();
            key.sort_unstable();
            plans
                .entry(key)
                .or_insert_with_key(|key| weights.owners(key))
                .clone()
        };
        let owners = owners_without(&[]);
        let standbys = (0..count)
            .map(|p| {
                let mut excluded = vec![owners[p]];
                while excluded.len() <= k && excluded.len() < names.len() {
                    let next = owners_without(&excluded)[p];
                    excluded.push(next);
                }
                excluded[1..].iter().map(|&m| names[m].to_owned()).collect()
            })
            .collect();
        Self {
            owners: owners.iter().map(|&m| names[m].to_owned()).collect(),
            standbys,
        }
    }

    /// The partitions `member` owns.
    pub(crate) fn owned_by(&self, member: &str) -> BTreeSet<Partition> {
        self.partitions_where(|p| self.owners[p] == member)
    }

    /// The partitions whose standbys `member` holds.
    pub(crate) fn standbys_on(&self, member: &str) -> BTreeSet<Partition> {
        self.partitions_where(|p| self.standbys[p].iter().any(|m| m == member))
    }

    fn partitions_where(&self, keep: impl Fn(usize) -> bool) -> BTreeSet<Partition> {
        (0..self.owners.len())
            .filter(|&p| keep(p))
            .filter_map(|p| Partition::try_from(p).ok())
            .collect()
    }
}

/// Every (member, partition) pair, heaviest first.
struct Weights {
    members: usize,
    partitions: usize,
    /// (weight, member, partition), sorted heaviest first; ties (as good as impossible)
    /// break by member name order, then partition, so every member agrees.
    pairs: Vec<(u64, usize, usize)>,
}

impl Weights {
    fn new(members: &[&str], partitions: usize) -> Self {
        let mut pairs: Vec<(u64, usize, usize)> = (0..members.len())
            .flat_map(|m| (0..partitions).map(move |p| (weight(members[m], p as Partition), m, p)))
            .collect();
        pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        Self {
            members: members.len(),
            partitions,
            pairs,
        }
    }

    /// The owner of every partition among the members not in `excluded` (sorted): each
    /// partition to the heaviest member with room, every member owning `⌊P/n⌋` or
    /// `⌈P/n⌉`.
    fn owners(&self, excluded: &[usize]) -> Vec<usize> {
        let present = self.members - excluded.len();
        let floor = self.partitions / present;
        // How many members may own one more than `floor`.
        let mut ceilings = self.partitions % present;
        let mut loads = vec![0usize; self.members];
        let mut owners = vec![usize::MAX; self.partitions];
        let mut left = self.partitions;
        for &(_, m, p) in &self.pairs {
            if left == 0 {
                break;
            }
            if owners[p] != usize::MAX || excluded.binary_search(&m).is_ok() {
                continue;
            }
            let room = loads[m] < floor || (loads[m] == floor && ceilings > 0);
            if !room {
                continue;
            }
            if loads[m] == floor {
                ceilings -= 1;
            }
            loads[m] += 1;
            owners[p] = m;
            left -= 1;
        }
        owners
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
mod tests;
