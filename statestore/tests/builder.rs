//! The builder reads like Kafka Streams' and carries topic config through to the changelog.

use std::collections::HashMap;
use std::sync::Arc;

use futures::executor::block_on;
use statestore::prelude::*;
use statestore::{
    Changelog, ChangelogRecord, ChangelogSink, Serde, SinkOptions, SourceOffsets, TopicSpec,
    changelog_topic_name,
};

fn rewards() -> StoreBuilder<String, f64> {
    Stores::key_value_store_builder(
        Stores::in_memory_key_value_store("rewards"),
        Serdes::string(),
        Serdes::f64(),
    )
}

#[test]
fn logging_config_reaches_the_changelog_topic_and_user_config_wins() {
    let changelog = InMemoryChangelog::new();
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 2, 4, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let config = HashMap::from([
        ("min.insync.replicas".to_owned(), "2".to_owned()),
        ("segment.ms".to_owned(), "100".to_owned()),
    ]);
    let mut store = block_on(rewards().with_logging_enabled(config).build(&context)).unwrap();
    let spec = changelog
        .topic_config("shop-rewards-changelog")
        .expect("topic created");
    assert_eq!(spec.partitions, 4);
    assert_eq!(
        spec.config.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    assert_eq!(
        spec.config.get("min.insync.replicas").map(String::as_str),
        Some("2")
    );
    assert_eq!(
        spec.config.get("segment.ms").map(String::as_str),
        Some("100")
    );

    store.put(&"alice".to_owned(), &3.5).unwrap();
    assert_eq!(
        store.get(&"alice".to_owned()).unwrap(),
        Some(3.5),
        "reads see uncommitted writes"
    );
    let summary = block_on(store.commit()).unwrap();
    assert_eq!(summary.records, 1);
    let records = changelog.records("shop-rewards-changelog", 2).unwrap();
    assert_eq!(records.len(), 1, "the write went to the store's partition");
    assert_eq!(records[0].record.value, Some(3.5f64.to_be_bytes().to_vec()));
}

#[test]
fn user_cleanup_policy_overrides_the_default() {
    let changelog = InMemoryChangelog::new();
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let config = HashMap::from([("cleanup.policy".to_owned(), "compact,delete".to_owned())]);
    block_on(rewards().with_logging_enabled(config).build(&context)).unwrap();
    let spec = changelog.topic_config("shop-rewards-changelog").unwrap();
    assert_eq!(spec.config["cleanup.policy"], "compact,delete");
}

#[test]
fn logging_disabled_creates_no_topic_and_needs_no_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path()).unwrap();
    let mut store = block_on(rewards().with_logging_disabled().build(&context)).unwrap();
    store.put(&"bob".to_owned(), &1.0).unwrap();
    block_on(store.commit()).unwrap();
    assert_eq!(store.get(&"bob".to_owned()).unwrap(), Some(1.0));
    assert!(store.restore_summary().is_none());
}

#[test]
fn logging_enabled_without_a_changelog_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path()).unwrap();
    let err = match block_on(rewards().build(&context)) {
        Ok(_) => panic!("building a logged store without a changelog must fail"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("rewards"), "{err}");
}

#[test]
fn a_value_the_serde_cannot_read_names_the_serde() {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path()).unwrap();
    let store = block_on(rewards().with_logging_disabled().build(&context)).unwrap();
    let raw = store.committed().clone();
    raw.put(b"carol", b"abc").unwrap();
    let err = store.get(&"carol".to_owned()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    for part in ["Double", "key \"carol\"", "store rewards"] {
        assert!(err.to_string().contains(part), "{err}");
    }
    let scanned = store.all().unwrap().next().unwrap().unwrap_err();
    assert!(scanned.to_string().contains("key \"carol\""), "{scanned}");
}

#[test]
fn names_outside_kafkas_topic_rules_are_refused_where_they_enter() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for app in ["../escape", "/abs", "my app", "", "..", &"a".repeat(300)] {
        let err = StoreContext::new(app, 0, 1, &state)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{app:?}: {err}");
    }
    let context = StoreContext::new("shop", 0, 1, &state).unwrap();
    for store in ["../../outside", "a/b", ".", "", &"s".repeat(240)] {
        let builder = Stores::key_value_store_builder(
            Stores::in_memory_key_value_store(store),
            Serdes::string(),
            Serdes::f64(),
        )
        .with_logging_disabled();
        let err = match block_on(builder.build(&context)) {
            Ok(_) => panic!("store name {store:?} was accepted"),
            Err(err) => err,
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{store:?}: {err}");
    }
    // Nothing was created anywhere.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_store_chosen_by_backend_name_builds_like_a_named_one() {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path())
        .unwrap()
        .with_changelog(Arc::new(InMemoryChangelog::new()));
    let supplier = Stores::key_value_store("memory", "rewards").unwrap();
    assert_eq!(supplier.capability().backend, "memory");
    let store = block_on(
        Stores::key_value_store_builder(supplier, Serdes::string(), Serdes::f64()).build(&context),
    )
    .unwrap();
    store.put(&"alice".to_owned(), &1.5).unwrap();
    assert_eq!(store.get(&"alice".to_owned()).unwrap(), Some(1.5));

    let Err(err) = Stores::key_value_store("lmdb", "rewards") else {
        panic!("lmdb is not a backend");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("unknown backend lmdb"), "{err}");
}

#[test]
fn an_at_least_once_store_restores_only_committed_records_of_a_transactional_changelog() {
    // The application ran exactly-once (one committed, one aborted transaction) and now
    // builds its store at-least-once: the aborted records were never part of any commit.
    let changelog = InMemoryChangelog::new();
    let topic = changelog_topic_name("shop", "rewards");
    block_on(changelog.ensure_topic(&TopicSpec::changelog(
        &topic,
        1,
        &std::collections::BTreeMap::new(),
    )))
    .unwrap();
    let sink = changelog
        .sink_now(&SinkOptions::new(
            ProcessingGuarantee::ExactlyOnce,
            "shop-writer",
        ))
        .unwrap();
    let record = |key: &str, value: f64| {
        ChangelogRecord::put(
            Serdes::string().serialize(&key.to_owned()).unwrap(),
            Serdes::f64().serialize(&value).unwrap(),
            0,
        )
    };
    for (key, value) in [("alice", 1.0), ("bob", 2.0)] {
        sink.append(&topic, 0, &record(key, value)).unwrap();
    }
    block_on(sink.commit(&SourceOffsets::none())).unwrap();
    for (key, value) in [("alice", 999.0), ("carol", 333.0)] {
        sink.append(&topic, 0, &record(key, value)).unwrap();
    }
    // In the log, then aborted: what a producer that died mid-transaction leaves.
    sink.flush_pending().unwrap();
    block_on(sink.abort()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, 1, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()))
        .with_guarantee(ProcessingGuarantee::AtLeastOnce);
    let store = block_on(
        rewards()
            .with_logging_enabled(HashMap::new())
            .build(&context),
    )
    .unwrap();
    assert_eq!(store.get(&"alice".to_owned()).unwrap(), Some(1.0));
    assert_eq!(store.get(&"bob".to_owned()).unwrap(), Some(2.0));
    assert_eq!(store.get(&"carol".to_owned()).unwrap(), None);
}

/// The durable backends this build has, by name.
fn durable_backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "redb") {
        backends.push("redb");
    }
    if cfg!(feature = "rocksdb") {
        backends.push("rocksdb");
    }
    backends
}

fn unlogged(backend: &str, dir: &std::path::Path) -> TypedKeyValueStore<String, f64> {
    let context = StoreContext::new("shop", 0, 1, dir).unwrap();
    let supplier = Stores::key_value_store(backend, "rewards").unwrap();
    block_on(
        Stores::key_value_store_builder(supplier, Serdes::string(), Serdes::f64())
            .with_logging_disabled()
            .build(&context),
    )
    .unwrap()
}

/// Without logging, writes wait until commit as they do with it: reads see them at once,
/// the store gets them as one batch at commit (none is a transaction of its own), and a
/// close applies what was not committed, since nothing else holds it.
#[test]
fn unlogged_writes_reach_a_durable_store_at_commit_and_at_close() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = unlogged(backend, dir.path());
        for i in 0..1_000 {
            store
                .put(&format!("customer-{i:04}"), &f64::from(i))
                .unwrap();
        }
        store.delete(&"customer-0007".to_owned()).unwrap();
        let key = |i: u32| format!("customer-{i:04}");
        assert_eq!(store.get(&key(5)).unwrap(), Some(5.0), "{backend}");
        assert_eq!(store.get(&key(7)).unwrap(), None, "{backend}");
        assert_eq!(store.all().unwrap().count(), 999, "{backend}");
        assert_eq!(
            store.committed().get(key(5).as_bytes()).unwrap(),
            None,
            "{backend}: nothing reaches the store before commit"
        );

        block_on(store.commit()).unwrap();
        assert_eq!(store.committed().all().unwrap().count(), 999, "{backend}");
        assert_eq!(
            store.committed().get(key(5).as_bytes()).unwrap(),
            Some(5f64.to_be_bytes().to_vec()),
            "{backend}"
        );

        store.put(&key(7), &70.0).unwrap();
        store.delete(&key(5)).unwrap();
        store.close().unwrap();
        let reopened = unlogged(backend, dir.path());
        assert_eq!(reopened.get(&key(7)).unwrap(), Some(70.0), "{backend}");
        assert_eq!(reopened.get(&key(5)).unwrap(), None, "{backend}");
        assert_eq!(reopened.all().unwrap().count(), 999, "{backend}");
        reopened.close().unwrap();
    }
}
