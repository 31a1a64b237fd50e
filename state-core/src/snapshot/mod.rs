//! Snapshots: a store partition's files at a committed changelog position, kept outside
//! the instance (object storage), so a store relocates by downloading its state and
//! replaying only the changelog's tail instead of its whole history.
//!
//! A snapshot is a set of immutable files plus a [`SnapshotManifest`], written last, that
//! names the application, store, partition, backend and its format, the changelog
//! position, and every file with its size and checksum. Without its manifest a snapshot
//! does not exist for any reader.
//!
//! - A store takes a [`Checkpoint`] of itself
//!   ([`KeyValueStore::checkpoint`](crate::KeyValueStore::checkpoint)): a consistent copy
//!   of its committed data and the position committed with it, in a local directory
//!   (RocksDB: a checkpoint of hard-linked SST files; redb: a copy at a commit; memory: a
//!   sorted dump). [`Capability::snapshots`](crate::Capability::snapshots) says how.
//! - A [`SnapshotStore`] uploads it (files the newest snapshot already has are not sent
//!   again), lists, downloads (every checksum checked) and retires snapshots. This crate
//!   defines the trait only; `snapshot-object-store` implements it on the `object_store`
//!   crate (S3, GCS, Azure, a local directory).
//! - Restore ([`catch_up`](crate::restore::catch_up)) starts from the newest usable
//!   snapshot ahead of the local store, then replays the changelog from its position;
//!   any doubt falls back to a full replay and says why ([`SnapshotFallback`]).

mod checkpoint;
mod fallback;
mod manifest;
mod pending;
mod policy;
pub(crate) mod scratch;
mod store;
mod uploader;

pub use checkpoint::{Checkpoint, CheckpointFile};
pub use fallback::SnapshotFallback;
pub use manifest::{MANIFEST_FORMAT, SnapshotFile, SnapshotManifest, SnapshotScope};
pub use pending::PendingCheckpoint;
pub use policy::SnapshotPolicy;
pub use store::{DownloadSummary, ListedSnapshot, RetentionSummary, SnapshotStore, UploadSummary};
pub use uploader::{SnapshotUploader, UploadOutcome, UploaderConfig};
