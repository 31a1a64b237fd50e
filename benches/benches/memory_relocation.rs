//! Relocation of a memory store by snapshot against its full replay, on a real broker and
//! the S3 server, at three sizes (`BENCHMARKS.md`, issue 23). The command line cannot
//! snapshot a memory store (it keeps nothing on disk), so `scripts/restore-bench.py`
//! leaves it out; this does the same steps through the library:
//!
//! 1. produces 99% of N records over K keys (String keys `customer-N`, 8-byte values, as
//!    `restore-bench.py` writes them) into a one-partition topic;
//! 2. restores them into a memory store, checkpoints it and uploads the snapshot;
//! 3. produces the last 1%;
//! 4. relocates cold, each into a new memory store: a full replay, then the newest
//!    snapshot plus the 1% tail (download, every checksum, open, tail), and checks both
//!    hold the same entries.
//!
//! One round per size: the sizes take minutes. Not a criterion benchmark for that reason;
//! it prints a table.
//!
//! `scripts/kafka.sh start single`, `eval "$(scripts/s3.sh env)"`, then
//! `cargo bench -p benches --bench memory_relocation --profile dev` (sizes from
//! `STATESTORE_BENCH_SIZES`, default `2000000:1000000,6000000:3000000,20000000:10000000`,
//! as `records:keys` pairs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backend_memory::MemorySupplier;
use benches::kafka::{bootstrap, runtime, send_when_room, unique};
use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig, KafkaReader};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use snapshot_object_store::{ObjectSnapshotStore, SnapshotStoreConfig, UrlOptions};
use state_core::{
    Changelog, IsolationLevel, KeyValueBytesStoreSupplier, KeyValueStore, NoopRestoreListener,
    RestoreOptions, RestoreSummary, SnapshotScope, SnapshotStore, StoreHome, TopicSpec, catch_up,
};

const APPLICATION: &str = "bench";
const STORE: &str = "bench";

fn main() {
    let sizes = std::env::var("STATESTORE_BENCH_SIZES")
        .unwrap_or_else(|_| "2000000:1000000,6000000:3000000,20000000:10000000".to_owned());
    let rt = runtime();
    let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap())).unwrap();
    let snapshots = snapshot_store();
    println!(
        "| records / keys | full replay | snapshot + 1% tail | download | open | tail | snapshot bytes | vs full replay |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for size in sizes.split(',') {
        let (records, keys) = size
            .split_once(':')
            .and_then(|(r, k)| Some((r.parse::<usize>().ok()?, k.parse::<usize>().ok()?)))
            .unwrap_or_else(|| panic!("STATESTORE_BENCH_SIZES: {size:?} is not records:keys"));
        run(&rt, &changelog, &snapshots, records, keys);
    }
}

/// The S3 server of `scripts/s3.sh` from its exports.
fn snapshot_store() -> Arc<dyn SnapshotStore> {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: eval \"$(scripts/s3.sh env)\""))
    };
    let url = format!("s3://{}/{}", var("S3_BUCKET"), unique("memory-relocation"));
    let options = UrlOptions::new(SnapshotStoreConfig::new("bench"))
        .with_endpoint(var("S3_ENDPOINT"))
        .with_option("access_key_id", var("AWS_ACCESS_KEY_ID"))
        .with_option("secret_access_key", var("AWS_SECRET_ACCESS_KEY"))
        .with_option("region", var("AWS_REGION"));
    Arc::new(ObjectSnapshotStore::from_url(&url, options).unwrap())
}

fn run(
    rt: &tokio::runtime::Runtime,
    changelog: &KafkaChangelog,
    snapshots: &Arc<dyn SnapshotStore>,
    records: usize,
    keys: usize,
) {
    let topic = unique("memory-relocation");
    rt.block_on(changelog.ensure_topic(&TopicSpec::changelog(&topic, 1, &BTreeMap::new())))
        .unwrap();
    let head = records - records / 100;
    produce(&topic, 0..head, keys);
    let reader = changelog
        .kafka_reader(&topic, IsolationLevel::ReadUncommitted)
        .unwrap();
    let supplier = MemorySupplier::new(STORE);
    let scratch = tempfile::tempdir().unwrap();

    // The owner: the head restored, checkpointed and uploaded.
    let (owner, _) = relocate(rt, &supplier, &reader, scratch.path(), None);
    let checkpoint = owner
        .checkpoint(&scratch.path().join("checkpoint"))
        .unwrap();
    let scope = SnapshotScope::new(APPLICATION, STORE, 0);
    let uploaded = rt.block_on(snapshots.upload(&scope, &checkpoint)).unwrap();
    std::fs::remove_dir_all(&checkpoint.dir).unwrap();
    drop(owner);
    produce(&topic, head..records, keys);

    let (replayed, full) = relocate(rt, &supplier, &reader, scratch.path(), None);
    let replayed_entries = replayed.approximate_num_entries().unwrap();
    drop(replayed);
    let (relocated, by_snapshot) =
        relocate(rt, &supplier, &reader, scratch.path(), Some(snapshots));
    assert_eq!(full.restored as usize, records);
    let snapshot = by_snapshot.snapshot.as_ref().unwrap_or_else(|| {
        panic!("the relocation did not start from the snapshot: {by_snapshot:?}")
    });
    assert_eq!(by_snapshot.restored as usize, records - head);
    assert_eq!(
        relocated.approximate_num_entries().unwrap(),
        replayed_entries
    );
    let download_open = snapshot.download.elapsed + snapshot.open;
    println!(
        "| {records} / {keys} | {:.2} s | **{:.2} s** | {:.2} s | {:.2} s | {:.2} s | {:.1} MiB | {:.1}x |",
        secs(full.elapsed),
        secs(by_snapshot.elapsed),
        secs(snapshot.download.elapsed),
        secs(snapshot.open),
        secs(by_snapshot.elapsed.saturating_sub(download_open)),
        uploaded.bytes_uploaded as f64 / (1024.0 * 1024.0),
        secs(full.elapsed) / secs(by_snapshot.elapsed)
    );
}

/// A new memory store restored from the changelog, from the newest snapshot when
/// `snapshots` is given.
fn relocate(
    rt: &tokio::runtime::Runtime,
    supplier: &MemorySupplier,
    reader: &KafkaReader,
    scratch: &std::path::Path,
    snapshots: Option<&Arc<dyn SnapshotStore>>,
) -> (Arc<dyn KeyValueStore>, RestoreSummary) {
    let dir = scratch.join(unique("store"));
    let options = RestoreOptions {
        snapshots: snapshots.cloned(),
        ..RestoreOptions::default()
    };
    let home = StoreHome {
        application: APPLICATION,
        supplier,
        dir: &dir,
    };
    let opened = (supplier.open(&dir).unwrap(), None);
    rt.block_on(catch_up(
        opened,
        snapshots.map(|_| home),
        reader,
        0,
        &options,
        &NoopRestoreListener,
    ))
    .unwrap()
}

fn produce(topic: &str, range: std::ops::Range<usize>, keys: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "262144")
        .create()
        .unwrap();
    for i in range {
        let key = format!("customer-{}", i % keys);
        let value = (i as f64).to_be_bytes();
        send_when_room(
            &producer,
            BaseRecord::to(topic)
                .key(key.as_bytes())
                .payload(&value[..]),
        );
    }
    producer.flush(Duration::from_secs(300)).unwrap();
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
