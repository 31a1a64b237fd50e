//! Exactly-once commits of 12 partitions x 2 stores on the real broker
//! (`scripts/kafka.sh start single`), two ways in the same run:
//!
//! - `v2_one_transaction`: one `StoreManager` with both stores, one transactional
//!   producer for all 24 store partitions; a commit is one transaction holding every
//!   store's records and the 12 input offsets (Kafka Streams' exactly-once v2).
//! - `per_store_24_transactions`: the shape before it — one transactional producer per
//!   store partition (`<app>-<store>-<partition>`), a commit being 24 transactions, the
//!   two stores' 12 each in turn, side by side (what `StatefulConsumer` did with one
//!   manager per store). It commits no input offsets, which that shape could not do
//!   atomically for two stores at all: the figure flatters it.
//!
//! Each interval writes `RECORDS` records into every store partition.
//! `exactly_once/commit` times the commit alone, `COMMIT_INTERVAL` after the previous
//! one (Kafka Streams' exactly-once default); `exactly_once/back_to_back` times writes and
//! commit with no pause between intervals, the commit rate's ceiling, with the records as
//! its throughput.
//!
//! `cargo bench -p benches --bench exactly_once --profile dev`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_memory::MemorySupplier;
use benches::kafka::{bootstrap, runtime, unique};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use futures::future::join_all;
use state_core::{
    Changelog, InputBinding, Partition, ProcessingGuarantee, Serdes, SinkOptions, StoreBuilder,
    StoreContext, StoreHandle, StoreManager, TopicSpec, TypedKeyValueStore,
};
use tempfile::TempDir;

const PARTITIONS: i32 = 12;
const STORES: [&str; 2] = ["rewards", "visits"];
/// Records per store partition per commit interval.
const RECORDS: usize = 100;
/// Time from one commit's end to the next commit, as an application's commit interval
/// (Kafka Streams' `commit.interval.ms` under exactly-once).
const COMMIT_INTERVAL: Duration = Duration::from_millis(100);

/// Waits out the rest of the commit interval that began at `since`: the workload's
/// pace, not a synchronisation.
fn pace(since: Instant) {
    std::thread::sleep(COMMIT_INTERVAL.saturating_sub(since.elapsed()));
}

fn key(partition: Partition, i: usize) -> String {
    format!("p{partition}-customer-{i:04}")
}

fn context(app: &str, dir: &TempDir, changelog: &Arc<KafkaChangelog>) -> StoreContext {
    StoreContext::new(app, 0, PARTITIONS, dir.path())
        .unwrap()
        .with_changelog(changelog.clone())
        .with_guarantee(ProcessingGuarantee::ExactlyOnce)
}

fn builder(store: &str) -> StoreBuilder<String, i64> {
    StoreBuilder::new(MemorySupplier::new(store), Serdes::string(), Serdes::i64())
}

/// Every store of every partition behind one manager and one transactional producer.
struct OneTransaction {
    manager: Arc<StoreManager>,
    stores: Vec<StoreHandle<String, i64>>,
    /// The next input offset per partition, as processing would advance it.
    next: i64,
    _dir: TempDir,
}

impl OneTransaction {
    async fn open(app: &str, input: &str, changelog: &Arc<KafkaChangelog>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut manager = StoreManager::new(context(app, &dir, changelog));
        let stores = STORES
            .iter()
            .map(|name| manager.add_store(builder(name)).unwrap())
            .collect();
        let options = SinkOptions::new(ProcessingGuarantee::ExactlyOnce, unique("eos-v2"))
            .with_source(InputBinding::new(app, input));
        manager
            .use_sink(changelog.sink(&options).await.unwrap())
            .unwrap();
        let manager = Arc::new(manager);
        let partitions: Vec<Partition> = (0..PARTITIONS).collect();
        for (p, restored) in manager.assign_all(&partitions).await {
            restored.unwrap_or_else(|err| panic!("assigning {p}: {err}"));
        }
        Self {
            manager,
            stores,
            next: 0,
            _dir: dir,
        }
    }

    async fn write(&mut self, round: i64) {
        self.next += 1;
        for p in 0..PARTITIONS {
            let mut partition = self.manager.active(p).await.unwrap();
            for handle in &self.stores {
                let store = partition.store(handle).unwrap();
                for i in 0..RECORDS {
                    store.put(&key(p, i), &round).unwrap();
                }
            }
            partition.record_processed(self.next);
        }
    }

    async fn commit(&self) {
        let done = self.manager.commit().await.unwrap();
        assert_eq!(done.records, RECORDS * STORES.len() * PARTITIONS as usize);
    }
}

/// One store per store partition, each with its own transactional producer.
struct PerStore {
    /// `stores[s][p]`: store `s` of partition `p`.
    stores: Vec<Vec<TypedKeyValueStore<String, i64>>>,
    _dir: TempDir,
}

impl PerStore {
    async fn open(app: &str, changelog: &Arc<KafkaChangelog>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let context = context(app, &dir, changelog);
        let mut stores = Vec::new();
        for name in STORES {
            let builder = builder(name);
            let mut partitions = Vec::new();
            for p in 0..PARTITIONS {
                partitions.push(builder.build(&context.for_partition(p)).await.unwrap());
            }
            stores.push(partitions);
        }
        Self { stores, _dir: dir }
    }

    fn write(&mut self, round: i64) {
        for partitions in &self.stores {
            for (p, store) in (0..PARTITIONS).zip(partitions) {
                for i in 0..RECORDS {
                    store.put(&key(p, i), &round).unwrap();
                }
            }
        }
    }

    /// The two stores side by side, each committing its partitions one after another.
    async fn commit(&mut self) {
        let records = join_all(self.stores.iter_mut().map(|partitions| async move {
            let mut records = 0;
            for store in partitions {
                records += store.commit().await.unwrap().records;
            }
            records
        }))
        .await;
        assert_eq!(
            records.iter().sum::<usize>(),
            RECORDS * STORES.len() * PARTITIONS as usize
        );
    }
}

/// Threads of this process now (Linux: `/proc/self/task`).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(8));
    group
}

fn exactly_once(c: &mut Criterion) {
    let rt = runtime();
    let changelog = Arc::new(KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap())).unwrap());
    let input = unique("eos-input");
    rt.block_on(changelog.ensure_topic(&TopicSpec {
        name: input.clone(),
        partitions: PARTITIONS,
        replication_factor: None,
        config: BTreeMap::from([("cleanup.policy".to_owned(), "delete".to_owned())]),
    }))
    .unwrap();
    // What each shape costs the process: librdkafka runs threads per client.
    let before = threads();
    let mut v2 = rt.block_on(OneTransaction::open(
        &unique("eos-v2-app"),
        &input,
        &changelog,
    ));
    let after_v2 = threads();
    let mut per_store = rt.block_on(PerStore::open(&unique("eos-per-store-app"), &changelog));
    eprintln!(
        "threads: v2_one_transaction +{}, per_store_24_transactions +{}",
        after_v2 - before,
        threads() - after_v2
    );
    let mut round = 0i64;

    let mut commits = group(c, "exactly_once/commit");
    commits.bench_function("v2_one_transaction", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let interval = Instant::now();
                rt.block_on(v2.write(round));
                pace(interval);
                let started = Instant::now();
                rt.block_on(v2.commit());
                total += started.elapsed();
            }
            total
        })
    });
    commits.bench_function("per_store_24_transactions", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let interval = Instant::now();
                per_store.write(round);
                pace(interval);
                let started = Instant::now();
                rt.block_on(per_store.commit());
                total += started.elapsed();
            }
            total
        })
    });
    commits.finish();

    let mut intervals = group(c, "exactly_once/back_to_back");
    intervals.throughput(Throughput::Elements(
        (RECORDS * STORES.len() * PARTITIONS as usize) as u64,
    ));
    intervals.bench_function("v2_one_transaction", |b| {
        b.iter(|| {
            round += 1;
            rt.block_on(async {
                v2.write(round).await;
                v2.commit().await;
            });
        })
    });
    intervals.bench_function("per_store_24_transactions", |b| {
        b.iter(|| {
            round += 1;
            per_store.write(round);
            rt.block_on(per_store.commit());
        })
    });
    intervals.finish();
    rt.block_on(v2.manager.close()).unwrap();
}

criterion_group!(benches, exactly_once);
criterion_main!(benches);
