//! Per backend and operation — get, put, delete, a 100-key range scan, a prefix scan —
//! the statestore `KeyValueStore` next to the raw engine (dashmap / rocksdb / redb) doing
//! the same work in the same run. Groups are `<backend>/<op>`, each with a `statestore`
//! and a `raw` function, so the ratio reads straight off one group.
//!
//! Run: `cargo bench -p benches --bench stores --profile dev -- --noplot`.

use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;

use benches::{PRELOADED, key, raw_rocksdb, value};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use redb::{ReadableDatabase, TableDefinition};
use state_core::{KeyRange, KeyValueBytesStoreSupplier, KeyValueStore, WriteBatch};

const RAW_TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("data");

/// The operations measured, implemented once over statestore and once over each engine.
trait Ops {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&self, key: &[u8], value: &[u8]);
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// The first 100 entries from `start` on, in key order.
    fn range_100(&self, start: &[u8]) -> usize;
    /// Every entry whose key starts with `prefix`.
    fn prefix(&self, prefix: &[u8]) -> usize;
}

struct Statestore(Arc<dyn KeyValueStore>);

impl Ops for Statestore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).unwrap()
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.put(key, value).unwrap()
    }
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.delete(key).unwrap()
    }
    fn range_100(&self, start: &[u8]) -> usize {
        let range = KeyRange::new(Bound::Included(start.to_vec()), Bound::Unbounded);
        self.0.range(&range).unwrap().take(100).count()
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        self.0.prefix_scan(prefix).unwrap().count()
    }
}

struct RawDashMap(dashmap::DashMap<Vec<u8>, Vec<u8>>);

impl Ops for RawDashMap {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).map(|v| v.clone())
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.insert(key.to_vec(), value.to_vec());
    }
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.remove(key).map(|(_, v)| v)
    }
    // dashmap has no order: a range is a filtered pass plus a sort, as any user would do.
    fn range_100(&self, start: &[u8]) -> usize {
        let mut hits: Vec<(Vec<u8>, Vec<u8>)> = self
            .0
            .iter()
            .filter(|e| e.key().as_slice() >= start)
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        hits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        hits.into_iter().take(100).count()
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        let mut hits: Vec<(Vec<u8>, Vec<u8>)> = self
            .0
            .iter()
            .filter(|e| e.key().starts_with(prefix))
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        hits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        hits.len()
    }
}

struct RawRocksDb {
    db: rocksdb::DB,
    write: rocksdb::WriteOptions,
}

impl Ops for RawRocksDb {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.db.get(key).unwrap()
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.db.put_opt(key, value, &self.write).unwrap()
    }
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>> {
        // The same read-then-delete the store does to return the old value.
        let old = self.db.get(key).unwrap();
        self.db.delete_opt(key, &self.write).unwrap();
        old
    }
    fn range_100(&self, start: &[u8]) -> usize {
        let mut options = rocksdb::ReadOptions::default();
        options.set_iterate_lower_bound(start.to_vec());
        self.db
            .iterator_opt(rocksdb::IteratorMode::Start, options)
            .take(100)
            .map(|r| r.unwrap())
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        let mut options = rocksdb::ReadOptions::default();
        options.set_iterate_range(rocksdb::PrefixRange(prefix.to_vec()));
        self.db
            .iterator_opt(rocksdb::IteratorMode::Start, options)
            .map(|r| r.unwrap())
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
}

struct RawRedb(redb::Database);

impl Ops for RawRedb {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let read = self.0.begin_read().unwrap();
        let table = read.open_table(RAW_TABLE).unwrap();
        table.get(key).unwrap().map(|v| v.value().to_vec())
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        let txn = self.0.begin_write().unwrap();
        txn.open_table(RAW_TABLE)
            .unwrap()
            .insert(key, value)
            .unwrap();
        txn.commit().unwrap()
    }
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>> {
        let txn = self.0.begin_write().unwrap();
        let old = txn
            .open_table(RAW_TABLE)
            .unwrap()
            .remove(key)
            .unwrap()
            .map(|v| v.value().to_vec());
        txn.commit().unwrap();
        old
    }
    fn range_100(&self, start: &[u8]) -> usize {
        let read = self.0.begin_read().unwrap();
        let table = read.open_table(RAW_TABLE).unwrap();
        table
            .range::<&[u8]>(start..)
            .unwrap()
            .take(100)
            .map(|r| owned(r.unwrap()))
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        let read = self.0.begin_read().unwrap();
        let table = read.open_table(RAW_TABLE).unwrap();
        let range = match state_core::store::prefix_successor(prefix) {
            Some(end) => table.range::<&[u8]>(prefix..end.as_slice()),
            None => table.range::<&[u8]>(prefix..),
        };
        range
            .unwrap()
            .map(|r| owned(r.unwrap()))
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
}

/// Copies a redb entry out, as the statestore iterator hands out owned bytes.
fn owned(
    (key, value): (redb::AccessGuard<'_, &[u8]>, redb::AccessGuard<'_, &[u8]>),
) -> (Vec<u8>, Vec<u8>) {
    (key.value().to_vec(), value.value().to_vec())
}

fn preload(ops: &dyn Ops) {
    for i in 0..PRELOADED {
        ops.put(&key(i), &value(i));
    }
}

fn preload_store(store: &dyn KeyValueStore) {
    for chunk in (0..PRELOADED).collect::<Vec<_>>().chunks(10_000) {
        let mut batch = WriteBatch::with_capacity(chunk.len());
        for &i in chunk {
            batch.put(key(i), value(i));
        }
        store.write(&batch).unwrap();
    }
    store.flush().unwrap();
}

/// Benchmarks every operation on both sides, grouped per operation.
fn compare(c: &mut Criterion, backend: &str, sides: [(&str, &dyn Ops); 2]) {
    let next = |i: &mut usize| {
        *i = (*i + 7919) % PRELOADED;
        *i
    };
    let mut group = c.benchmark_group(format!("{backend}/get"));
    for (name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| b.iter(|| black_box(ops.get(&key(next(&mut i))))));
    }
    group.finish();
    // Puts overwrite preloaded keys (a state store mostly updates aggregates), so the
    // size stays constant and later scans see the same data.
    let mut group = c.benchmark_group(format!("{backend}/put"));
    for (name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let n = next(&mut i);
                ops.put(&key(n), &value(n + 1))
            })
        });
    }
    group.finish();
    // Each delete is followed by re-inserting the key (outside the timing) so the size
    // stays constant.
    let mut group = c.benchmark_group(format!("{backend}/delete"));
    for (name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter_batched(
                || next(&mut i),
                |n| {
                    let old = black_box(ops.delete(&key(n)));
                    ops.put(&key(n), &value(n));
                    old
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    let mut group = c.benchmark_group(format!("{backend}/range_100"));
    for (name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| black_box(ops.range_100(&key(next(&mut i)))))
        });
    }
    group.finish();
    // A 2-byte prefix selects ~1.5 of 100k keys: the scan must seek, not walk.
    let mut group = c.benchmark_group(format!("{backend}/prefix_scan"));
    for (name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| black_box(ops.prefix(&key(next(&mut i))[..2])))
        });
    }
    group.finish();
}

fn memory(c: &mut Criterion) {
    let store = backend_memory::MemorySupplier::new("bench")
        .open(std::path::Path::new(""))
        .unwrap();
    preload_store(store.as_ref());
    let raw = RawDashMap(dashmap::DashMap::new());
    preload(&raw);
    compare(
        c,
        "memory",
        [("statestore", &Statestore(store)), ("raw", &raw)],
    );
}

fn rocksdb(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend_rocksdb::RocksDbSupplier::new("bench")
        .open(&dir.path().join("store"))
        .unwrap();
    preload_store(store.as_ref());
    let raw = RawRocksDb {
        db: raw_rocksdb::open(&dir.path().join("raw")),
        write: raw_rocksdb::write_options(),
    };
    preload(&raw);
    raw.db.flush().unwrap();
    compare(
        c,
        "rocksdb",
        [("statestore", &Statestore(store)), ("raw", &raw)],
    );
}

fn redb(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = backend_redb::RedbSupplier::new("bench")
        .open(&dir.path().join("store"))
        .unwrap();
    preload_store(store.as_ref());
    let raw = RawRedb(redb::Database::create(dir.path().join("raw.redb")).unwrap());
    {
        let txn = raw.0.begin_write().unwrap();
        {
            let mut table = txn.open_table(RAW_TABLE).unwrap();
            for i in 0..PRELOADED {
                table
                    .insert(key(i).as_slice(), value(i).as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    compare(
        c,
        "redb",
        [("statestore", &Statestore(store)), ("raw", &raw)],
    );
}

criterion_group! {
    name = stores;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = memory, rocksdb, redb
}
criterion_main!(stores);
