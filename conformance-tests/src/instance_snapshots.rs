//! The snapshot settings of one `rewards_instance` child, from its environment:
//! `STATESTORE_SNAPSHOTS` (a snapshot store URL: `file:///dir`, `s3://bucket/prefix`
//! with the server and credentials from the usual `AWS_*` variables) and
//! `STATESTORE_SNAPSHOT_EVERY` (committed changelog records per partition between two
//! snapshots, over both its stores). Environment variables rather than more positional
//! arguments: like `STATESTORE_COMMIT_INTERVAL_MS`, they are optional, and the scenarios
//! that do not use them stay as they are.

use std::sync::Arc;

use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::{Error, Result, SnapshotPolicy, SnapshotUploader, UploaderConfig};

/// The variable naming the snapshot store.
pub const SNAPSHOTS_VAR: &str = "STATESTORE_SNAPSHOTS";
/// The variable with the policy's records between snapshots.
pub const EVERY_VAR: &str = "STATESTORE_SNAPSHOT_EVERY";
/// Records between snapshots when [`EVERY_VAR`] is not set.
const DEFAULT_EVERY: u64 = 1000;
/// Snapshots kept per store partition: the newest and one older, so an upload racing a
/// retention never leaves a partition without one.
const KEEP: usize = 2;

/// The policy and the uploader to give the store manager when `STATESTORE_SNAPSHOTS`
/// is set; `None` without it. Nothing is contacted yet: an unreachable store shows in
/// the uploads' log, and restores fall back to the changelog.
pub fn from_env(writer: &str) -> Result<Option<(SnapshotPolicy, SnapshotUploader)>> {
    let Ok(url) = std::env::var(SNAPSHOTS_VAR) else {
        return Ok(None);
    };
    let every = match std::env::var(EVERY_VAR) {
        Ok(text) => text.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::invalid_input(format!(
                "{EVERY_VAR}={text:?}: expected a positive number of records"
            ))
        })?,
        Err(_) => DEFAULT_EVERY,
    };
    let options = UrlOptions::new(SnapshotStoreConfig::new(writer));
    let store = ObjectSnapshotStore::from_url(&url, options)?;
    let policy = SnapshotPolicy {
        every_records: Some(every),
        every: None,
        on_revoke: true,
        on_close: true,
        keep: KEEP,
    };
    let uploader = SnapshotUploader::new(
        Arc::new(store),
        UploaderConfig {
            keep: KEEP,
            ..UploaderConfig::default()
        },
    );
    Ok(Some((policy, uploader)))
}
