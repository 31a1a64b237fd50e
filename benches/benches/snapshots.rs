//! What snapshots cost the processing path: 1,000 logged puts and a commit of one
//! partition holding 100,000 keys, with the store manager snapshotting every 10,000
//! committed records (every tenth commit) and every 100,000 (every hundredth) against not
//! snapshotting, per backend. The
//! uploads run on another thread to a local directory (`file://`), as the application's
//! runtime would run them; only the puts and the commit are timed. The changelog is the
//! in-process one, which costs next to nothing, so the snapshots' share of a commit here is
//! larger than on a real broker: the worst case.
//!
//! After each backend's snapshotting case the bench prints the pause the checkpoints added
//! to the commits that took them (`ManagerCommit::snapshot_pause`): p50, p99 and max, and
//! what the last upload sent against what it found already uploaded (RocksDB's SST files
//! are shared between snapshots; the other backends' one file never is).
//!
//! `snapshots_kafka` does the same on a real broker (the changelog is a Kafka topic,
//! `KAFKA_BOOTSTRAP_SERVERS`) with the snapshots uploaded to the S3 server of
//! `scripts/s3.sh` (`S3_ENDPOINT`, `S3_BUCKET` and its credentials in the environment; a
//! local directory without them): each iteration holds exactly one snapshot, 100,000
//! records with a snapshot every 100,000, or 1,000,000 with the default policy's one every
//! 1,000,000 (against iterations of 100,000 records without snapshots: compare the
//! throughputs). It runs only when `KAFKA_BOOTSTRAP_SERVERS` is set.
//!
//! `cargo bench -p benches --bench snapshots --profile dev -- --noplot`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend_memory::MemorySupplier;
use backend_redb::RedbSupplier;
use backend_rocksdb::RocksDbSupplier;
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::snapshot::UploadOutcome;
use state_core::{
    Changelog, KeyValueBytesStoreSupplier, Serdes, SnapshotPolicy, SnapshotScope, SnapshotUploader,
    StoreBuilder, StoreContext, StoreHandle, StoreManager, UploaderConfig,
};
use tempfile::TempDir;

/// Keys the partition holds.
const KEYS: usize = 100_000;
/// Puts per commit.
const PUTS: usize = 1_000;

struct Bench {
    runtime: tokio::runtime::Runtime,
    manager: Arc<StoreManager>,
    store: StoreHandle<Vec<u8>, Vec<u8>>,
    uploader: Option<SnapshotUploader>,
    next: usize,
    pauses: Arc<Mutex<Vec<Duration>>>,
    application: String,
    _dirs: (TempDir, TempDir),
}

/// Where the changelog is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The in-process changelog, which costs next to nothing.
    InProcess,
    /// A topic on the broker of `KAFKA_BOOTSTRAP_SERVERS`.
    Kafka,
}

/// Builds the snapshot store's options from its config.
type S3Options = Box<dyn Fn(SnapshotStoreConfig) -> UrlOptions>;

/// A fresh prefix of the S3 server's bucket and the options to reach it, when
/// `scripts/s3.sh`'s variables are set.
fn s3() -> Option<(String, S3Options)> {
    let var = |name: &str| std::env::var(name).ok();
    let endpoint = var("S3_ENDPOINT")?;
    let bucket = var("S3_BUCKET")?;
    let (key, secret) = (var("AWS_ACCESS_KEY_ID")?, var("AWS_SECRET_ACCESS_KEY")?);
    let region = var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned());
    let url = format!("s3://{bucket}/{}", benches::kafka::unique("snapshots"));
    let options = move |config| {
        UrlOptions::new(config)
            .with_endpoint(endpoint.clone())
            .with_option("access_key_id", key.clone())
            .with_option("secret_access_key", secret.clone())
            .with_option("region", region.clone())
    };
    Some((url, Box::new(options)))
}

impl Bench {
    fn new(
        supplier: Arc<dyn KeyValueBytesStoreSupplier>,
        on: On,
        every_records: Option<u64>,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = tempfile::tempdir().unwrap();
        let objects = tempfile::tempdir().unwrap();
        let changelog: Arc<dyn Changelog> = match on {
            On::InProcess => Arc::new(InMemoryChangelog::new()),
            On::Kafka => Arc::new(
                KafkaChangelog::new(KafkaChangelogConfig::new(benches::kafka::bootstrap()))
                    .unwrap(),
            ),
        };
        let application = match on {
            On::InProcess => "bench".to_owned(),
            On::Kafka => benches::kafka::unique("snapshots"),
        };
        let context = StoreContext::new(&application, 0, 1, state.path())
            .unwrap()
            .with_changelog(changelog);
        let mut manager = StoreManager::new(context);
        let uploader = every_records.map(|_| {
            let config = SnapshotStoreConfig::new("bench");
            let store = match (on, s3()) {
                (On::Kafka, Some((url, options))) => {
                    ObjectSnapshotStore::from_url(&url, options(config)).unwrap()
                }
                _ => {
                    let url = format!("file://{}", objects.path().display());
                    ObjectSnapshotStore::from_url(&url, UrlOptions::new(config)).unwrap()
                }
            };
            SnapshotUploader::new(Arc::new(store), UploaderConfig::default())
        });
        if let Some(uploader) = &uploader {
            let policy = SnapshotPolicy {
                every_records,
                every: None,
                on_revoke: false,
                on_close: false,
                keep: 2,
            };
            manager = manager.with_snapshots(policy, uploader.clone());
            runtime.spawn(uploader.run());
        }
        let store = manager
            .add_store(
                StoreBuilder::new(supplier, Serdes::bytes(), Serdes::bytes())
                    .with_logging_enabled(Default::default()),
            )
            .unwrap();
        let mut bench = Self {
            runtime,
            manager: Arc::new(manager),
            store,
            uploader,
            next: 0,
            pauses: Arc::default(),
            application,
            _dirs: (state, objects),
        };
        for (partition, assigned) in bench.runtime.block_on(bench.manager.assign_all(&[0])) {
            assigned.unwrap_or_else(|err| panic!("assigning {partition}: {err}"));
        }
        for _ in 0..KEYS / PUTS {
            bench.round();
        }
        bench.pauses.lock().unwrap().clear();
        bench
    }

    /// 1,000 puts and a commit; returns the time they took.
    fn round(&mut self) -> Duration {
        let started = Instant::now();
        let commit = self.runtime.block_on(async {
            let active = self.manager.active(0).await.unwrap();
            let store = active.store(&self.store).unwrap();
            for _ in 0..PUTS {
                let i = self.next % KEYS;
                self.next += 1;
                store
                    .put(&benches::key(i).to_vec(), &benches::value(self.next))
                    .unwrap();
            }
            drop(store);
            drop(active);
            self.manager.commit().await.unwrap()
        });
        let took = started.elapsed();
        if commit.snapshots > 0 {
            self.pauses.lock().unwrap().push(commit.snapshot_pause);
        }
        took
    }

    fn report(&self, name: &str) {
        let mut pauses = self.pauses.lock().unwrap().clone();
        if pauses.is_empty() {
            return;
        }
        pauses.sort();
        let at = |q: f64| pauses[((pauses.len() - 1) as f64 * q).round() as usize];
        eprintln!(
            "{name}: {} snapshot pauses: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            pauses.len(),
            at(0.5),
            at(0.99),
            pauses[pauses.len() - 1]
        );
        if let Some(uploader) = &self.uploader {
            self.runtime.block_on(uploader.flush()).unwrap();
            let scope = SnapshotScope::new(&self.application, "bench", 0);
            if let Some(UploadOutcome::Uploaded(last)) = uploader.last_outcome(&scope) {
                eprintln!(
                    "{name}: last upload sent {} files ({} bytes), found {} files ({} bytes) already uploaded",
                    last.files_uploaded, last.bytes_uploaded, last.files_reused, last.bytes_reused
                );
            }
        }
    }
}

/// A backend's supplier for the bench's store.
type MakeSupplier = fn() -> Arc<dyn KeyValueBytesStoreSupplier>;

fn snapshots(c: &mut Criterion) {
    let backends: [(&str, MakeSupplier); 3] = [
        ("memory", || Arc::new(MemorySupplier::new("bench"))),
        ("rocksdb", || Arc::new(RocksDbSupplier::new("bench"))),
        ("redb", || Arc::new(RedbSupplier::new("bench"))),
    ];
    let mut group = c.benchmark_group("snapshots");
    group.sample_size(30);
    for (name, supplier) in backends {
        for (policy, every_records) in [
            ("off", None),
            ("every_10k_records", Some(10_000)),
            ("every_100k_records", Some(100_000)),
        ] {
            let mut bench = Bench::new(supplier(), On::InProcess, every_records);
            let id = format!("{name}/{policy}");
            group.bench_function(&id, |b| {
                b.iter_custom(|iterations| (0..iterations).map(|_| bench.round()).sum());
            });
            bench.report(&format!("snapshots/{id}"));
        }
    }
    group.finish();
}

/// On a broker: each policy with the rounds of one iteration, which hold exactly one
/// snapshot when snapshots are on (every 100,000 records, and the default policy's
/// every 1,000,000). "off" runs iterations of 100,000 records; compare the throughputs.
const KAFKA_POLICIES: [(&str, Option<u64>, usize); 3] = [
    ("off", None, 100),
    ("every_100k_records", Some(100_000), 100),
    ("every_1m_records", Some(1_000_000), 1_000),
];

fn snapshots_kafka(c: &mut Criterion) {
    if std::env::var_os("KAFKA_BOOTSTRAP_SERVERS").is_none() {
        eprintln!("snapshots_kafka: KAFKA_BOOTSTRAP_SERVERS is not set; skipped");
        return;
    }
    let backends: [(&str, MakeSupplier); 3] = [
        ("memory", || Arc::new(MemorySupplier::new("bench"))),
        ("rocksdb", || Arc::new(RocksDbSupplier::new("bench"))),
        ("redb", || Arc::new(RedbSupplier::new("bench"))),
    ];
    let mut group = c.benchmark_group("snapshots_kafka");
    group.sample_size(10);
    for (name, supplier) in backends {
        for (policy, every_records, rounds) in KAFKA_POLICIES {
            let mut bench = Bench::new(supplier(), On::Kafka, every_records);
            let id = format!("{name}/{policy}");
            group.throughput(Throughput::Elements((rounds * PUTS) as u64));
            group.bench_function(&id, |b| {
                b.iter_custom(|iterations| {
                    (0..iterations as usize * rounds)
                        .map(|_| bench.round())
                        .sum()
                });
            });
            bench.report(&format!("snapshots_kafka/{id}"));
        }
    }
    group.finish();
}

criterion_group!(benches, snapshots, snapshots_kafka);
criterion_main!(benches);
