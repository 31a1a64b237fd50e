//! Which redb durability each commit gets.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use redb::Durability;

use crate::config::CommitDurability;

/// Picks `Immediate` or `None` per commit and counts the `None` commits not yet made
/// durable. Callers consult it only while holding a redb write transaction, and redb
/// allows one at a time, so the counter never races with itself.
#[derive(Debug)]
pub(crate) struct CommitPolicy {
    durability: CommitDurability,
    bulk_immediate_every: u32,
    bulk_loading: AtomicBool,
    non_durable_commits: AtomicU32,
}

impl CommitPolicy {
    pub(crate) fn new(durability: CommitDurability, bulk_immediate_every: u32) -> Self {
        Self {
            durability,
            bulk_immediate_every,
            bulk_loading: AtomicBool::new(false),
            non_durable_commits: AtomicU32::new(0),
        }
    }

    pub(crate) fn set_bulk_loading(&self, bulk_loading: bool) {
        self.bulk_loading.store(bulk_loading, Ordering::SeqCst);
    }

    /// Whether the store is bulk loading.
    pub(crate) fn bulk_loading(&self) -> bool {
        self.bulk_loading.load(Ordering::SeqCst)
    }

    /// The durability of the next ordinary commit: `Immediate` unless a `None` run is
    /// allowed and has not reached its length limit yet.
    pub(crate) fn next(&self) -> Durability {
        let every = if self.bulk_loading.load(Ordering::SeqCst) {
            self.bulk_immediate_every
        } else {
            match self.durability {
                CommitDurability::Immediate => return Durability::Immediate,
                CommitDurability::Deferred { immediate_every } => immediate_every,
            }
        };
        let run = self.non_durable_commits.load(Ordering::SeqCst);
        if run.saturating_add(1) >= every {
            Durability::Immediate
        } else {
            Durability::None
        }
    }

    /// Records a successful commit with `durability`.
    pub(crate) fn committed(&self, durability: Durability) {
        match durability {
            Durability::None => {
                self.non_durable_commits.fetch_add(1, Ordering::SeqCst);
            }
            // An Immediate commit makes every earlier None commit durable too.
            _ => self.non_durable_commits.store(0, Ordering::SeqCst),
        }
    }

    /// Whether some commit is not durable yet.
    pub(crate) fn has_non_durable(&self) -> bool {
        self.non_durable_commits.load(Ordering::SeqCst) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &CommitPolicy, commits: usize) -> Vec<bool> {
        (0..commits)
            .map(|_| {
                let durability = policy.next();
                policy.committed(durability);
                matches!(durability, Durability::Immediate)
            })
            .collect()
    }

    #[test]
    fn immediate_commits_every_time() {
        let policy = CommitPolicy::new(CommitDurability::Immediate, 4);
        assert_eq!(run(&policy, 3), [true, true, true]);
        assert!(!policy.has_non_durable());
    }

    #[test]
    fn deferred_makes_every_nth_commit_immediate() {
        let policy = CommitPolicy::new(CommitDurability::Deferred { immediate_every: 3 }, 100);
        assert_eq!(run(&policy, 6), [false, false, true, false, false, true]);
        run(&policy, 1);
        assert!(policy.has_non_durable());
    }

    #[test]
    fn bulk_loading_overrides_immediate() {
        let policy = CommitPolicy::new(CommitDurability::Immediate, 2);
        policy.set_bulk_loading(true);
        assert_eq!(run(&policy, 4), [false, true, false, true]);
        policy.set_bulk_loading(false);
        assert_eq!(run(&policy, 1), [true]);
    }
}
