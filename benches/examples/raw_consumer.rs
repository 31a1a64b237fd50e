//! The physical limit of restore on this machine: a raw librdkafka `BaseConsumer` reading
//! changelog partitions from their start to the end offsets captured when it starts,
//! touching each record's key and value and nothing else. `scripts/restore-bench.sh` runs
//! it beside Kafka Streams and `statestore restore` on the same topic.
//!
//! ```sh
//! cargo run -p benches --example raw_consumer -- --topic T --partitions 0,1 \
//!     [--bootstrap-servers 127.0.0.1:9092] [--settings tuned|default] [--set key=value ...]
//! ```
//!
//! Prints one line of JSON: records, milliseconds, the settings used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use state_core::{DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_RESTORE_BATCH, ReadAhead};

struct Args {
    bootstrap: String,
    topic: String,
    partitions: Vec<i32>,
    tuned: bool,
    extra: Vec<(String, String)>,
}

fn parse_args() -> Args {
    let mut args = Args {
        bootstrap: benches::kafka::bootstrap(),
        topic: String::new(),
        partitions: vec![0],
        tuned: true,
        extra: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bootstrap-servers" => args.bootstrap = value(),
            "--topic" => args.topic = value(),
            "--partitions" => {
                args.partitions = value().split(',').map(|p| p.parse().unwrap()).collect();
            }
            "--settings" => args.tuned = value() == "tuned",
            "--set" => {
                let setting = value();
                let (key, value) = setting.split_once('=').expect("--set key=value");
                args.extra.push((key.to_owned(), value.to_owned()));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!args.topic.is_empty(), "--topic is required");
    args
}

fn main() {
    let args = parse_args();
    let mut settings: BTreeMap<String, String> = BTreeMap::new();
    if args.tuned {
        // The settings of a restore cursor with the default read-ahead budget.
        let read_ahead = ReadAhead {
            chunk_records: DEFAULT_RESTORE_BATCH,
            max_bytes: DEFAULT_MAX_BYTES_IN_FLIGHT,
            headers: false,
        };
        for (key, value) in changelog_kafka::restore_consumer_settings(read_ahead) {
            settings.insert(key.to_owned(), value);
        }
    }
    for (key, value) in &args.extra {
        settings.insert(key.clone(), value.clone());
    }
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", format!("raw-consumer-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    for (key, value) in &settings {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &args.partitions {
        let (low, high) = consumer
            .fetch_watermarks(&args.topic, partition, Duration::from_secs(10))
            .unwrap();
        ends.insert(partition, high);
        assignment
            .add_partition_offset(&args.topic, partition, Offset::Offset(low))
            .unwrap();
    }
    let started = Instant::now();
    consumer.assign(&assignment).unwrap();
    let deadline = started + Duration::from_secs(600);
    let mut records = 0u64;
    let mut bytes = 0u64;
    let mut remaining: usize = ends.iter().filter(|(_, end)| **end > 0).count();
    let mut done = BTreeMap::new();
    while remaining > 0 {
        assert!(Instant::now() < deadline, "stalled after {records} records");
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.unwrap();
        records += 1;
        bytes += message.key().map_or(0, <[u8]>::len) as u64;
        bytes += message.payload().map_or(0, <[u8]>::len) as u64;
        let partition = message.partition();
        if message.offset() + 1 >= ends[&partition] && done.insert(partition, ()).is_none() {
            remaining -= 1;
        }
    }
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let settings: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    println!(
        "{{\"mode\":\"raw_consumer\",\"partitions\":{},\"records\":{records},\"bytes\":{bytes},\"millis\":{millis:.1},\"settings\":{{{}}}}}",
        args.partitions.len(),
        settings.join(",")
    );
}
