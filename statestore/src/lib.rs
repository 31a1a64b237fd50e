//! # statestore
//!
//! Fault-tolerant, relocatable local state stores for stream processors, in the spirit of
//! Kafka Streams' state stores. A store lives in memory, in RocksDB or in redb behind one
//! [`KeyValueStore`] trait; every change is also written to a compacted changelog; and any
//! store can be rebuilt anywhere from that changelog.
//!
//! Pick backends with cargo features: `memory` (default), `rocksdb`,
//! `redb`, `kafka` for the Kafka changelog, `snapshots` for snapshots in object
//! storage, and `query` for interactive queries over HTTP; each feature adds the module of the same name, whose docs say what it holds.
//! The async API (building, committing and restoring stores) runs on a tokio runtime
//! when the Kafka changelog is in use (see the README's "Using statestore in your
//! application" for the runtime, the features and the dev-profile lines to copy).
//! [`backends()`] lists the backends compiled in, by name, with the [`Capability`] of
//! each; [`Stores::key_value_store`] opens one by name.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use statestore::prelude::*;
//!
//! # futures::executor::block_on(async {
//! let changelog = InMemoryChangelog::new();
//! let dir = tempfile::tempdir()?;
//! let context = StoreContext::new("shop", 0, 1, dir.path())?.with_changelog(Arc::new(changelog));
//! let mut rewards = Stores::key_value_store_builder(
//!     Stores::in_memory_key_value_store("rewards"), Serdes::string(), Serdes::f64(),
//! )
//! .with_logging_enabled(HashMap::from([("min.insync.replicas".into(), "2".into())]))
//! .build(&context)
//! .await?;
//! rewards.put(&"alice".to_owned(), &12.5)?;
//! rewards.commit().await?;
//! assert_eq!(rewards.get(&"alice".to_owned())?, Some(12.5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! A [`StoreManager`] keeps every store of an instance for each partition it owns, and
//! commits them all at once with the input offsets processed into them: under
//! exactly-once one transaction of one producer (a consumer group's
//! `statestore::kafka::StatefulConsumer` drives it; here it is driven by hand):
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use statestore::prelude::*;
//! use statestore::{InputBinding, SinkOptions};
//!
//! # futures::executor::block_on(async {
//! let changelog = InMemoryChangelog::new();
//! let dir = tempfile::tempdir()?;
//! let context = StoreContext::new("shop", 0, 4, dir.path())?
//!     .with_changelog(Arc::new(changelog.clone()))
//!     .with_guarantee(ProcessingGuarantee::ExactlyOnce);
//! let mut manager = StoreManager::new(context);
//! let rewards = manager.add_store(Stores::key_value_store_builder(
//!     Stores::in_memory_key_value_store("rewards"), Serdes::string(), Serdes::f64()))?;
//! let visits = manager.add_store(Stores::key_value_store_builder(
//!     Stores::in_memory_key_value_store("visits"), Serdes::string(), Serdes::i64()))?;
//! // One sink for every store, committing the offsets of input topic "purchases".
//! let input = InputBinding::new("shop", "purchases");
//! let options = SinkOptions::new(ProcessingGuarantee::ExactlyOnce, "shop-instance-1")
//!     .with_source(input.clone());
//! manager.use_sink(Arc::new(changelog.sink_now(&options)?))?;
//! let manager = Arc::new(manager);
//!
//! manager.assign_all(&[2]).await.pop().unwrap().1?;      // restored, then served
//! {
//!     let mut partition = manager.active(2).await.unwrap();
//!     let (totals, counts) = (partition.store(&rewards)?, partition.store(&visits)?);
//!     totals.put(&"alice".to_owned(), &12.5)?;
//!     counts.put(&"alice".to_owned(), &1)?;
//!     partition.record_processed(41);                      // input offset 40 done
//! }
//! let committed = manager.commit().await?;                  // one transaction
//! assert_eq!(committed.records, 2);
//! assert_eq!(changelog.committed_offsets(&input), BTreeMap::from([(2, 41)]));
//! assert_eq!(manager.state(2), Some(PartitionState::Active));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![deny(rustdoc::broken_intra_doc_links)]

mod backends;
mod stores;

pub use backends::backends;
pub use state_core::*;
pub use stores::Stores;

/// The in-process changelog (tests, embedded use, the demo).
pub use state_core::changelog::in_memory::InMemoryChangelog;

#[cfg(feature = "memory")]
pub mod memory {
    //! The in-memory backend on `dashmap`: [`MemorySupplier`] for the store builder (or
    //! [`Stores::in_memory_key_value_store`](crate::Stores::in_memory_key_value_store)),
    //! [`MemoryStore`] for the store itself. Not durable: a memory store restores from the
    //! changelog's start (or its newest snapshot) every time it opens.
    //!
    //! Available with the `memory` feature (on by default).

    #[doc(inline)]
    pub use backend_memory::*;
}

#[cfg(feature = "redb")]
pub mod redb {
    //! The persistent redb backend (pure Rust, one file per store partition):
    //! [`RedbSupplier`] for the store builder (or
    //! [`Stores::redb_key_value_store`](crate::Stores::redb_key_value_store)), configured by
    //! [`RedbConfig`] and its [`CommitDurability`]; data and changelog position are
    //! written in one write transaction.
    //!
    //! Available with the `redb` feature.

    #[doc(inline)]
    pub use backend_redb::*;
}

#[cfg(feature = "rocksdb")]
pub mod rocksdb {
    //! The persistent RocksDB backend, Kafka Streams' default: [`RocksDbSupplier`] for the
    //! store builder (or
    //! [`Stores::persistent_key_value_store`](crate::Stores::persistent_key_value_store)),
    //! configured by [`RocksDbConfig`]; many stores can share one block cache and memtable
    //! budget through [`SharedRocksDbResources`]. Data and changelog position are written
    //! in one `WriteBatch`.
    //!
    //! Available with the `rocksdb` feature (its C++ compiles from source: ~25 minutes on
    //! 2 cores, and it needs libclang).

    #[doc(inline)]
    pub use backend_rocksdb::*;
}

#[cfg(feature = "kafka")]
pub mod kafka {
    //! The Kafka changelog on `rdkafka` (librdkafka): [`KafkaChangelog`], configured by
    //! [`KafkaChangelogConfig`], creates compacted changelog topics and hands out sinks
    //! and restore readers; [`StatefulConsumer`] wires a
    //! [`StoreManager`](crate::StoreManager) to a consumer group (configured by
    //! [`GroupConfig`], standby copies by [`StandbyPolicy`]), so partitions move between
    //! instances with their stores; [`EmbeddedKafka`] is librdkafka's in-process mock
    //! cluster, for demos.
    //!
    //! Needs a tokio runtime: the changelog's futures run on one (either flavour), and
    //! a [`StatefulConsumer`] takes a multi-thread runtime's handle and is polled from a
    //! plain thread (see the README's "Using statestore in your application").
    //!
    //! Available with the `kafka` feature.

    #[doc(inline)]
    pub use changelog_kafka::group::NoopGroupListener;
    #[doc(inline)]
    pub use changelog_kafka::*;
}

#[cfg(feature = "snapshots")]
pub mod snapshots {
    //! Snapshots of store partitions in object storage: [`ObjectSnapshotStore`]
    //! implements [`SnapshotStore`](crate::SnapshotStore) on S3 or a local directory (GCS
    //! and Azure with `snapshot-object-store`'s `gcp` and `azure` features), and
    //! [`ObjectSnapshotStore::from_url`] opens one from a URL.
    //!
    //! Available with the `snapshots` feature.

    #[doc(inline)]
    pub use snapshot_object_store::*;
}

#[cfg(feature = "query")]
pub mod query {
    //! Interactive queries over HTTP: a [`QueryServer`] on each instance answers
    //! `GET /stores/{store}/keys/{key}` from the owner's committed state, here or one
    //! hop away, and says "restoring", "moving" or "not here" instead of guessing while
    //! partitions move; a [`Directory`] says who owns what (with the `kafka` feature, a
    //! `StatefulConsumer`'s `GroupDirectory`). The answers, errors and routes are in the
    //! [`answer`] module and the crate docs below.
    //!
    //! Available with the `query` feature.

    #[doc(inline)]
    pub use query_server::*;
}

/// The README's Rust blocks, compiled (and, but for the scale-out one, which needs a
/// broker and runs as the `scale_out` example, run) as doc tests. They use the features
/// they name, so the module exists only when all of those are on (`--all-features`, as
/// the test command runs the doc tests).
#[cfg(all(
    doctest,
    feature = "memory",
    feature = "redb",
    feature = "kafka",
    feature = "query"
))]
#[doc = include_str!("../../README.md")]
mod readme {}

/// Everything the builder example needs: `use statestore::prelude::*;`.
pub mod prelude {
    pub use crate::Stores;
    pub use state_core::changelog::in_memory::InMemoryChangelog;
    pub use state_core::{
        ActivePartition, AfterRevoke, Changelog, Error, ErrorKind, KeyValueStore, PartitionState,
        PartitionStore, ProcessingGuarantee, RestoreListener, Result, Serdes, StoreBuilder,
        StoreContext, StoreHandle, StoreManager, TypedKeyValueStore,
    };
}
