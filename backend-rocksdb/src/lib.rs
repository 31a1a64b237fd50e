#![doc = include_str!("../docs.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// The template's six files (`backend-template/README.md`): this one, `config`, `error`,
// `scan`, `store` and `supplier`. The others hold what only RocksDB needs:
// - `checkpoint`: RocksDB checkpoints of a store (flushed, SSTs hard-linked), and
//   opening one;
// - `lock`: who holds a store's `LOCK` file, asked without disturbing the lock;
// - `open`: creating a database, opening ours, or refusing;
// - `probe`: what a store directory holds (the stamp), read before RocksDB touches it;
// - `turn`: openers of one directory take turns while they look at it and open it.
mod checkpoint;
mod config;
mod error;
mod lock;
mod open;
mod probe;
mod scan;
mod store;
mod supplier;
mod turn;

pub use config::{RocksDbCompression, RocksDbConfig, SharedRocksDbResources};
pub use store::RocksDbStore;
pub use supplier::RocksDbSupplier;

/// What the RocksDB backend can do; its stores, its supplier and [`BACKEND`] report it.
///
/// Restore batches of 4,000: a write costs a WriteBatch, the write group and the
/// position, so fewer, larger batches; beyond a few thousand records the memtable insert
/// is all that is left (`BENCHMARKS.md`, restore/apply). The count is RocksDB's
/// `estimate-num-keys`, not exact. The write-ahead log is off by default, so a crash
/// loses what the memtables held ([`RocksDbConfig::capability`] with it on); a read-only
/// open refused by a writer names the process holding the `LOCK` file.
const CAPABILITY: state_core::Capability = state_core::Capability::new("rocksdb")
    .durable(true)
    .commits_survive_crash(false)
    .names_writer(true)
    .ordered_index(true)
    .exact_count(false)
    .restore_batch(4000)
    .snapshots(checkpoint::FORMAT);

/// The RocksDB backend in the registry ([`state_core::Backends`]): name `"rocksdb"`,
/// suppliers with the default [`RocksDbConfig`].
pub const BACKEND: state_core::Backend = state_core::Backend::new(CAPABILITY, |name| {
    std::sync::Arc::new(RocksDbSupplier::new(name))
});
