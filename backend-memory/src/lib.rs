//! # backend-memory
//!
//! The in-memory [`KeyValueStore`](state_core::KeyValueStore) of statestore, on a
//! [`dashmap::DashMap`]: Kafka Streams' `Stores.inMemoryKeyValueStore(name)`.
//!
//! - **Not durable.** Data and changelog position live only in the process; every
//!   [`open`](state_core::KeyValueBytesStoreSupplier::open) of a [`MemorySupplier`]
//!   returns an empty store, so a logged memory store always restores from the
//!   beginning of its changelog.
//! - **Point operations** (`get`, `put`, `put_if_absent`, `delete`) cost one hash lookup
//!   and run in parallel on different keys; a put of a new key also enters the ordered
//!   index, O(log n), and those serialise on its lock. A delete leaves a grave that a
//!   later put of the key clears; every 1,024 deletes the keys still deleted leave the
//!   map and the index together.
//! - **Batches** (`write`, `write_with_position`) are atomic for every reader: they take
//!   a store-wide lock exclusively, so for their duration every other operation waits.
//! - **Checkpoints** ([`checkpoint`](state_core::KeyValueStore::checkpoint)): a sorted
//!   dump of the committed entries and position, one file with a checksum; a supplier's
//!   [`open_checkpoint`](state_core::KeyValueBytesStoreSupplier::open_checkpoint) checks
//!   all of it, then loads it (capability `snapshots`, format 1).
//! - **Scans** (`range`, `reverse_range`, `prefix_scan`, `all`) use an ordered index of
//!   the keys beside the map, a `BTreeMap` behind a reader-writer lock (capability
//!   `ordered_index: true`), which holds each key's value cell, the one the map holds:
//!   O(log n + m) for m matches, in either direction, no hash lookup per match, returned
//!   as a collected snapshot, as Kafka Streams' in-memory store answers from its
//!   `TreeMap`. Only a put of a new key or a delete writes to the index; gets and
//!   overwrites never touch it. What the index and the cells cost per entry is in
//!   `BENCHMARKS.md`.
//!
//! ```
//! use backend_memory::MemoryStore;
//! use state_core::{KeyValueStore, KeyRange};
//!
//! let store = MemoryStore::new("rewards");
//! store.put(b"alice", b"1")?;
//! store.put(b"bob", b"2")?;
//! let keys: Vec<_> = store
//!     .range(&KeyRange::inclusive(b"a".to_vec(), b"b".to_vec()))?
//!     .map(|entry| entry.map(|(key, _)| key))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"alice".to_vec()]);
//! # Ok::<(), state_core::Error>(())
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// The template's files (`backend-template/README.md`): this one, `scan`, `store` and
// `supplier`. No `config`: a memory store has no options. No `error`: no operation on
// the store can fail, so there is no engine error to map (checkpoints, which touch
// files, map their I/O errors where they happen). The others hold what only this
// backend needs:
// - `checkpoint`: a checkpoint written as a sorted dump, and a store loaded from one;
// - `dump`: the dump file's format, its writer and its checking reader;
// - `index`: the ordered index of the keys beside the map, which scans walk;
// - `tombstones`: deleted keys kept in place until a periodic purge;
// - `value`: values held inline in their slot when short.
mod checkpoint;
mod dump;
mod index;
mod scan;
mod slot_order;
mod store;
mod supplier;
mod tombstones;
mod value;

pub use store::MemoryStore;
pub use supplier::MemorySupplier;

/// What the in-memory backend can do; its stores, its supplier and [`BACKEND`] report it.
///
/// Restores apply 4,096 records per batch rather than Kafka Streams' 1,000: a restore
/// of 10M records over 1M keys took 4.9 s against 5.4 s, of 20M over 10M keys 15.7 s
/// against 18.7 s, and 16,384 gained nothing more (`BENCHMARKS.md`). A batch holds the
/// store's gate for a few milliseconds (4,096 writes at under a microsecond each), which
/// a standby's readers wait out.
const CAPABILITY: state_core::Capability = state_core::Capability::new("memory")
    .durable(false)
    .commits_survive_crash(false)
    .names_writer(false)
    .ordered_index(true)
    .exact_count(true)
    .restore_batch(4096)
    .snapshots(dump::FORMAT);

/// The in-memory backend in the registry ([`state_core::Backends`]): name `"memory"`.
pub const BACKEND: state_core::Backend = state_core::Backend::new(CAPABILITY, |name| {
    std::sync::Arc::new(MemorySupplier::new(name))
});
