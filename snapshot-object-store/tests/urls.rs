//! Opening stores from URLs, and what an unreachable endpoint does: a clear,
//! retriable error naming the store, never a panic. No server needed.

use std::time::Duration;

use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::{ErrorKind, SnapshotScope, SnapshotStore};

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable_naming_the_store() {
    // Port 1 on the loopback: nothing listens there.
    let options = UrlOptions::new(SnapshotStoreConfig::new("t"))
        .with_endpoint("http://127.0.0.1:1")
        .with_option("access_key_id", "key")
        .with_option("secret_access_key", "secret-value")
        .with_option("region", "us-east-1")
        .with_retries(0, Duration::from_secs(2));
    let store = ObjectSnapshotStore::from_url("s3://bucket/prefix", options).unwrap();
    let err = store
        .list(&SnapshotScope::new("shop", "rewards", 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retriable());
    let message = err.to_string();
    assert!(
        message.contains("s3://bucket/prefix/shop/rewards/0/manifests"),
        "{message}"
    );
    assert!(!message.contains("secret-value"), "{message}");
}

#[tokio::test]
async fn bad_urls_are_invalid_input() {
    for url in [
        "",
        "bucket/prefix",
        "http://host/x",
        "s3://",
        "file://relative/x",
        "s3://b/a//b",
    ] {
        let err = ObjectSnapshotStore::from_url(url, UrlOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}: {err}");
    }
}

#[tokio::test]
async fn an_unknown_option_is_named() {
    let options = UrlOptions::default().with_option("no_such_option", "x");
    let err = ObjectSnapshotStore::from_url("s3://bucket/x", options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("no_such_option"), "{err}");
}

#[tokio::test]
async fn a_file_url_works_end_to_end() {
    let root = tempfile::tempdir().unwrap();
    let url = format!("file://{}/snapshots", root.path().display());
    let store = ObjectSnapshotStore::from_url(&url, UrlOptions::default()).unwrap();
    assert_eq!(store.location(), url);
    let scope = SnapshotScope::new("shop", "rewards", 0);
    assert!(store.list(&scope).await.unwrap().is_empty());
}
