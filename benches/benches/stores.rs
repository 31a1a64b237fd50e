//! Per backend: get, put, delete, a 100-key range scan and a prefix scan through the
//! statestore `KeyValueStore`, against the raw engine (dashmap / rocksdb / redb) doing the
//! same work in the same run. Run: `cargo bench -p benches --bench stores`.

use std::hint::black_box;
use std::sync::Arc;

use benches::{PRELOADED, key, raw_rocksdb, value};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use redb::{ReadableDatabase, TableDefinition};
use state_core::{KeyRange, KeyValueBytesStoreSupplier, KeyValueStore, WriteBatch};

const RAW_TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("data");

fn preload(store: &dyn KeyValueStore) {
    for chunk in (0..PRELOADED).collect::<Vec<_>>().chunks(10_000) {
        let mut batch = WriteBatch::with_capacity(chunk.len());
        for &i in chunk {
            batch.put(key(i).to_vec(), value(i));
        }
        store.write(&batch).unwrap();
    }
    store.flush().unwrap();
}

fn statestore_ops(c: &mut Criterion, backend: &str, store: Arc<dyn KeyValueStore>) {
    preload(store.as_ref());
    let mut group = c.benchmark_group(format!("{backend}/statestore"));
    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            black_box(store.get(&key(i)).unwrap())
        })
    });
    // Puts overwrite preloaded keys (a state store mostly updates aggregates), so the
    // store keeps its size and later scans see the same data.
    let mut n = 0usize;
    group.bench_function("put", |b| {
        b.iter(|| {
            n = (n + 7919) % PRELOADED;
            store.put(&key(n), &value(n + 1)).unwrap()
        })
    });
    group.bench_function("delete", |b| {
        b.iter_batched(
            || {
                n = (n + 7919) % PRELOADED;
                n
            },
            |k| {
                let old = store.delete(&key(k)).unwrap();
                store.put(&key(k), &value(k)).unwrap();
                black_box(old)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("range_100", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            let start = key(i);
            let count = store
                .range(&KeyRange::new(
                    std::ops::Bound::Included(start.to_vec()),
                    std::ops::Bound::Unbounded,
                ))
                .unwrap()
                .take(100)
                .count();
            black_box(count)
        })
    });
    group.bench_function("prefix_scan", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            // A 2-byte prefix selects ~1.5 of 100k keys: the scan must seek, not walk.
            black_box(store.prefix_scan(&key(i)[..2]).unwrap().count())
        })
    });
    group.finish();
}

fn memory(c: &mut Criterion) {
    let store = backend_memory::MemorySupplier::new("bench")
        .open(std::path::Path::new(""))
        .unwrap();
    statestore_ops(c, "memory", store);

    let raw = dashmap::DashMap::<Vec<u8>, Vec<u8>>::new();
    for i in 0..PRELOADED {
        raw.insert(key(i).to_vec(), value(i));
    }
    let mut group = c.benchmark_group("memory/raw");
    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            black_box(raw.get(key(i).as_slice()).map(|v| v.clone()))
        })
    });
    let mut n = 0usize;
    group.bench_function("put", |b| {
        b.iter(|| {
            n = (n + 7919) % PRELOADED;
            raw.insert(key(n).to_vec(), value(n + 1))
        })
    });
    group.finish();
}

fn rocksdb(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend_rocksdb::RocksDbSupplier::new("bench")
        .open(&dir.path().join("store"))
        .unwrap();
    statestore_ops(c, "rocksdb", store);

    let raw = raw_rocksdb::open(&dir.path().join("raw"));
    let write_options = raw_rocksdb::write_options();
    for i in 0..PRELOADED {
        raw.put_opt(key(i), value(i), &write_options).unwrap();
    }
    raw.flush().unwrap();
    let mut group = c.benchmark_group("rocksdb/raw");
    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            black_box(raw.get(key(i)).unwrap())
        })
    });
    let mut n = 0usize;
    group.bench_function("put", |b| {
        b.iter(|| {
            n = (n + 7919) % PRELOADED;
            raw.put_opt(key(n), value(n + 1), &write_options).unwrap()
        })
    });
    group.finish();
}

fn redb(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend_redb::RedbSupplier::new("bench")
        .open(&dir.path().join("store"))
        .unwrap();
    statestore_ops(c, "redb", store);

    let raw = redb::Database::create(dir.path().join("raw.redb")).unwrap();
    let txn = raw.begin_write().unwrap();
    {
        let mut table = txn.open_table(RAW_TABLE).unwrap();
        for i in 0..PRELOADED {
            table
                .insert(key(i).as_slice(), value(i).as_slice())
                .unwrap();
        }
    }
    txn.commit().unwrap();
    let mut group = c.benchmark_group("redb/raw");
    let mut i = 0usize;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED;
            let read = raw.begin_read().unwrap();
            let table = read.open_table(RAW_TABLE).unwrap();
            black_box(
                table
                    .get(key(i).as_slice())
                    .unwrap()
                    .map(|v| v.value().to_vec()),
            )
        })
    });
    let mut n = 0usize;
    group.bench_function("put", |b| {
        b.iter(|| {
            n = (n + 7919) % PRELOADED;
            let txn = raw.begin_write().unwrap();
            {
                let mut table = txn.open_table(RAW_TABLE).unwrap();
                table
                    .insert(key(n).as_slice(), value(n).as_slice())
                    .unwrap();
            }
            txn.commit().unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = stores;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = memory, rocksdb, redb
}
criterion_main!(stores);
