//! # statestore
//!
//! Fault-tolerant, relocatable local state stores for stream processors, in the spirit of
//! Kafka Streams' state stores. A store lives in memory, in RocksDB or in redb behind one
//! [`KeyValueStore`] trait; every change is also written to a compacted changelog; and any
//! store can be rebuilt anywhere from that changelog.
//!
//! Pick backends with cargo features: `memory` (default), `rocksdb`, `redb`, `kafka`
//! for the Kafka changelog, and `snapshots` for snapshots in object storage.
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

mod backends;
mod stores;

pub use backends::backends;
pub use state_core::*;
pub use stores::Stores;

/// The in-process changelog (tests, embedded use, the demo).
pub use state_core::changelog::in_memory::InMemoryChangelog;

/// The in-memory backend.
#[cfg(feature = "memory")]
pub use backend_memory as memory;
/// The redb backend.
#[cfg(feature = "redb")]
pub use backend_redb as redb;
/// The RocksDB backend.
#[cfg(feature = "rocksdb")]
pub use backend_rocksdb as rocksdb;
/// The Kafka changelog.
#[cfg(feature = "kafka")]
pub use changelog_kafka as kafka;
/// Snapshots in object storage: [`snapshots::ObjectSnapshotStore`] implements
/// [`SnapshotStore`] on S3 or a local directory (GCS and Azure with
/// `snapshot-object-store`'s `gcp` and `azure` features).
#[cfg(feature = "snapshots")]
pub use snapshot_object_store as snapshots;

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
