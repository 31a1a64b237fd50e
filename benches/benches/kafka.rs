//! Logged writes against a real Kafka broker, next to raw rdkafka doing the same network
//! work in the same run:
//! - `kafka/writes/*/10000` and `*/1000000`: that many puts through a logged memory store,
//!   then `commit` (flush and apply), vs a raw `BaseProducer` sending the same records
//!   (idempotent, `acks=all`) and waiting for every delivery report.
//! - `kafka/exactly_once_two_stores/*`: two logged stores on one transactional sink,
//!   10,000 puts each, committed together as one transaction, vs a raw transactional
//!   producer sending the same records to the same two topics in one transaction.
//!
//! Restore has its own benchmark, `restore.rs`; the commit pause of many partitions,
//! `exactly_once.rs`.
//!
//! Needs a broker: `scripts/kafka.sh start single`, then
//! `cargo bench -p benches --bench kafka --profile dev`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::kafka::{bootstrap, delete_topics, runtime, send_when_room, unique};
use benches::{key, value};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use state_core::{
    Changelog, ChangelogSink, KeyValueBytesStoreSupplier, LoggedStore, ProcessingGuarantee,
    SinkOptions, SourceOffsets, TopicSpec, commit_together,
};

/// Records per commit of the at-least-once shape: a commit interval's worth, and a bulk
/// load whose records overflow librdkafka's queue (100,000 messages by default).
const WRITES_PER_COMMIT: [usize; 2] = [10_000, 1_000_000];
/// Records per store per transaction of the exactly-once shape.
const WRITES_PER_STORE: usize = 10_000;
/// How long a raw producer may take to settle its records before the run fails.
const RAW_PATIENCE: Duration = Duration::from_secs(120);

fn changelog_with_topic(rt: &tokio::runtime::Runtime, topic: &str) -> KafkaChangelog {
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap())).unwrap();
    rt.block_on(changelog.ensure_topic(&TopicSpec::changelog(topic, 1, &BTreeMap::new())))
        .unwrap();
    changelog
}

fn memory_store(name: &str) -> Arc<dyn state_core::KeyValueStore> {
    backend_memory::MemorySupplier::new(name)
        .open(std::path::Path::new(""))
        .unwrap()
}

/// An idempotent `acks=all` producer served by the calling thread: the fastest way to
/// drive librdkafka.
fn raw_producer(transactional_id: Option<&str>) -> BaseProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all");
    if let Some(id) = transactional_id {
        // The sink's setting too (see `KafkaSink::create`).
        config
            .set("transactional.id", id)
            .set("retry.backoff.ms", "20");
    }
    config.create().unwrap()
}

/// Sends `count` records to `topic`, serving delivery reports whenever the queue is full.
fn raw_send(producer: &BaseProducer, topic: &str, count: usize, round: usize) {
    for i in 0..count {
        let (k, v) = (key(i), value(i + round));
        send_when_room(producer, BaseRecord::to(topic).key(&k[..]).payload(&v[..]));
    }
}

/// Serves delivery reports until none is outstanding (rdkafka's `flush` sleeps in 100 ms
/// polls; this is the tightest raw loop).
fn raw_settle(producer: &BaseProducer) {
    let deadline = Instant::now() + RAW_PATIENCE;
    while producer.in_flight_count() > 0 {
        assert!(Instant::now() < deadline, "raw producer did not flush");
        producer.poll(Duration::from_millis(1));
    }
}

fn logged_puts(c: &mut Criterion) {
    let rt = runtime();
    let topic = unique("writes");
    let changelog = changelog_with_topic(&rt, &topic);
    let sink = rt
        .block_on(changelog.sink(&SinkOptions::default()))
        .unwrap();
    let mut logged = LoggedStore::new(memory_store("bench"), sink, &topic, 0);
    let raw_topic = unique("raw-writes");
    let _raw_changelog = changelog_with_topic(&rt, &raw_topic);
    let producer = raw_producer(None);

    let mut group = c.benchmark_group("kafka/writes");
    group.sample_size(10);
    let mut round = 0usize;
    for writes in WRITES_PER_COMMIT {
        group.throughput(Throughput::Elements(writes as u64));
        group.bench_function(BenchmarkId::new("logged_puts_then_commit", writes), |b| {
            b.iter(|| {
                round += 1;
                for i in 0..writes {
                    logged.put(&key(i), &value(i + round)).unwrap();
                }
                rt.block_on(logged.commit()).unwrap();
            })
        });
        group.bench_function(
            BenchmarkId::new("raw_rdkafka_produce_then_flush", writes),
            |b| {
                b.iter(|| {
                    round += 1;
                    raw_send(&producer, &raw_topic, writes, round);
                    raw_settle(&producer);
                })
            },
        );
    }
    group.finish();
    drop(logged);
    delete_topics(&rt, &[&topic, &raw_topic]);
}

fn exactly_once_two_stores(c: &mut Criterion) {
    let rt = runtime();
    let topics = [unique("eos-rewards"), unique("eos-visits")];
    let changelog = changelog_with_topic(&rt, &topics[0]);
    let _other = changelog_with_topic(&rt, &topics[1]);
    let options = SinkOptions::new(ProcessingGuarantee::ExactlyOnce, unique("eos-sink"));
    let sink: Arc<dyn ChangelogSink> = rt.block_on(changelog.sink(&options)).unwrap();
    let mut stores: Vec<LoggedStore> = topics
        .iter()
        .map(|topic| LoggedStore::new(memory_store(topic), sink.clone(), topic, 0))
        .collect();
    let raw_topics = [unique("raw-eos-rewards"), unique("raw-eos-visits")];
    let _raw = raw_topics
        .iter()
        .map(|topic| changelog_with_topic(&rt, topic))
        .collect::<Vec<_>>();
    let producer = raw_producer(Some(&unique("raw-eos")));
    producer.init_transactions(RAW_PATIENCE).unwrap();

    let mut group = c.benchmark_group("kafka/exactly_once_two_stores");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2 * WRITES_PER_STORE as u64));
    let mut round = 0usize;
    group.bench_function("logged_puts_then_joint_commit", |b| {
        b.iter(|| {
            round += 1;
            for store in &stores {
                for i in 0..WRITES_PER_STORE {
                    store.put(&key(i), &value(i + round)).unwrap();
                }
            }
            let mut both: Vec<&mut LoggedStore> = stores.iter_mut().collect();
            let joint = rt
                .block_on(commit_together(
                    sink.as_ref(),
                    &mut both,
                    &SourceOffsets::none(),
                ))
                .unwrap();
            for store in joint.stores {
                assert_eq!(store.unwrap().records, WRITES_PER_STORE);
            }
        })
    });
    group.bench_function("raw_rdkafka_transaction", |b| {
        b.iter(|| {
            round += 1;
            producer.begin_transaction().unwrap();
            for topic in &raw_topics {
                raw_send(&producer, topic, WRITES_PER_STORE, round);
            }
            // Settled first, as the sink does: librdkafka's own flush inside the commit
            // waits in 100 ms steps.
            raw_settle(&producer);
            producer.commit_transaction(RAW_PATIENCE).unwrap();
        })
    });
    group.finish();
    drop(stores);
    delete_topics(
        &rt,
        &[&topics[0], &topics[1], &raw_topics[0], &raw_topics[1]],
    );
}

criterion_group!(kafka, logged_puts, exactly_once_two_stores);
criterion_main!(kafka);
