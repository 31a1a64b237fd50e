//! Per backend and operation — get, put, delete, a range holding 100 keys in either
//! direction, the first 100 keys of an open-ended range, a prefix scan — the statestore
//! `KeyValueStore` next to the raw engine (dashmap / rocksdb / redb) doing the same work
//! in the same run, and for the memory backend a `BTreeMap` behind a `RwLock` too, the
//! ordered map a scan-heavy in-memory store is measured against. Groups are
//! `<backend>/<op>`, each with a `statestore` and a `raw` function (and `btree`), so the
//! ratio reads straight off one group.
//!
//! Run: `cargo bench -p benches --bench stores --profile dev -- --noplot`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ops::Bound;
use std::sync::{Arc, RwLock};

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
    /// Every entry from `from` to `to`, both included, in key order.
    fn range(&self, from: &[u8], to: &[u8]) -> usize;
    /// Every entry from `from` to `to`, both included, in descending key order.
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize;
    /// The first 100 entries from `start` on, in key order: an open-ended range the
    /// reader stops early.
    fn range_from_take_100(&self, start: &[u8]) -> usize;
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
    fn range(&self, from: &[u8], to: &[u8]) -> usize {
        self.0
            .range(&KeyRange::inclusive(from, to))
            .unwrap()
            .fold(0, |n, entry| {
                black_box(entry.unwrap());
                n + 1
            })
    }
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize {
        self.0
            .reverse_range(&KeyRange::inclusive(from, to))
            .unwrap()
            .fold(0, |n, entry| {
                black_box(entry.unwrap());
                n + 1
            })
    }
    fn range_from_take_100(&self, start: &[u8]) -> usize {
        let range = KeyRange::new(Bound::Included(start.to_vec()), Bound::Unbounded);
        self.0.range(&range).unwrap().take(100).count()
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        self.0.prefix_scan(prefix).unwrap().count()
    }
}

/// The ordered map an in-memory store's scans are held to: a `BTreeMap` behind a
/// `RwLock`, entries cloned out as the store hands out owned bytes.
struct RawBTreeMap(RwLock<BTreeMap<Vec<u8>, Vec<u8>>>);

impl RawBTreeMap {
    fn owned_count<'a>(entries: impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>) -> usize {
        entries.fold(0, |n, (k, v)| {
            black_box((k.clone(), v.clone()));
            n + 1
        })
    }
}

impl Ops for RawBTreeMap {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.read().unwrap().get(key).cloned()
    }
    fn put(&self, key: &[u8], value: &[u8]) {
        self.0.write().unwrap().insert(key.to_vec(), value.to_vec());
    }
    fn delete(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.write().unwrap().remove(key)
    }
    fn range(&self, from: &[u8], to: &[u8]) -> usize {
        let map = self.0.read().unwrap();
        Self::owned_count(map.range::<[u8], _>((Bound::Included(from), Bound::Included(to))))
    }
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize {
        let map = self.0.read().unwrap();
        Self::owned_count(
            map.range::<[u8], _>((Bound::Included(from), Bound::Included(to)))
                .rev(),
        )
    }
    fn range_from_take_100(&self, start: &[u8]) -> usize {
        let map = self.0.read().unwrap();
        Self::owned_count(
            map.range::<[u8], _>((Bound::Included(start), Bound::Unbounded))
                .take(100),
        )
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        let map = self.0.read().unwrap();
        let end = state_core::store::prefix_successor(prefix);
        let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        Self::owned_count(map.range::<[u8], _>((Bound::Included(prefix), end)))
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
    fn range(&self, from: &[u8], to: &[u8]) -> usize {
        self.sorted(|key| key >= from && key <= to).len()
    }
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize {
        let mut hits = self.sorted(|key| key >= from && key <= to);
        hits.reverse();
        hits.len()
    }
    fn range_from_take_100(&self, start: &[u8]) -> usize {
        self.sorted(|key| key >= start)
            .into_iter()
            .take(100)
            .count()
    }
    fn prefix(&self, prefix: &[u8]) -> usize {
        self.sorted(|key| key.starts_with(prefix)).len()
    }
}

impl RawDashMap {
    /// The entries whose key `matches`, cloned and sorted by key.
    fn sorted(&self, matches: impl Fn(&[u8]) -> bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut hits: Vec<(Vec<u8>, Vec<u8>)> = self
            .0
            .iter()
            .filter(|e| matches(e.key()))
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        hits.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        hits
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
    fn range(&self, from: &[u8], to: &[u8]) -> usize {
        self.bounded(from, to, rocksdb::IteratorMode::Start)
    }
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize {
        self.bounded(from, to, rocksdb::IteratorMode::End)
    }
    fn range_from_take_100(&self, start: &[u8]) -> usize {
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

impl RawRocksDb {
    /// Every entry from `from` to `to`, both included, read from the end `mode` names.
    fn bounded(&self, from: &[u8], to: &[u8], mode: rocksdb::IteratorMode<'_>) -> usize {
        let mut options = rocksdb::ReadOptions::default();
        options.set_iterate_lower_bound(from.to_vec());
        // RocksDB's upper bound is exclusive; `to ++ [0]` is the next key after `to`.
        options.set_iterate_upper_bound([to, &[0]].concat());
        self.db
            .iterator_opt(mode, options)
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
    fn range(&self, from: &[u8], to: &[u8]) -> usize {
        let read = self.0.begin_read().unwrap();
        let table = read.open_table(RAW_TABLE).unwrap();
        table
            .range::<&[u8]>(from..=to)
            .unwrap()
            .map(|r| owned(r.unwrap()))
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
    fn reverse_range(&self, from: &[u8], to: &[u8]) -> usize {
        let read = self.0.begin_read().unwrap();
        let table = read.open_table(RAW_TABLE).unwrap();
        table
            .range::<&[u8]>(from..=to)
            .unwrap()
            .rev()
            .map(|r| owned(r.unwrap()))
            .fold(0, |n, entry| {
                n + usize::from(!black_box(entry).0.is_empty())
            })
    }
    fn range_from_take_100(&self, start: &[u8]) -> usize {
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

/// The preloaded keys in key order, so a range can be chosen to hold exactly 100 keys.
fn sorted_keys() -> Vec<[u8; 16]> {
    let mut keys: Vec<_> = (0..PRELOADED).map(key).collect();
    keys.sort_unstable();
    keys
}

/// Benchmarks every operation on every side, grouped per operation.
fn compare(c: &mut Criterion, backend: &str, sides: &[(&str, &dyn Ops)]) {
    let next = |i: &mut usize| {
        *i = (*i + 7919) % PRELOADED;
        *i
    };
    let sorted = sorted_keys();
    // The first and last key of a range holding 100 keys.
    let window = |i: &mut usize| {
        let first = next(i) % (PRELOADED - 99);
        (&sorted[first], &sorted[first + 99])
    };
    let mut group = c.benchmark_group(format!("{backend}/get"));
    for &(name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| b.iter(|| black_box(ops.get(&key(next(&mut i))))));
    }
    group.finish();
    // Puts overwrite preloaded keys (a state store mostly updates aggregates), so the
    // size stays constant and later scans see the same data.
    let mut group = c.benchmark_group(format!("{backend}/put"));
    for &(name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let n = next(&mut i);
                ops.put(&key(n), &value(n + 1))
            })
        });
    }
    group.finish();
    // Each delete is followed by re-inserting the key (inside the timing) so the size
    // stays constant.
    let mut group = c.benchmark_group(format!("{backend}/delete"));
    for &(name, ops) in sides {
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
    for &(name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let (from, to) = window(&mut i);
                assert_eq!(ops.range(from, to), 100);
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group(format!("{backend}/reverse_range_100"));
    for &(name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let (from, to) = window(&mut i);
                assert_eq!(ops.reverse_range(from, to), 100);
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group(format!("{backend}/range_from_take_100"));
    for &(name, ops) in sides {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| black_box(ops.range_from_take_100(&key(next(&mut i)))))
        });
    }
    group.finish();
    // A 2-byte prefix selects ~1.5 of 100k keys: the scan must seek, not walk.
    let mut group = c.benchmark_group(format!("{backend}/prefix_scan"));
    for &(name, ops) in sides {
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
    let btree = RawBTreeMap(RwLock::new(BTreeMap::new()));
    preload(&btree);
    compare(
        c,
        "memory",
        &[
            ("statestore", &Statestore(store)),
            ("raw", &raw),
            ("btree", &btree),
        ],
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
        &[("statestore", &Statestore(store)), ("raw", &raw)],
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
        &[("statestore", &Statestore(store)), ("raw", &raw)],
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
