#![doc = include_str!("../docs.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// The template's six files (`backend-template/README.md`): this one, `config`, `error`,
// `scan`, `store` and `supplier`. The others hold what only redb needs:
// - `bulk`: a bulk load's records held back and merged into the tree;
// - `checkpoint`: a checkpoint as a copy of one read transaction, and opening one;
// - `commit`: which durability each commit gets (`Immediate` or `None`);
// - `layout`: the tables, the format marker and the position inside the file;
// - `open`: creating a file atomically, opening ours, or refusing;
// - `overlay`: the read-only open's storage, whose writes stay in memory;
// - `probe`: what a store directory holds, read before redb touches the file;
// - `runs`: held-back records sorted into runs, spilled, and merged in key order.
mod bulk;
mod checkpoint;
mod commit;
mod config;
mod copies;
mod error;
mod layout;
mod open;
mod overlay;
mod probe;
mod runs;
mod scan;
mod store;
mod supplier;

pub use config::{CommitDurability, DEFAULT_FILE_NAME, RedbConfig};
pub use store::RedbStore;
pub use supplier::RedbSupplier;

/// What the redb backend can do; its stores, its supplier and [`BACKEND`] report it.
///
/// Restore batches of up to 250,000 records, in practice as many as one chunk of the
/// restore's read-ahead holds (4 MiB of records by default, about 75,000 of Kafka Streams'
/// String/Double records). While bulk loading they are held back from the tree as sorted
/// runs and merged into it at the restore's durability points, at its end, or after
/// [`RedbConfig::with_bulk_transaction_records`] records, each key's last write once and
/// in key order. redb copies every B-tree leaf a transaction touches once, and a changelog
/// scatters its keys over the tree, so the fewer transactions, the fewer copies per
/// record: on a 10M-record changelog of 1M keys in random order, 4,000-record
/// transactions restored in 88–103 s, byte-capped ones in about 30 s (`BENCHMARKS.md`). The count is the table's exact length. Commits are
/// `Immediate` by default, so each survives a crash ([`RedbConfig::capability`] for other
/// durabilities); a read-only open refused by a writer's lock cannot tell which process
/// holds it.
const CAPABILITY: state_core::Capability = state_core::Capability::new("redb")
    .durable(true)
    .commits_survive_crash(true)
    .names_writer(false)
    .ordered_index(true)
    .exact_count(true)
    .restore_batch(250_000)
    .snapshots(checkpoint::FORMAT);

/// The redb backend in the registry ([`state_core::Backends`]): name `"redb"`,
/// suppliers with the default [`RedbConfig`].
pub const BACKEND: state_core::Backend = state_core::Backend::new(CAPABILITY, |name| {
    std::sync::Arc::new(RedbSupplier::new(name))
});
