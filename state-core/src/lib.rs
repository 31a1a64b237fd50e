//! # state-core
//!
//! The engine-free heart of statestore: the [`KeyValueStore`] trait every backend
//! implements, the [`ChangelogSink`] / [`ChangelogReader`] traits every changelog
//! implements, the logging layer that ties them together, the restore driver, serdes,
//! the store builder, and the store manager that keeps every store of an instance for
//! each partition as partitions are assigned, revoked and stood by for.
//!
//! This crate must never depend, even transitively, on a storage engine (dashmap,
//! RocksDB, redb) or a Kafka client (rdkafka); CI checks it with `cargo tree`. Backends
//! and changelogs live in their own crates and plug in through the traits here.
//!
//! ## Design notes
//! - Stores are synchronous (every engine blocks); changelogs are async (they wait on a
//!   network). [`ChangelogSink::append`] only enqueues, so a synchronous `put` can log.
//! - One sink per instance writes every store's changelog: one commit is one sink commit
//!   (one transaction under exactly-once) holding every store's records and the input
//!   offsets, then each store writes its interval with its position.
//! - A durable store writes its changelog [`Position`] atomically with its data, so data
//!   and position never disagree after a crash, and restore replays only the tail.
//! - Telemetry goes through facades the application wires up: metrics through the
//!   `metrics` crate (names and units in [`metrics`]), spans through `tracing`. Both are
//!   engine- and network-free and cost a check of an unset global until wired.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod builder;
pub mod changelog;
mod error;
pub mod lock;
pub mod logging;
pub mod manager;
pub mod metrics;
pub mod names;
pub mod partitioner;
pub mod registry;
pub mod restore;
pub mod runtime;
pub mod serde;
pub mod snapshot;
pub mod store;

pub use builder::{ByteStore, StoreBuilder, StoreContext, TypedKeyValueStore};
pub use changelog::{
    Changelog, ChangelogChunk, ChangelogPositions, ChangelogReader, ChangelogRecord, ChangelogSink,
    ConsumedRecord, InputBinding, IsolationLevel, LogOffsets, ProcessingGuarantee,
    RESTORE_ISOLATION, ReadAhead, RestoreCursor, SinkCommit, SinkOptions, SourceCommit,
    SourceOffsets, TopicSpec, changelog_topic_name,
};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use lock::{LOCK_FILE_NAME, PartitionLock};
pub use logging::{CommitSummary, JointCommit, LoggedStore, commit_together};
pub use manager::{
    ActivePartition, AfterRevoke, DEFAULT_MAX_PARALLEL_RESTORES, ManagerCommit, PartitionQuery,
    PartitionRestores, PartitionState, QueryLag, ReadOnlyStore, ReadyPartition, RestoreJob,
    Staleness, StandbyLag, StoreHandle, StoreManager,
};

/// One store of an active partition, typed, borrowed from the store manager (see
/// [`ActivePartition::store`]); the manager commits it with every other store.
pub type PartitionStore<'a, K, V> = TypedKeyValueStore<K, V, &'a ByteStore>;
pub use names::{
    MAX_TOPIC_NAME_LEN, changelog_topic, validate_application_id, validate_store_name,
};
pub use partitioner::partition_for_key;
pub use registry::{Backend, Backends};
pub use restore::{
    DEFAULT_DURABLE_EVERY, DEFAULT_DURABLE_EVERY_RECORDS, DEFAULT_MAX_BYTES_IN_FLIGHT,
    DEFAULT_STALL_TIMEOUT, DurabilityPoints, FanOutRestoreListener, NoopRestoreListener,
    PartitionProgress, RecordValidator, RestoreListener, RestoreOptions, RestorePhase,
    RestoreProgress, RestoreSummary, RestoreTarget, STALL_NOTICE_AFTER, STALL_NOTICE_EVERY,
    SnapshotRestore, StoreHome, WipeReason, catch_up, check_record, open_or_rebuild, restore,
};
pub use serde::{Serde, Serdes};
pub use snapshot::{
    Checkpoint, CheckpointFile, PendingCheckpoint, SnapshotFallback, SnapshotManifest,
    SnapshotPolicy, SnapshotScope, SnapshotStore, SnapshotUploader, UploaderConfig,
};
pub use store::{
    Capability, DEFAULT_RESTORE_BATCH, KeyRange, KeyValue, KeyValueBytesStoreSupplier,
    KeyValueStore, KvIter, Offset, Partition, Position, WriteBatch, WriteOp,
};
