//! Scans, counts and concurrent writes against RocksDB specifics.

mod common;

use std::ops::Bound;
use std::sync::Arc;

use backend_rocksdb::RocksDbConfig;
use common::{entries, open};
use state_core::{KeyRange, KeyValueStore, Position, Result, WriteBatch};

fn collect(iter: state_core::KvIter<'_>) -> Vec<Vec<u8>> {
    iter.map(|item| item.map(|(key, _)| key))
        .collect::<Result<Vec<_>>>()
        .unwrap()
}

#[test]
fn position_is_hidden_from_scans() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &Position::of(0, 3))
        .unwrap();
    store.flush().unwrap();
    assert_eq!(entries(&store), vec![(b"a".to_vec(), b"1".to_vec())]);
    assert_eq!(
        collect(store.prefix_scan(b"pos").unwrap()),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        collect(store.prefix_scan(b"format").unwrap()),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(store.get(b"position").unwrap(), None);
    assert_eq!(
        collect(store.reverse_range(&KeyRange::all()).unwrap()),
        vec![b"a".to_vec()]
    );
}

#[test]
fn prefix_scan_with_ff_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    let keys: Vec<Vec<u8>> = vec![
        vec![0x01],
        vec![0x01, 0xFF],
        vec![0x01, 0xFF, 0x00],
        vec![0x01, 0xFF, 0xFF],
        vec![0x01, 0xFF, 0xFF, 0xFF, 0x07],
        vec![0x02],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
    ];
    for key in &keys {
        store.put(key, b"v").unwrap();
    }
    assert_eq!(
        collect(store.prefix_scan(&[0x01, 0xFF]).unwrap()),
        keys[1..5].to_vec()
    );
    assert_eq!(
        collect(store.prefix_scan(&[0xFF]).unwrap()),
        keys[6..].to_vec()
    );
    assert_eq!(
        collect(store.prefix_scan(&[0xFF, 0xFF]).unwrap()),
        vec![vec![0xFF, 0xFF]]
    );
    assert_eq!(collect(store.prefix_scan(&[]).unwrap()), keys);
    let mut reversed = keys[1..5].to_vec();
    reversed.reverse();
    assert_eq!(
        collect(
            store
                .reverse_range(&KeyRange::prefix(&[0x01, 0xFF]))
                .unwrap()
        ),
        reversed
    );
}

#[test]
fn ranges_honour_every_bound_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    for key in [&b"a"[..], b"b", b"b\x00", b"c", b"d"] {
        store.put(key, b"v").unwrap();
    }
    let keys = |range: KeyRange| collect(store.range(&range).unwrap());
    let rkeys = |range: KeyRange| collect(store.reverse_range(&range).unwrap());
    let v = |ks: &[&[u8]]| ks.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(
        keys(KeyRange::inclusive(b"b".to_vec(), b"c".to_vec())),
        v(&[b"b", b"b\x00", b"c"])
    );
    assert_eq!(
        keys(KeyRange::half_open(b"b".to_vec(), b"c".to_vec())),
        v(&[b"b", b"b\x00"])
    );
    assert_eq!(
        keys(KeyRange::new(
            Bound::Excluded(b"b".to_vec()),
            Bound::Included(b"c".to_vec())
        )),
        v(&[b"b\x00", b"c"])
    );
    assert_eq!(
        keys(KeyRange::new(
            Bound::Excluded(b"b".to_vec()),
            Bound::Unbounded
        )),
        v(&[b"b\x00", b"c", b"d"])
    );
    assert_eq!(
        rkeys(KeyRange::new(
            Bound::Unbounded,
            Bound::Included(b"b".to_vec())
        )),
        v(&[b"b", b"a"])
    );
    assert_eq!(
        keys(KeyRange::inclusive(b"d".to_vec(), b"a".to_vec())),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        rkeys(KeyRange::inclusive(b"d".to_vec(), b"a".to_vec())),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        keys(KeyRange::half_open(b"b".to_vec(), b"b".to_vec())),
        Vec::<Vec<u8>>::new()
    );
}

#[test]
fn approximate_num_entries_tracks_inserts() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    assert_eq!(store.approximate_num_entries().unwrap(), 0);
    for i in 0..500u32 {
        store.put(&i.to_be_bytes(), b"v").unwrap();
    }
    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 1))
        .unwrap();
    store.flush().unwrap();
    // An estimate, but it must not count the metadata column family.
    assert_eq!(store.approximate_num_entries().unwrap(), 500);
}

#[test]
fn put_if_absent_is_atomic_across_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(open(tmp.path(), &RocksDbConfig::default()).unwrap());
    for round in 0..50u32 {
        let key = round.to_be_bytes();
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u8)
                .map(|thread| {
                    let store = Arc::clone(&store);
                    scope.spawn(move || {
                        // A competing plain put must not open a window for two winners.
                        store.put(b"noise", &[thread]).unwrap();
                        store.put_if_absent(&key, &[thread]).unwrap().is_none()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[test]
fn capability_reports_durable_ordered_rocksdb() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    let capability = store.capability();
    assert_eq!(capability.backend, "rocksdb");
    assert!(capability.durable);
    assert!(capability.ordered_index);
    assert_eq!(store.name(), "test");
}
