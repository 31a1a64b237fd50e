//! Writes with logging disabled against the same writes logged, per backend, in one run:
//! 1,000,000 puts of `customer-N` -> f64 (what Kafka Streams' `Serdes.String()` /
//! `Serdes.Double()` write) through a typed store, then `commit`.
//!
//! - `logged`: every put also goes to an in-process changelog (no network, so the two
//!   sides differ only in the store path); the store gets one batch at commit.
//! - `unlogged`: no changelog; the writes wait in memory and the store gets them as one
//!   batch at commit, as the logged ones do (before 2026-12-06 each put was a transaction
//!   of the backend's own, a durable one on redb: 224 s per million in release).
//!
//! `cargo bench -p benches --bench unlogged --profile dev -- --noplot`

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::executor::block_on;
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ByteStore, Changelog, ChangelogSink, KeyValueBytesStoreSupplier, Serdes, SinkOptions,
    TopicSpec, TypedKeyValueStore,
};

const PUTS: usize = 1_000_000;
const TOPIC: &str = "bench-rewards-changelog";

/// A fresh store of `supplier` in its own directory, logged to an in-process changelog
/// when `logged`.
fn fresh(
    supplier: &dyn KeyValueBytesStoreSupplier,
    logged: bool,
) -> (TypedKeyValueStore<String, f64>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = supplier.open(&dir.path().join("store")).unwrap();
    let sink: Option<Arc<dyn ChangelogSink>> = logged.then(|| {
        let changelog = InMemoryChangelog::new();
        let spec = TopicSpec::changelog(TOPIC, 1, &BTreeMap::new());
        block_on(changelog.ensure_topic(&spec)).unwrap();
        block_on(changelog.sink(&SinkOptions::default())).unwrap()
    });
    let bytes = ByteStore::wrap(store, sink.as_ref().map(|sink| (sink, TOPIC)), 0);
    let typed = TypedKeyValueStore::new(
        bytes,
        Arc::new(Serdes::string()),
        Arc::new(Serdes::f64()),
        None,
    );
    (typed, dir)
}

fn puts_then_commit(c: &mut Criterion) {
    let keys: Vec<String> = (0..PUTS).map(|i| format!("customer-{i}")).collect();
    let suppliers: [(&str, Box<dyn KeyValueBytesStoreSupplier>); 3] = [
        (
            "memory",
            Box::new(backend_memory::MemorySupplier::new("rewards")),
        ),
        ("redb", Box::new(backend_redb::RedbSupplier::new("rewards"))),
        (
            "rocksdb",
            Box::new(backend_rocksdb::RocksDbSupplier::new("rewards")),
        ),
    ];
    let mut group = c.benchmark_group("unlogged/1M_puts_then_commit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PUTS as u64));
    for (backend, supplier) in &suppliers {
        for logged in [true, false] {
            let side = if logged { "logged" } else { "unlogged" };
            group.bench_function(format!("{backend}/{side}"), |b| {
                b.iter_batched(
                    || fresh(supplier.as_ref(), logged),
                    |(mut store, dir)| {
                        for (i, key) in keys.iter().enumerate() {
                            store.put(key, &(i as f64)).unwrap();
                        }
                        block_on(store.commit()).unwrap();
                        (store, dir)
                    },
                    BatchSize::PerIteration,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, puts_then_commit);
criterion_main!(benches);
