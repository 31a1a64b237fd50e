//! The snapshot-store suite on a real S3 server: SeaweedFS from `scripts/s3.sh`
//! (skipped when it is down, failed under `CI=true`), plus what only a real server
//! shows: refused credentials, a missing bucket, `from_url` with the environment.

mod suite;

use std::sync::Arc;
use std::time::Duration;

use snapshot_object_store::object_store::aws::AmazonS3Builder;
use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::{ErrorKind, SnapshotStore};

/// A fixture under a prefix no other test uses, in the server's test bucket.
async fn seaweedfs() -> Option<suite::Fixture> {
    let s3 = test_support::s3()?;
    let store = AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(s3.allow_http)
        .with_region(&s3.region)
        .with_bucket_name(&s3.bucket)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(&s3.secret_access_key)
        .build()
        .unwrap();
    let prefix = test_support::unique_name("suite");
    Some(suite::Fixture::new(Arc::new(store), prefix, None))
}

stamp_all!(seaweedfs);

/// `from_url` options for the test server, with its credentials or `secret`.
fn options(s3: &test_support::S3, secret: &str) -> UrlOptions {
    UrlOptions::new(SnapshotStoreConfig::new("url-test"))
        .with_endpoint(&s3.endpoint)
        .with_option("region", &s3.region)
        .with_option("access_key_id", &s3.access_key_id)
        .with_option("secret_access_key", secret)
        .with_retries(0, Duration::from_secs(5))
}

#[tokio::test]
async fn from_url_round_trips_through_the_server() {
    let Some(s3) = test_support::s3() else { return };
    let prefix = test_support::unique_name("url");
    let url = format!("s3://{}/{prefix}", s3.bucket);
    let store = ObjectSnapshotStore::from_url(&url, options(&s3, &s3.secret_access_key)).unwrap();
    assert_eq!(store.location(), url);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), b"hello").unwrap();
    let checkpoint = state_core::Checkpoint {
        files: state_core::Checkpoint::list_files(dir.path()).unwrap(),
        dir: dir.path().to_path_buf(),
        backend: "test".into(),
        backend_format: 1,
        position: state_core::Position::of(0, 5),
    };
    let scope = state_core::SnapshotScope::new("shop", "rewards", 0);
    store.upload(&scope, &checkpoint).await.unwrap();
    let listed = store.list(&scope).await.unwrap();
    let manifest = listed[0].manifest.as_ref().unwrap();
    let into = dir.path().join("restored");
    store.download(manifest, &into, None).await.unwrap();
    assert_eq!(std::fs::read(into.join("data")).unwrap(), b"hello");
}

#[tokio::test]
async fn a_wrong_secret_is_a_clear_error_without_the_secret() {
    let Some(s3) = test_support::s3() else { return };
    let url = format!("s3://{}/x", s3.bucket);
    let store = ObjectSnapshotStore::from_url(&url, options(&s3, "wrong-secret-value")).unwrap();
    let err = store
        .list(&state_core::SnapshotScope::new("shop", "rewards", 0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(!message.contains("wrong-secret-value"), "{message}");
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let Some(s3) = test_support::s3() else { return };
    let url = "s3://no-such-bucket-statestore/x";
    let store = ObjectSnapshotStore::from_url(url, options(&s3, &s3.secret_access_key)).unwrap();
    let err = store
        .list(&state_core::SnapshotScope::new("shop", "rewards", 0))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no-such-bucket-statestore"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
