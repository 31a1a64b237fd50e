//! Logged writes against a real Kafka broker, next to raw rdkafka doing the same network
//! work in the same run:
//! - `logged_puts`: 10,000 puts through a logged memory store, then `commit` (flush), vs a
//!   raw `BaseProducer` sending the same records (idempotent, `acks=all`) and flushing.
//!
//! Restore has its own benchmark, `restore.rs`.
//!
//! Needs a broker: `scripts/kafka.sh start single`, then
//! `cargo bench -p benches --bench kafka --profile dev`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use benches::kafka::{bootstrap, runtime, unique};
use benches::{key, value};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use state_core::{Changelog, KeyValueBytesStoreSupplier, LoggedStore, SinkOptions, TopicSpec};

const WRITES: usize = 10_000;

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
        .block_on(changelog.sink(&SinkOptions::default()))
        .unwrap();
    let store = backend_memory::MemorySupplier::new("bench")
        .open(std::path::Path::new(""))
        .unwrap();
    let mut logged = LoggedStore::new(store, sink, &topic, 0);

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

criterion_group!(kafka, logged_puts);
criterion_main!(kafka);
