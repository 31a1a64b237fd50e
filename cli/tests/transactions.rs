//! A changelog written by a transactional producer, with one committed and one aborted
//! transaction, read by `restore` and `verify`: committed records only by default, every
//! record with `--read-uncommitted`, and the offsets without a committed record reported
//! either way. And `verify` cannot call a store verified when there is nothing to compare.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{STORE, args, assert_exit, durable, location, run_owned, store_dir, supplier, text};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use statestore::{Changelog, Serde, Serdes, TopicSpec, changelog_topic_name};

/// `customer-1 -> 1.0, customer-2 -> 2.0` committed, then `customer-1 -> 999.0,
/// customer-3 -> 333.0` aborted: what the Java producer wrote.
fn write_committed_then_aborted(servers: &str, app: &str) {
    let topic = changelog_topic_name(app, STORE);
    create_topic(servers, &topic);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("transactional.id", format!("{app}-writer"))
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    for (records, commit) in [
        ([(1, 1.0), (2, 2.0)], true),
        ([(1, 999.0), (3, 333.0)], false),
    ] {
        producer.begin_transaction().unwrap();
        for (customer, value) in records {
            let key = Serdes::string()
                .serialize(&format!("customer-{customer}"))
                .unwrap();
            let value = Serdes::f64().serialize(&value).unwrap();
            producer
                .send(
                    BaseRecord::to(&topic)
                        .partition(0)
                        .key(&key)
                        .payload(&value),
                )
                .map_err(|(err, _)| err)
                .unwrap();
        }
        producer.flush(timeout).unwrap();
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.abort_transaction(timeout).unwrap();
        }
    }
}

fn create_topic(servers: &str, topic: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let changelog = changelog_kafka::KafkaChangelog::new(
            changelog_kafka::KafkaChangelogConfig::new(servers)
                .with_client_id("statestore-cli-tests"),
        )
        .unwrap();
        changelog
            .ensure_topic(&TopicSpec::changelog(topic, 1, &BTreeMap::new()))
            .await
            .unwrap();
    });
}

/// The store's entries as `customer -> value`.
fn contents(state_dir: &Path, app: &str) -> BTreeMap<String, f64> {
    let store = supplier(durable())
        .open(&store_dir(state_dir, app, 0))
        .unwrap();
    let entries = store
        .all()
        .unwrap()
        .map(|entry| {
            let (key, value) = entry.unwrap();
            (
                Serdes::string().deserialize(&key).unwrap(),
                Serdes::f64().deserialize(&value).unwrap(),
            )
        })
        .collect();
    store.close().unwrap();
    entries
}

fn command(name: &str, servers: &str, state_dir: &Path, app: &str, extra: &[&str]) -> Vec<String> {
    let partition: &[&str] = if name == "restore" {
        &["--partitions", "0"]
    } else {
        &["--partition", "0"]
    };
    let location = location(state_dir, app, durable());
    let location: Vec<&str> = location.iter().map(String::as_str).collect();
    args(&[
        &[name, "--bootstrap-servers", servers],
        partition,
        &location,
        extra,
    ])
}

#[test]
fn restore_and_verify_read_committed_records_unless_told_otherwise() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let app = test_support::unique_name("txn");
    write_committed_then_aborted(&servers, &app);
    let committed = tempfile::tempdir().unwrap();

    let output = run_owned(&command("restore", &servers, committed.path(), &app, &[]));
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("offsets held no committed record"),
        "{}",
        text(&output)
    );
    assert_eq!(
        contents(committed.path(), &app),
        BTreeMap::from([
            ("customer-1".to_owned(), 1.0),
            ("customer-2".to_owned(), 2.0)
        ])
    );
    let output = run_owned(&command("verify", &servers, committed.path(), &app, &[]));
    assert_exit(&output, 0);
    assert!(text(&output).contains("verified"), "{}", text(&output));

    // The flag that asked for read-committed before it was the default is still taken.
    let output = run_owned(&command(
        "verify",
        &servers,
        committed.path(),
        &app,
        &["--exactly-once"],
    ));
    assert_exit(&output, 0);

    let uncommitted = tempfile::tempdir().unwrap();
    let output = run_owned(&command(
        "restore",
        &servers,
        uncommitted.path(),
        &app,
        &["--read-uncommitted"],
    ));
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("records of aborted ones were applied too"),
        "{}",
        text(&output)
    );
    assert_eq!(
        contents(uncommitted.path(), &app),
        BTreeMap::from([
            ("customer-1".to_owned(), 999.0),
            ("customer-2".to_owned(), 2.0),
            ("customer-3".to_owned(), 333.0)
        ])
    );
    // Against the committed records, the store that took the aborted ones diverges.
    let output = run_owned(&command("verify", &servers, uncommitted.path(), &app, &[]));
    assert_exit(&output, 1);
    assert!(text(&output).contains("DIVERGED"), "{}", text(&output));
}

#[test]
fn verify_of_a_store_without_a_position_against_a_log_with_records_is_not_verified() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let app = test_support::unique_name("verify-empty");
    common::append_records(&servers, &app, 1, 0..100);
    let dir = tempfile::tempdir().unwrap();
    // What a restore that applied nothing used to leave behind: a valid, empty store.
    let store = supplier(durable())
        .open(&store_dir(dir.path(), &app, 0))
        .unwrap();
    store.close().unwrap();
    drop(store);

    let output = run_owned(&command("verify", &servers, dir.path(), &app, &[]));
    assert_exit(&output, 1);
    let said = text(&output);
    assert!(said.contains("NOT VERIFIED"), "{said}");
    assert!(said.contains("no position"), "{said}");
    assert!(!said.contains("verified:"), "{said}");
}

#[test]
fn verify_refuses_a_changelog_record_the_serde_cannot_read_as_restore_does() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let app = test_support::unique_name("verify-serde");
    common::append_records(&servers, &app, 1, 0..10);
    let dir = tempfile::tempdir().unwrap();
    let output = run_owned(&command("restore", &servers, dir.path(), &app, &[]));
    assert_exit(&output, 0);
    // Read as 4-byte integers, the 8-byte values are undecodable: restore (into a new
    // directory) refuses the first one, and verify must too, naming where it is.
    let fresh = tempfile::tempdir().unwrap();
    for (name, state_dir) in [("restore", fresh.path()), ("verify", dir.path())] {
        let output = run_owned(&command(
            name,
            &servers,
            state_dir,
            &app,
            &["--value-serde", "i32"],
        ));
        assert_exit(&output, 1);
        let said = text(&output);
        assert!(
            said.contains("undecodable changelog record") && said.contains("offset 0"),
            "{name}: {said}"
        );
    }
}
