//! Snapshot stores named on the command line (`--snapshots URL`): object storage through
//! the `snapshots` feature, which the quick start leaves out (its TLS stack adds minutes
//! of C compilation).

use std::sync::Arc;
use std::time::Duration;

use state_core::{Result, SnapshotStore};

/// The snapshot store at `url` (`s3://bucket/prefix`, `file:///path`, ...), with
/// credentials, region and endpoint from the usual `AWS_*` environment. Nothing is
/// contacted yet.
#[cfg(feature = "snapshots")]
pub fn open(url: &str) -> Result<Arc<dyn SnapshotStore>> {
    use statestore::snapshots::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
    let writer = format!("statestore-cli-{}", std::process::id());
    let options = UrlOptions::new(SnapshotStoreConfig::new(writer));
    Ok(Arc::new(ObjectSnapshotStore::from_url(url, options)?))
}

/// [`open`], retrying a failed request at most twice and within `timeout`: object_store
/// retries for minutes by default, far too long for the demo to say a server is down.
#[cfg(feature = "snapshots")]
pub fn open_with_timeout(url: &str, timeout: Duration) -> Result<Arc<dyn SnapshotStore>> {
    use statestore::snapshots::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
    let writer = format!("statestore-cli-{}", std::process::id());
    let options = UrlOptions::new(SnapshotStoreConfig::new(writer)).with_retries(2, timeout);
    Ok(Arc::new(ObjectSnapshotStore::from_url(url, options)?))
}

/// Without the `snapshots` feature: the same error as [`open`].
#[cfg(not(feature = "snapshots"))]
pub fn open_with_timeout(url: &str, _timeout: Duration) -> Result<Arc<dyn SnapshotStore>> {
    open(url)
}

/// Without the `snapshots` feature: an error that names it.
#[cfg(not(feature = "snapshots"))]
pub fn open(url: &str) -> Result<Arc<dyn SnapshotStore>> {
    Err(state_core::Error::unsupported(format!(
        "--snapshots {url}: this statestore binary was built without snapshots; build it \
         with `cargo run -p statestore-cli --features snapshots` (or --features full)"
    )))
}
