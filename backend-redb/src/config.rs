//! How a redb store commits and where it keeps its file.

use state_core::{Capability, Error, Result};

/// The durability of ordinary commits (`put`, `delete`, `write`, `write_with_position`).
///
/// redb 3 and later know two levels only: `Immediate` (fsync before `commit` returns) and
/// `None` (the commit is visible at once but reaches disk with the next `Immediate`
/// commit). There is no `Eventual` level any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitDurability {
    /// Every commit is fsynced before it returns. Slowest, and a crash loses nothing.
    #[default]
    Immediate,
    /// Commits use redb's `None` durability, except every `immediate_every`-th commit and
    /// every [`flush`](state_core::KeyValueStore::flush), which are `Immediate`.
    ///
    /// A page of the last durable state that a `None` commit replaces cannot be reused
    /// until the next `Immediate` commit (a crash may still need it), so a long run of
    /// `None` commits bloats the file by up to the size of the data it rewrites (redb
    /// 4.6 reuses at once pages both written and replaced inside the run). The periodic
    /// `Immediate` commit bounds that growth and the loss window: a crash loses at most
    /// the commits since the last `Immediate` one, data and changelog position together,
    /// and restore replays them from the changelog. `immediate_every` must be at least 1
    /// (`1` behaves like [`CommitDurability::Immediate`]).
    Deferred {
        /// Every how many commits one is made `Immediate`.
        immediate_every: u32,
    },
}

/// Configuration of [`RedbStore`](crate::RedbStore) and [`RedbSupplier`](crate::RedbSupplier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedbConfig {
    durability: CommitDurability,
    bulk_immediate_every: u32,
    bulk_transaction_records: usize,
    bulk_run_bytes: usize,
    bulk_spill_bytes: u64,
    cache_size: usize,
    file_name: String,
    check_integrity_on_open: bool,
}

/// 64 MiB instead of redb's 1 GiB: a process holds one database per (store, partition),
/// often dozens, and each has its own cache.
const DEFAULT_CACHE_SIZE: usize = 64 * 1024 * 1024;

/// During a bulk restore every merge of its held-back records commits `None` except one
/// in this many, so pages freed by the `None` commits before it are reused after it; the
/// end of the restore makes every merge durable besides.
const DEFAULT_BULK_IMMEDIATE_EVERY: u32 = 4;

/// How many records a bulk load holds back before it merges them into the tree
/// (`src/bulk.rs`), should neither the spill limit nor a durability point of the restore
/// come first.
const DEFAULT_BULK_TRANSACTION_RECORDS: usize = 50_000_000;

/// Bytes of runs a bulk load spills before it merges them into the tree: about 30M
/// records of 16-byte keys and 8-byte values.
const DEFAULT_BULK_SPILL_BYTES: u64 = 1024 * 1024 * 1024;

/// Bytes of held-back records a bulk load sorts in memory before it spills them as a run
/// (`src/runs.rs`).
const DEFAULT_BULK_RUN_BYTES: usize = 16 * 1024 * 1024;

/// The file inside the store directory unless configured otherwise.
pub const DEFAULT_FILE_NAME: &str = "store.redb";

impl Default for RedbConfig {
    fn default() -> Self {
        Self {
            durability: CommitDurability::default(),
            bulk_immediate_every: DEFAULT_BULK_IMMEDIATE_EVERY,
            bulk_transaction_records: DEFAULT_BULK_TRANSACTION_RECORDS,
            bulk_run_bytes: DEFAULT_BULK_RUN_BYTES,
            bulk_spill_bytes: DEFAULT_BULK_SPILL_BYTES,
            cache_size: DEFAULT_CACHE_SIZE,
            file_name: DEFAULT_FILE_NAME.to_owned(),
            check_integrity_on_open: true,
        }
    }
}

impl RedbConfig {
    /// The defaults: `Immediate` commits, a 64 MiB cache, file `store.redb`, integrity
    /// check on open.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the durability of ordinary commits.
    pub fn with_durability(mut self, durability: CommitDurability) -> Self {
        self.durability = durability;
        self
    }

    /// While bulk loading, makes one commit in `every` `Immediate` (default 4), to bound
    /// file growth from runs of `None` commits. Must be at least 1. What a restore may lose
    /// to a crash is bounded sooner by the restore driver's own durability points
    /// (`RestoreOptions::durability_points`: a flush every 500,000 records or 5 s by
    /// default): each is an `Immediate` commit, which makes every `None` commit before it
    /// durable, whatever this count says.
    pub fn with_bulk_immediate_every(mut self, every: u32) -> Self {
        self.bulk_immediate_every = every;
        self
    }

    /// While bulk loading, holds restore batches back from the tree, as sorted runs, until
    /// they hold `records` records (default 50,000,000) or their runs
    /// [`with_bulk_spill_bytes`](Self::with_bulk_spill_bytes) bytes, then merges them into
    /// it in one transaction, each key written once and in key order. redb copies each
    /// page a transaction changes once, and a changelog's batches scatter their keys over
    /// the whole tree, so fewer, larger merges copy fewer pages (`BENCHMARKS.md`). Reads
    /// and every other operation of the store merge first; the restore's durability points
    /// make the runs durable without merging them. Must be at least 1. A crash loses what
    /// was held back since the last durability point, with its position, and the next
    /// restore replays it.
    pub fn with_bulk_transaction_records(mut self, records: usize) -> Self {
        self.bulk_transaction_records = records;
        self
    }

    /// While bulk loading, sorts up to `bytes` of held-back records in memory (their keys,
    /// values and 16 bytes each; default 16 MiB) before it writes them as a run, a file in
    /// a directory beside the store file that the merge removes. Must be at least 1.
    pub fn with_bulk_run_bytes(mut self, bytes: usize) -> Self {
        self.bulk_run_bytes = bytes;
        self
    }

    /// While bulk loading, merges the held-back records into the tree once their runs
    /// take `bytes` on disk (default 1 GiB), bounding the disk the runs take beside the
    /// store: each record's key, value and 8 bytes, each key's last write within a run.
    /// Must be at least 1.
    pub fn with_bulk_spill_bytes(mut self, bytes: u64) -> Self {
        self.bulk_spill_bytes = bytes;
        self
    }

    /// Sets redb's page cache size in bytes (default 64 MiB).
    pub fn with_cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// Sets the database file name inside the store directory (default `store.redb`). It
    /// must be a plain file name, without directory separators.
    pub fn with_file_name(mut self, file_name: impl Into<String>) -> Self {
        self.file_name = file_name.into();
        self
    }

    /// Whether to verify every page checksum when opening (default `true`).
    ///
    /// redb trusts a cleanly closed file and may panic on one damaged outside redb; the
    /// check turns such damage into a [`Corruption`](state_core::ErrorKind::Corruption)
    /// error instead, at the cost of reading the whole file on open. Turn it off only
    /// where files cannot be damaged behind the process's back.
    pub fn with_check_integrity_on_open(mut self, enabled: bool) -> Self {
        self.check_integrity_on_open = enabled;
        self
    }

    /// The durability of ordinary commits.
    pub fn durability(&self) -> CommitDurability {
        self.durability
    }

    /// One commit in this many is `Immediate` while bulk loading.
    pub fn bulk_immediate_every(&self) -> u32 {
        self.bulk_immediate_every
    }

    /// The records a bulk load holds back before it merges them.
    pub fn bulk_transaction_records(&self) -> usize {
        self.bulk_transaction_records
    }

    /// The bytes of held-back records a bulk load sorts in memory before it spills them.
    pub fn bulk_run_bytes(&self) -> usize {
        self.bulk_run_bytes
    }

    /// The bytes of runs a bulk load spills before it merges them.
    pub fn bulk_spill_bytes(&self) -> u64 {
        self.bulk_spill_bytes
    }

    /// redb's page cache size in bytes.
    pub fn cache_size(&self) -> usize {
        self.cache_size
    }

    /// The database file name inside the store directory.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// Whether opening verifies every page checksum.
    pub fn check_integrity_on_open(&self) -> bool {
        self.check_integrity_on_open
    }

    /// What stores opened with this configuration can do: the backend's
    /// [`CAPABILITY`](crate::CAPABILITY), whose commits survive a crash only when every
    /// one is `Immediate`.
    pub(crate) fn capability(&self) -> Capability {
        crate::CAPABILITY.commits_survive_crash(self.durability == CommitDurability::Immediate)
    }

    /// Rejects settings that cannot work, naming the setting.
    pub(crate) fn validate(&self) -> Result<()> {
        if let CommitDurability::Deferred { immediate_every: 0 } = self.durability {
            return Err(Error::invalid_input(
                "redb config: CommitDurability::Deferred immediate_every must be at least 1",
            ));
        }
        if self.bulk_immediate_every == 0 {
            return Err(Error::invalid_input(
                "redb config: bulk_immediate_every must be at least 1",
            ));
        }
        if self.bulk_transaction_records == 0 {
            return Err(Error::invalid_input(
                "redb config: bulk_transaction_records must be at least 1",
            ));
        }
        if self.bulk_run_bytes == 0 {
            return Err(Error::invalid_input(
                "redb config: bulk_run_bytes must be at least 1",
            ));
        }
        if self.bulk_spill_bytes == 0 {
            return Err(Error::invalid_input(
                "redb config: bulk_spill_bytes must be at least 1",
            ));
        }
        let name = self.file_name.as_str();
        let plain =
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0']);
        if !plain {
            return Err(Error::invalid_input(format!(
                "redb config: file name {name:?} must be a plain file name"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = RedbConfig::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.file_name(), "store.redb");
        assert_eq!(config.durability(), CommitDurability::Immediate);
        assert_eq!(config.capability(), crate::CAPABILITY);
    }

    #[test]
    fn deferred_commits_do_not_survive_a_crash() {
        let deferred = CommitDurability::Deferred { immediate_every: 8 };
        let capability = RedbConfig::new().with_durability(deferred).capability();
        assert!(!capability.commits_survive_crash);
        assert!(capability.durable);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let zero = CommitDurability::Deferred { immediate_every: 0 };
        assert!(RedbConfig::new().with_durability(zero).validate().is_err());
        assert!(
            RedbConfig::new()
                .with_bulk_immediate_every(0)
                .validate()
                .is_err()
        );
        assert!(
            RedbConfig::new()
                .with_bulk_transaction_records(0)
                .validate()
                .is_err()
        );
        assert!(RedbConfig::new().with_bulk_run_bytes(0).validate().is_err());
        assert!(
            RedbConfig::new()
                .with_bulk_spill_bytes(0)
                .validate()
                .is_err()
        );
        for name in ["", ".", "..", "a/b", "a\\b"] {
            let err = RedbConfig::new()
                .with_file_name(name)
                .validate()
                .unwrap_err();
            assert_eq!(err.kind(), state_core::ErrorKind::InvalidInput, "{name}");
        }
    }
}
