//! Logged writes and restore against a real Kafka broker, each next to raw rdkafka doing
//! the same network work in the same run:
//! - `logged_puts`: 10,000 puts through a logged memory store, then `commit` (flush), vs a
//!   raw `BaseProducer` sending the same records (idempotent, `acks=all`) and flushing.
//! - `restore`: restoring 1,000,000 changelog records (100,000 keys) into a fresh store of
//!   each backend vs a raw
//!   `BaseConsumer` reading the same topic to its end — the physical limit of restore.
//!
//! Needs a broker: `scripts/kafka.sh start single`, then
//! `cargo bench -p benches --bench kafka --profile dev`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::kafka::{bootstrap, runtime};
use benches::{key, value};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogRecord, KeyValueBytesStoreSupplier, LoggedStore, NoopRestoreListener,
    ProcessingGuarantee, RestoreOptions, SinkOptions, TopicSpec, restore,
};

const WRITES: usize = 10_000;
const RESTORE_RECORDS: usize = 1_000_000;
const RESTORE_KEYS: usize = 100_000;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bench-{prefix}-{}-{nanos}", std::process::id())
}

fn changelog_with_topic(rt: &tokio::runtime::Runtime, topic: &str) -> KafkaChangelog {
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap())).unwrap();
    rt.block_on(changelog.ensure_topic(&TopicSpec::changelog(topic, 1, &BTreeMap::new())))
        .unwrap();
    changelog
}

fn logged_puts(c: &mut Criterion) {
    let rt = runtime();
    let topic = unique("writes");
    let changelog = changelog_with_topic(&rt, &topic);
    let sink = rt
        .block_on(changelog.sink(&topic, &SinkOptions::default()))
        .unwrap();
    let store = backend_memory::MemorySupplier::new("bench")
        .open(std::path::Path::new(""))
        .unwrap();
    let mut logged = LoggedStore::new(store, sink, 0);

    let raw_topic = unique("raw-writes");
    let _raw_changelog = changelog_with_topic(&rt, &raw_topic);
    // A BaseProducer served by this thread: the fastest way to drive librdkafka, and its
    // flush returns as soon as the last report is served.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();

    let mut group = c.benchmark_group("kafka/writes");
    group.sample_size(10);
    group.throughput(Throughput::Elements(WRITES as u64));
    let mut round = 0usize;
    group.bench_function("logged_puts_then_commit", |b| {
        b.iter(|| {
            round += 1;
            for i in 0..WRITES {
                logged.put(&key(i), &value(i + round)).unwrap();
            }
            rt.block_on(logged.commit()).unwrap();
        })
    });
    group.bench_function("raw_rdkafka_produce_then_flush", |b| {
        b.iter(|| {
            round += 1;
            for i in 0..WRITES {
                let (k, v) = (key(i), value(i + round));
                let mut record = BaseRecord::to(&raw_topic).key(&k[..]).payload(&v[..]);
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((_, returned)) => {
                            record = returned;
                            producer.poll(Duration::from_millis(1));
                        }
                    }
                }
            }
            // Serve delivery reports until none is outstanding (rdkafka's `flush` sleeps in
            // 100 ms polls; this is the tightest raw loop).
            let deadline = Instant::now() + Duration::from_secs(30);
            while producer.in_flight_count() > 0 {
                assert!(Instant::now() < deadline, "raw producer did not flush");
                producer.poll(Duration::from_millis(1));
            }
        })
    });
    group.finish();
}

fn restore_bench(c: &mut Criterion) {
    let rt = runtime();
    let topic = unique("restore");
    let changelog = changelog_with_topic(&rt, &topic);
    let sink = rt
        .block_on(changelog.sink(&topic, &SinkOptions::default()))
        .unwrap();
    for i in 0..RESTORE_RECORDS {
        sink.append(
            0,
            &ChangelogRecord::put(key(i % RESTORE_KEYS).to_vec(), value(i), 0),
        )
        .unwrap();
    }
    rt.block_on(sink.flush()).unwrap();
    let reader = rt
        .block_on(changelog.reader(&topic, ProcessingGuarantee::AtLeastOnce.isolation()))
        .unwrap();
    let suppliers: Vec<Box<dyn KeyValueBytesStoreSupplier>> = vec![
        Box::new(backend_memory::MemorySupplier::new("bench")),
        Box::new(backend_rocksdb::RocksDbSupplier::new("bench")),
        Box::new(backend_redb::RedbSupplier::new("bench")),
    ];

    let mut group = c.benchmark_group("kafka/restore");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RESTORE_RECORDS as u64));
    for supplier in &suppliers {
        group.bench_function(format!("restore_into_{}", supplier.backend()), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = supplier.open(&dir.path().join("store")).unwrap();
                    (dir, store)
                },
                |(dir, store)| {
                    let summary = rt
                        .block_on(restore(
                            store.as_ref(),
                            reader.as_ref(),
                            0,
                            &RestoreOptions::default(),
                            &NoopRestoreListener,
                        ))
                        .unwrap();
                    assert_eq!(summary.restored as usize, RESTORE_RECORDS);
                    (dir, store)
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.bench_function("raw_rdkafka_consume_to_end", |b| {
        b.iter(|| {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", bootstrap())
                .set("group.id", unique("raw-consumer"))
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false")
                .create()
                .unwrap();
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&topic, 0, Offset::Offset(0))
                .unwrap();
            consumer.assign(&assignment).unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut seen = 0usize;
            while seen < RESTORE_RECORDS {
                assert!(Instant::now() < deadline, "raw consumer stalled at {seen}");
                if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                    message.unwrap();
                    seen += 1;
                }
            }
        })
    });
    group.finish();
    let _keep_alive = Arc::new(changelog);
}

criterion_group!(kafka, logged_puts, restore_bench);
criterion_main!(kafka);
