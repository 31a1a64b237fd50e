//! Relocation of one partition holding 100,000 keys, on a real Kafka broker: the time of
//! `StoreManager::assign` from the call until the store is served, in three cases:
//! - `cold`: a new instance (fresh state directory, no standby) opens the store and
//!   restores the whole changelog partition;
//! - `standby`: the new owner's standby had caught up (lag 0), then the old owner wrote
//!   and committed 1,000 updates (1% churn); `assign` promotes the standby and replays
//!   only that lag;
//! - `kept_dir` (RocksDB only; memory keeps nothing): the instance owned the partition
//!   and revoked it with `AfterRevoke::Close`, another instance wrote and committed 1,000
//!   updates; `assign` reopens the kept directory and replays only that tail.
//!
//! Next to them, in the same run, a raw rdkafka `BaseConsumer` (created inside the timing,
//! as `assign` creates its clients) reads the same 100,000-record partition to its end:
//! the physical limit of a cold relocation.
//!
//! Only `assign` (or the raw read) is timed, with `iter_custom`; building the instance,
//! catching the standby up and writing the churn are not.
//!
//! Needs a broker: `scripts/kafka.sh start single`, then
//! `cargo bench -p benches --bench relocation --profile dev -- --noplot`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_memory::MemorySupplier;
use backend_rocksdb::RocksDbSupplier;
use benches::kafka::{bootstrap, runtime};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use state_core::{
    AfterRevoke, Partition, RestoreSummary, Serdes, StoreBuilder, StoreContext, StoreHandle,
    StoreManager, changelog_topic_name,
};
use tempfile::TempDir;

/// Distinct keys in the partition.
const KEYS: usize = 100_000;
/// Keys per writer commit while loading.
const LOAD_BATCH: usize = 10_000;
/// Updates written between catch-up (or revoke) and the timed assign: 1% of the keys.
const CHURN: usize = 1_000;
const STORE: &str = "customers";
const PARTITION: Partition = 0;
/// Short enough for the default 500 ms reader poll timeout to show if it is ever waited on.
const FAST_POLL: Duration = Duration::from_millis(50);

/// One instance's store manager and the handle of its one store.
struct Manager {
    stores: Arc<StoreManager>,
    customers: StoreHandle<String, f64>,
}

impl Manager {
    async fn assign(&self) -> RestoreSummary {
        let (_, restored) = self.stores.assign_all(&[PARTITION]).await.pop().unwrap();
        let restores = restored.unwrap().expect("assigned");
        restores[STORE]
            .clone()
            .expect("a logged store reports its restore")
    }

    async fn close(&self) -> state_core::Result<()> {
        self.stores.close().await
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn customer(i: usize) -> String {
    format!("customer-{i:06}")
}

#[derive(Clone, Copy)]
enum Backend {
    Memory,
    RocksDb,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::RocksDb => "rocksdb",
        }
    }

    fn builder(self) -> StoreBuilder<String, f64> {
        match self {
            Backend::Memory => {
                StoreBuilder::new(MemorySupplier::new(STORE), Serdes::string(), Serdes::f64())
            }
            Backend::RocksDb => {
                StoreBuilder::new(RocksDbSupplier::new(STORE), Serdes::string(), Serdes::f64())
            }
        }
    }
}

/// One instance of the application: its own Kafka clients and state directory.
fn instance(backend: Backend, app: &str, dir: &TempDir, poll_timeout: Option<Duration>) -> Manager {
    let mut config = KafkaChangelogConfig::new(bootstrap());
    if let Some(timeout) = poll_timeout {
        config = config.with_poll_timeout(timeout);
    }
    let changelog = Arc::new(KafkaChangelog::new(config).unwrap());
    let context = StoreContext::new(app, PARTITION, 1, dir.path())
        .unwrap()
        .with_changelog(changelog);
    let mut stores = StoreManager::new(context);
    let customers = stores.add_store(backend.builder()).unwrap();
    Manager {
        stores: Arc::new(stores),
        customers,
    }
}

/// The instance that owns the partition while the others are away: it loads the keys
/// and writes the churn, committing each time.
struct Writer {
    manager: Manager,
    _dir: TempDir,
    round: usize,
}

impl Writer {
    async fn load(app: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let manager = instance(Backend::Memory, app, &dir, None);
        manager.assign().await;
        let writer = Self {
            manager,
            _dir: dir,
            round: 0,
        };
        for start in (0..KEYS).step_by(LOAD_BATCH) {
            writer
                .write(start..(start + LOAD_BATCH).min(KEYS), 0.0)
                .await;
        }
        writer
    }

    /// Rewrites the next `CHURN` keys with a new value and commits; returns one rewritten
    /// key and its value, to check the relocated store against.
    async fn churn(&mut self) -> (String, f64) {
        self.round += 1;
        let start = (self.round * CHURN) % KEYS;
        let value = self.round as f64;
        self.write(start..start + CHURN, value).await;
        (customer(start), value)
    }

    async fn write(&self, keys: std::ops::Range<usize>, value: f64) {
        {
            let partition = self.manager.stores.active(PARTITION).await.unwrap();
            let store = partition.store(&self.manager.customers).unwrap();
            for i in keys {
                store.put(&customer(i), &(i as f64 + value)).unwrap();
            }
        }
        self.manager.stores.commit().await.unwrap();
    }
}

/// Times the assignment of the partition alone.
async fn timed_assign(manager: &Manager) -> (Duration, RestoreSummary) {
    let start = Instant::now();
    let summary = manager.assign().await;
    (start.elapsed(), summary)
}

fn check_value(manager: &Manager, rt: &tokio::runtime::Runtime, (key, value): &(String, f64)) {
    let expected = key.trim_start_matches("customer-").parse::<f64>().unwrap() + value;
    let partition = rt.block_on(manager.stores.active(PARTITION)).unwrap();
    let store = partition.store(&manager.customers).unwrap();
    assert_eq!(store.get(key).unwrap(), Some(expected), "relocated {key}");
}

fn small_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    // Flat sampling with one iteration per sample: ten relocations per benchmark.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    group
}

fn raw_consume_to_end(topic: &str, records: usize) -> Duration {
    let start = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("relocation-raw-{}", nanos()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, PARTITION, Offset::Offset(0))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0usize;
    while seen < records {
        assert!(Instant::now() < deadline, "raw consumer stalled at {seen}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            message.unwrap();
            seen += 1;
        }
    }
    start.elapsed()
}

fn cold(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    app: &str,
    backend: Backend,
) {
    group.bench_function(backend.label(), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let manager = instance(backend, app, &dir, None);
                let (elapsed, summary) = rt.block_on(timed_assign(&manager));
                assert_eq!(summary.restored as usize, KEYS, "cold restore");
                total += elapsed;
                rt.block_on(manager.close()).unwrap();
            }
            total
        })
    });
}

fn standby(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    app: &str,
    writer: &mut Writer,
    backend: Backend,
    poll_timeout: Option<Duration>,
) {
    let name = match poll_timeout {
        Some(timeout) => format!("{}_poll_{}ms", backend.label(), timeout.as_millis()),
        None => backend.label().to_owned(),
    };
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let manager = instance(backend, app, &dir, poll_timeout);
                let (elapsed, summary, changed) = rt.block_on(async {
                    manager
                        .stores
                        .set_standbys(&[PARTITION].into())
                        .await
                        .unwrap();
                    catch_up(&manager).await;
                    let changed = writer.churn().await;
                    let (elapsed, summary) = timed_assign(&manager).await;
                    (elapsed, summary, changed)
                });
                assert_eq!(summary.restored as usize, CHURN, "standby promotion replay");
                check_value(&manager, rt, &changed);
                total += elapsed;
                rt.block_on(manager.close()).unwrap();
            }
            total
        })
    });
}

/// Updates the standby until it reports no lag.
async fn catch_up(manager: &Manager) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        manager.stores.update_standbys().await.unwrap();
        let lags = manager.stores.standby_lags().await.unwrap();
        if lags.iter().all(|lag| lag.lag == 0) && !lags.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "standby did not catch up: {lags:?}"
        );
    }
}

fn kept_dir(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    app: &str,
    writer: &mut Writer,
) {
    let dir = tempfile::tempdir().unwrap();
    let manager = instance(Backend::RocksDb, app, &dir, None);
    rt.block_on(async {
        manager.assign().await;
        manager
            .stores
            .revoke(&[PARTITION], AfterRevoke::Close)
            .await
            .unwrap();
    });
    group.bench_function(Backend::RocksDb.label(), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let changed = rt.block_on(writer.churn());
                let (elapsed, summary) = rt.block_on(timed_assign(&manager));
                assert_eq!(summary.restored as usize, CHURN, "kept directory replay");
                assert!(summary.wiped.is_none(), "kept directory was wiped");
                check_value(&manager, rt, &changed);
                total += elapsed;
                rt.block_on(manager.stores.revoke(&[PARTITION], AfterRevoke::Close))
                    .unwrap();
            }
            total
        })
    });
    rt.block_on(manager.close()).unwrap();
}

fn relocation(c: &mut Criterion) {
    let rt = runtime();
    let app = format!("relocation-bench-{}", nanos());
    let topic = changelog_topic_name(&app, STORE);
    let mut writer = rt.block_on(Writer::load(&app));

    // Cold first: the partition then holds exactly the KEYS loaded records.
    let mut group = small_group(c, "relocation/cold");
    group.bench_function("raw_rdkafka_consume_to_end", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw_consume_to_end(&topic, KEYS)).sum())
    });
    cold(&mut group, &rt, &app, Backend::Memory);
    cold(&mut group, &rt, &app, Backend::RocksDb);
    group.finish();

    let mut group = small_group(c, "relocation/standby");
    for backend in [Backend::Memory, Backend::RocksDb] {
        standby(&mut group, &rt, &app, &mut writer, backend, None);
        standby(&mut group, &rt, &app, &mut writer, backend, Some(FAST_POLL));
    }
    group.finish();

    let mut group = small_group(c, "relocation/kept_dir");
    kept_dir(&mut group, &rt, &app, &mut writer);
    group.finish();

    rt.block_on(writer.manager.close()).unwrap();
}

criterion_group!(benches, relocation);
criterion_main!(benches);
