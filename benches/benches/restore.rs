//! Restore, stage by stage, each stage next to the raw piece that sets its limit, on a real
//! broker and in the same run (`BENCHMARKS.md`).
//!
//! The changelog: 1,000,000 records over 100,000 keys (or `RESTORE_BENCH_RECORDS` over
//! `RESTORE_BENCH_KEYS`), String keys `customer-N` and 8-byte big-endian Double values
//! (what Kafka Streams' `Serdes.String()` / `Serdes.Double()` write), produced once into a
//! one-partition topic and a four-partition topic.
//!
//! - `restore/read`: `raw_consumer` is a raw librdkafka `BaseConsumer` with the restore
//!   cursor's settings reading to the end offset (fetch and hand-over, the physical limit
//!   of reading); `cursor` is statestore's restore cursor, every chunk fetched and copied
//!   out, nothing applied.
//! - `restore/apply`: the whole changelog already in memory as the cursor's chunks, written
//!   into a fresh store in the backend's restore batches with their positions
//!   (`<backend>`), next to the raw engine doing the same bulk write (`raw_<backend>`):
//!   RocksDB `WriteBatch`es with the WAL off, redb write transactions committed with
//!   `Durability::None` and a last `Immediate` one, dashmap inserts; and the redb store with
//!   one setting at a time as raw redb has it (`redb_cache_1gib`, `redb_one_immediate`).
//! - `restore/full`: `restore()` into a fresh store of each backend, one partition; the
//!   durable backends also without durability points (`<backend>_no_durability_points`)
//!   and with one every 100,000 records (`<backend>_durable_every_100k`), to show what
//!   making the work durable every 500,000 records or 5 s (the default) costs.
//! - `restore/4_partitions`: the four-partition topic, every partition restored at once
//!   into its own store, next to one raw consumer reading all four.
//!
//! Needs a broker: `scripts/kafka.sh start single`, then
//! `cargo bench -p benches --bench restore --profile dev`; at ten times the size,
//! `RESTORE_BENCH_RECORDS=10000000 RESTORE_BENCH_KEYS=1000000 cargo bench ...`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use benches::kafka::{bootstrap, runtime, send_when_room, unique};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig, KafkaReader};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogChunk, ChangelogReader, DurabilityPoints, IsolationLevel,
    KeyValueBytesStoreSupplier, KeyValueStore, NoopRestoreListener, Position, ReadAhead,
    RestoreOptions, TopicSpec, WriteOp, restore,
};
use tempfile::TempDir;

/// The changelog's records and keys: 1,000,000 over 100,000 unless `RESTORE_BENCH_RECORDS`
/// and `RESTORE_BENCH_KEYS` say otherwise, so the stages can be measured at ten times the
/// size without a rebuild.
fn size() -> (usize, usize) {
    static SIZE: OnceLock<(usize, usize)> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let read = |name: &str, default: usize| match std::env::var(name) {
            Ok(text) => text
                .replace('_', "")
                .parse()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| panic!("{name}={text:?}: expected a positive count")),
            Err(_) => default,
        };
        let records = read("RESTORE_BENCH_RECORDS", 1_000_000);
        let keys = read("RESTORE_BENCH_KEYS", 100_000);
        assert!(
            keys <= records,
            "RESTORE_BENCH_KEYS {keys} > RESTORE_BENCH_RECORDS {records}"
        );
        (records, keys)
    })
}

fn records() -> usize {
    size().0
}

fn keys() -> usize {
    size().1
}

/// A topic of `partitions` holding the changelog, keys spread by librdkafka's default
/// partitioner (murmur2, as Kafka Streams').
fn produce(rt: &tokio::runtime::Runtime, changelog: &KafkaChangelog, partitions: i32) -> String {
    let topic = unique("restore");
    rt.block_on(changelog.ensure_topic(&TopicSpec::changelog(
        &topic,
        partitions,
        &BTreeMap::new(),
    )))
    .unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "262144")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for i in 0..records() {
        let key = format!("customer-{}", i % keys());
        let value = (i as f64).to_be_bytes();
        send_when_room(
            &producer,
            BaseRecord::to(&topic)
                .key(key.as_bytes())
                .payload(&value[..]),
        );
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    topic
}

fn suppliers() -> Vec<Box<dyn KeyValueBytesStoreSupplier>> {
    vec![
        Box::new(backend_memory::MemorySupplier::new("bench")),
        Box::new(backend_rocksdb::RocksDbSupplier::new("bench")),
        Box::new(backend_redb::RedbSupplier::new("bench")),
    ]
}

fn fresh(supplier: &dyn KeyValueBytesStoreSupplier) -> (TempDir, Arc<dyn KeyValueStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = supplier.open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// A raw consumer with the restore cursor's settings, reading `partitions` of `topic`
/// to their end offsets; returns the records read.
fn raw_consume(topic: &str, partitions: i32) -> usize {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("raw-consumer"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let read_ahead = ReadAhead {
        chunk_records: state_core::DEFAULT_RESTORE_BATCH,
        max_bytes: state_core::DEFAULT_MAX_BYTES_IN_FLIGHT,
        headers: false,
    };
    for (key, value) in changelog_kafka::restore_consumer_settings(read_ahead) {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .unwrap();
        ends.insert(partition, high);
        assignment
            .add_partition_offset(topic, partition, KafkaOffset::Offset(low))
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut seen, mut bytes, mut open) = (0, 0, partitions);
    while open > 0 {
        assert!(Instant::now() < deadline, "raw consumer stalled at {seen}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            bytes +=
                message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len);
            seen += 1;
            if message.offset() + 1 == ends[&message.partition()] {
                open -= 1;
            }
        }
    }
    assert!(bytes > 0);
    seen
}

/// Every chunk of partition 0, read with `batch` records per chunk.
async fn read_all(reader: &KafkaReader, batch: usize) -> Vec<ChangelogChunk> {
    let end = reader.offsets(0).await.unwrap().end;
    let read_ahead = ReadAhead {
        chunk_records: batch,
        max_bytes: state_core::DEFAULT_MAX_BYTES_IN_FLIGHT,
        headers: false,
    };
    let mut cursor = reader.open_with(0, 0, read_ahead).await.unwrap();
    let mut chunks = Vec::new();
    while cursor.position() < end {
        chunks.push(cursor.next_chunk(batch).await.unwrap());
    }
    chunks
}

fn read_stage(c: &mut Criterion, rt: &tokio::runtime::Runtime, topic: &str, reader: &KafkaReader) {
    let mut group = c.benchmark_group("restore/read");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records() as u64));
    group.bench_function("raw_consumer", |b| {
        b.iter(|| assert_eq!(raw_consume(topic, 1), records()))
    });
    group.bench_function("cursor", |b| {
        b.iter(|| {
            let chunks = rt.block_on(read_all(reader, state_core::DEFAULT_RESTORE_BATCH));
            assert_eq!(
                chunks.iter().map(ChangelogChunk::len).sum::<usize>(),
                records()
            );
        })
    });
    group.finish();
}

/// The chunks written the way restore writes them: each with its position.
fn apply_chunks(store: &dyn KeyValueStore, chunks: &[ChangelogChunk]) {
    store.set_bulk_loading(true).unwrap();
    for chunk in chunks {
        let position = Position::of(0, chunk.last_offset().unwrap());
        store.write_with_position(chunk.batch(), &position).unwrap();
    }
    store.set_bulk_loading(false).unwrap();
}

/// The same bulk write on the raw engine behind `backend`.
fn apply_raw(backend: &str, dir: &std::path::Path, chunks: &[ChangelogChunk]) {
    match backend {
        "memory" => {
            let map = dashmap::DashMap::new();
            for chunk in chunks {
                for op in chunk.batch().iter() {
                    match op {
                        WriteOp::Put { key, value } => {
                            map.insert(key.to_vec(), value.to_vec());
                        }
                        WriteOp::Delete { key } => {
                            map.remove(key);
                        }
                    }
                }
            }
            assert_eq!(map.len(), keys());
        }
        "rocksdb" => {
            let db = benches::raw_rocksdb::open(dir);
            let options = benches::raw_rocksdb::write_options();
            for chunk in chunks {
                let mut batch = rocksdb::WriteBatch::default();
                for op in chunk.batch().iter() {
                    match op {
                        WriteOp::Put { key, value } => batch.put(key, value),
                        WriteOp::Delete { key } => batch.delete(key),
                    }
                }
                db.write_opt(batch, &options).unwrap();
            }
            db.flush().unwrap();
        }
        "redb" => {
            let table: redb::TableDefinition<'_, &[u8], &[u8]> = redb::TableDefinition::new("d");
            let db = redb::Database::create(dir.join("raw.redb")).unwrap();
            for chunk in chunks {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(redb::Durability::None).unwrap();
                {
                    let mut data = txn.open_table(table).unwrap();
                    for op in chunk.batch().iter() {
                        match op {
                            WriteOp::Put { key, value } => {
                                data.insert(key, value).unwrap();
                            }
                            WriteOp::Delete { key } => {
                                data.remove(key).unwrap();
                            }
                        }
                    }
                }
                txn.commit().unwrap();
            }
            let mut txn = db.begin_write().unwrap();
            txn.set_durability(redb::Durability::Immediate).unwrap();
            txn.commit().unwrap();
        }
        other => panic!("no raw engine for {other}"),
    }
}

/// The redb store with one of its settings set as raw redb has it, to show what each
/// costs as the store outgrows its page cache: redb's own 1 GiB cache instead of the
/// backend's 64 MiB, and one `Immediate` commit at the end instead of one in 4.
fn redb_as_raw() -> Vec<(&'static str, backend_redb::RedbSupplier)> {
    let config = backend_redb::RedbConfig::default;
    let supplier = |config| backend_redb::RedbSupplier::new("bench").with_config(config);
    vec![
        (
            "redb_cache_1gib",
            supplier(config().with_cache_size(1 << 30)),
        ),
        (
            "redb_one_immediate",
            supplier(config().with_bulk_immediate_every(u32::MAX)),
        ),
    ]
}

fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    supplier: &dyn KeyValueBytesStoreSupplier,
    chunks: &[ChangelogChunk],
) {
    group.bench_function(name, |b| {
        b.iter_batched(
            || fresh(supplier),
            |(dir, store)| {
                apply_chunks(store.as_ref(), chunks);
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
}

fn apply_stage(c: &mut Criterion, rt: &tokio::runtime::Runtime, reader: &KafkaReader) {
    let mut group = c.benchmark_group("restore/apply");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records() as u64));
    for supplier in suppliers() {
        let backend = supplier.backend();
        let (_dir, probe) = fresh(supplier.as_ref());
        let batch = probe.capability().restore_batch;
        drop(probe);
        let chunks = rt.block_on(read_all(reader, batch));
        bench_apply(&mut group, backend, supplier.as_ref(), &chunks);
        group.bench_function(format!("raw_{backend}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    apply_raw(backend, dir.path(), &chunks);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
        if backend == "redb" {
            for (name, variant) in redb_as_raw() {
                bench_apply(&mut group, name, &variant, &chunks);
            }
        }
    }
    group.finish();
}

fn full_stage(c: &mut Criterion, rt: &tokio::runtime::Runtime, reader: &KafkaReader) {
    let mut group = c.benchmark_group("restore/full");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records() as u64));
    for supplier in suppliers() {
        // Durable backends also without durability points and with five times as many,
        // to show what they cost.
        let every_100k = DurabilityPoints {
            records: 100_000,
            ..DurabilityPoints::default()
        };
        let variants: Vec<(&str, Option<DurabilityPoints>)> = if supplier.capability().durable {
            vec![
                ("", Some(DurabilityPoints::default())),
                ("_no_durability_points", None),
                ("_durable_every_100k", Some(every_100k)),
            ]
        } else {
            vec![("", Some(DurabilityPoints::default()))]
        };
        for (suffix, points) in &variants {
            let options = RestoreOptions {
                durability_points: *points,
                ..RestoreOptions::default()
            };
            group.bench_function(format!("{}{suffix}", supplier.backend()), |b| {
                b.iter_batched(
                    || fresh(supplier.as_ref()),
                    |(dir, store)| {
                        let summary = rt
                            .block_on(restore(
                                store.as_ref(),
                                reader,
                                0,
                                &options,
                                &NoopRestoreListener,
                            ))
                            .unwrap();
                        assert_eq!(summary.restored as usize, records());
                        (dir, store)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

fn four_partitions_stage(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    topic: &str,
    reader: Arc<KafkaReader>,
) {
    let mut group = c.benchmark_group("restore/4_partitions");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records() as u64));
    group.bench_function("raw_consumer", |b| {
        b.iter(|| assert_eq!(raw_consume(topic, 4), records()))
    });
    for supplier in suppliers() {
        group.bench_function(supplier.backend(), |b| {
            b.iter_batched(
                || (0..4).map(|_| fresh(supplier.as_ref())).collect::<Vec<_>>(),
                |stores| {
                    let tasks: Vec<_> = stores
                        .iter()
                        .enumerate()
                        .map(|(partition, (_, store))| {
                            let (store, reader) = (store.clone(), reader.clone());
                            rt.spawn(async move {
                                restore(
                                    store.as_ref(),
                                    reader.as_ref(),
                                    partition as i32,
                                    &RestoreOptions::default(),
                                    &NoopRestoreListener,
                                )
                                .await
                                .unwrap()
                                .restored
                            })
                        })
                        .collect();
                    let restored: u64 = rt.block_on(async {
                        let mut total = 0;
                        for task in tasks {
                            total += task.await.unwrap();
                        }
                        total
                    });
                    assert_eq!(restored as usize, records());
                    stores
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn restore_stages(c: &mut Criterion) {
    let rt = runtime();
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap())).unwrap();
    let one = produce(&rt, &changelog, 1);
    let four = produce(&rt, &changelog, 4);
    let reader = changelog
        .kafka_reader(&one, IsolationLevel::ReadUncommitted)
        .unwrap();
    let reader4 = Arc::new(
        changelog
            .kafka_reader(&four, IsolationLevel::ReadUncommitted)
            .unwrap(),
    );
    read_stage(c, &rt, &one, &reader);
    apply_stage(c, &rt, &reader);
    full_stage(c, &rt, &reader);
    four_partitions_stage(c, &rt, &four, reader4);
}

criterion_group!(benches, restore_stages);
criterion_main!(benches);
