//! The Kafka changelog and the snapshot store run on tokio. Driven by another executor
//! (`futures::executor::block_on`, as the in-process examples are) every entry point that
//! needs the runtime answers with an error naming the operation and the fix, never with
//! tokio's "there is no reactor running" panic. Nothing here reaches a broker or a server:
//! the check comes before any connection.
#![cfg(any(feature = "kafka", feature = "snapshots"))]

use futures::executor::block_on;
use statestore::{Error, ErrorKind};

fn assert_names_the_fix(result: Result<(), Error>, operation: &str) {
    let err = result.expect_err(operation);
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{operation}: {err}");
    for part in [operation, "tokio runtime", "#[tokio::main]"] {
        assert!(err.to_string().contains(part), "{operation}: {err}");
    }
}

#[cfg(feature = "kafka")]
#[test]
fn the_kafka_changelog_outside_tokio_says_it_needs_the_runtime() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use statestore::kafka::{KafkaChangelog, KafkaChangelogConfig};
    use statestore::prelude::*;
    use statestore::{IsolationLevel, SinkOptions, TopicSpec};

    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new("127.0.0.1:9092")).unwrap();
    let spec = TopicSpec::changelog("shop-rewards-changelog", 1, &BTreeMap::new());
    assert_names_the_fix(
        block_on(changelog.ensure_topic(&spec)),
        "creating changelog topic shop-rewards-changelog",
    );
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, "shop-sink");
    assert_names_the_fix(
        block_on(changelog.sink(&options)).map(drop),
        "creating a Kafka changelog sink",
    );
    let reader =
        block_on(changelog.reader("shop-rewards-changelog", IsolationLevel::ReadCommitted))
            .unwrap();
    assert_names_the_fix(
        block_on(reader.offsets(0)).map(drop),
        "reading the offsets of changelog shop-rewards-changelog partition 0",
    );
    assert_names_the_fix(
        block_on(reader.open(0, 0)).map(drop),
        "reading changelog topic shop-rewards-changelog partition 0 offset 0",
    );

    // Building a logged store the same way fails with the same answer.
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog));
    let built = block_on(
        Stores::key_value_store_builder(
            Stores::key_value_store("memory", "rewards").unwrap(),
            Serdes::string(),
            Serdes::f64(),
        )
        .with_logging_enabled(Default::default())
        .build(&context),
    );
    assert_names_the_fix(
        built.map(drop),
        "creating changelog topic shop-rewards-changelog",
    );
}

#[cfg(feature = "snapshots")]
#[test]
fn the_snapshot_store_outside_tokio_says_it_needs_the_runtime() {
    use statestore::snapshots::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
    use statestore::{SnapshotScope, SnapshotStore};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = ObjectSnapshotStore::from_url(&url, UrlOptions::new(SnapshotStoreConfig::new("w")))
        .unwrap();
    let scope = SnapshotScope::new("shop", "rewards", 0);
    let operation = format!("listing the snapshots in {url}");
    assert_names_the_fix(block_on(store.list(&scope)).map(drop), &operation);
    let operation = format!("removing old snapshots from {url}");
    assert_names_the_fix(block_on(store.retain(&scope, 1)).map(drop), &operation);
}
