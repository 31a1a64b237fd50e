//! Kafka's default partitioner, as statestore computes it to locate a key, agrees with
//! the Java producer's on a real broker (`scripts/kafka.sh start`): keys written by
//! Kafka's own console producer (the Java client's `BuiltInPartitioner`) land exactly in
//! the partitions `state_core::partition_for_key` names, and so do keys written by a
//! librdkafka producer with `partitioner=murmur2_random`. Under `CI=true` a missing
//! broker fails the test.
#![cfg(feature = "kafka")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use state_core::{Changelog, TopicSpec, partition_for_key};
use test_support::{eventually, unique_name};

/// An odd partition count, so a modulo mistake shows.
const PARTITIONS: i32 = 7;

/// Keys of every length remainder mod 4 (murmur2's tail cases), multi-byte UTF-8 and the
/// shapes applications use.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..300).map(|i| format!("customer-{i}")).collect();
    keys.extend((1..=40).map(|n| "k".repeat(n)));
    keys.extend(["zoë", "日本語のキー", "🦀", "a b", "UPPER", "0", "-1"].map(str::to_owned));
    keys
}

fn create_topic(bootstrap: &str, name: &str) {
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap)).unwrap();
    let spec = TopicSpec {
        name: name.to_owned(),
        partitions: PARTITIONS,
        replication_factor: None,
        config: BTreeMap::from([("cleanup.policy".to_owned(), "delete".to_owned())]),
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(changelog.ensure_topic(&spec))
        .unwrap();
}

/// Every record of `topic` as key -> partition, once `expected` records are read.
fn partitions_of_keys(bootstrap: &str, topic: &str, expected: usize) -> BTreeMap<String, i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("partitioner-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut seen = BTreeMap::new();
    eventually(
        Duration::from_secs(60),
        &format!("{expected} records in {topic}"),
        || {
            while let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.unwrap();
                let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
                seen.insert(key, message.partition());
            }
            if seen.len() >= expected {
                Ok(())
            } else {
                Err(format!("{} read", seen.len()))
            }
        },
    );
    seen
}

fn assert_agrees(written: &BTreeMap<String, i32>, by: &str) {
    let mut used = std::collections::BTreeSet::new();
    for (key, partition) in written {
        assert_eq!(
            partition_for_key(key.as_bytes(), PARTITIONS).unwrap(),
            *partition,
            "{by} wrote {key:?} to partition {partition}"
        );
        used.insert(*partition);
    }
    assert_eq!(
        used.len(),
        PARTITIONS as usize,
        "keys reached every partition"
    );
}

#[test]
fn the_java_producer_puts_keys_where_statestore_looks_for_them() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let topic = unique_name("java-partitioned");
    create_topic(&bootstrap, &topic);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka.sh");
    let mut producer = Command::new("bash")
        .arg(script)
        .args([
            "run",
            "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            &topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=\t",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("running Kafka's console producer");
    let keys = keys();
    {
        let mut stdin = producer.stdin.take().unwrap();
        for key in &keys {
            writeln!(stdin, "{key}\tvalue-of-{key}").unwrap();
        }
    }
    let status = producer.wait().unwrap();
    assert!(status.success(), "the console producer failed: {status}");
    assert_agrees(
        &partitions_of_keys(&bootstrap, &topic, keys.len()),
        "Java's producer",
    );
}

#[test]
fn librdkafka_murmur2_random_agrees_too() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let topic = unique_name("rdkafka-partitioned");
    create_topic(&bootstrap, &topic);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let keys = keys();
    for key in &keys {
        producer
            .send(BaseRecord::to(&topic).key(key.as_bytes()).payload("v"))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_agrees(
        &partitions_of_keys(&bootstrap, &topic, keys.len()),
        "librdkafka",
    );
}
