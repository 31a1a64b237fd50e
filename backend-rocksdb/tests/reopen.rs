//! Durability across reopen, clean or not.

mod common;

use backend_rocksdb::RocksDbConfig;
use common::{entries, open};
use state_core::{KeyValueStore, Position, WriteBatch};

fn batch(pairs: &[(&str, &str)]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (key, value) in pairs {
        batch.put(key.as_bytes(), value.as_bytes());
    }
    batch
}

#[test]
fn reopen_after_close_keeps_data_and_position() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let config = RocksDbConfig::default();
    {
        let store = open(&dir, &config).unwrap();
        store
            .write_with_position(&batch(&[("a", "1"), ("b", "2")]), &Position::of(0, 41))
            .unwrap();
        store.put(b"c", b"3").unwrap();
        store.delete(b"a").unwrap();
        store.close().unwrap();
    }
    let store = open(&dir, &config).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 41));
    assert_eq!(
        entries(&store),
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
}

#[test]
fn use_after_close_is_a_closed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path(), &RocksDbConfig::default()).unwrap();
    store.close().unwrap();
    store.close().unwrap();
    store.flush().unwrap();
    let err = store.put(b"k", b"v").unwrap_err();
    assert_eq!(err.kind(), state_core::ErrorKind::Closed);
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        store.get(b"k").unwrap_err().kind(),
        state_core::ErrorKind::Closed
    );
}

#[test]
fn drop_without_close_keeps_data_and_position_in_agreement() {
    for wal in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let config = RocksDbConfig::default().with_wal_enabled(wal);
        {
            let store = open(tmp.path(), &config).unwrap();
            store
                .write_with_position(&batch(&[("k", "old")]), &Position::of(0, 1))
                .unwrap();
            store.flush().unwrap();
            store
                .write_with_position(&batch(&[("k", "new")]), &Position::of(0, 2))
                .unwrap();
            // Dropped without close.
        }
        let store = open(tmp.path(), &config).unwrap();
        let value = store.get(b"k").unwrap();
        let position = store.position().unwrap();
        match position.applied(0) {
            Some(1) => assert_eq!(value.as_deref(), Some(&b"old"[..]), "wal={wal}"),
            Some(2) => assert_eq!(value.as_deref(), Some(&b"new"[..]), "wal={wal}"),
            other => panic!("wal={wal}: unexpected position {other:?}"),
        }
    }
}

#[test]
fn write_with_position_keeps_partitions_it_does_not_mention() {
    let tmp = tempfile::tempdir().unwrap();
    let config = RocksDbConfig::default();
    {
        let store = open(tmp.path(), &config).unwrap();
        assert_eq!(store.position().unwrap(), Position::empty());
        store
            .write_with_position(&WriteBatch::new(), &[(0, 5), (1, 9)].into_iter().collect())
            .unwrap();
        store
            .write_with_position(&batch(&[("x", "y")]), &Position::of(1, 12))
            .unwrap();
        store.close().unwrap();
    }
    let store = open(tmp.path(), &config).unwrap();
    assert_eq!(
        store.position().unwrap(),
        [(0, 5), (1, 12)].into_iter().collect()
    );
}

#[test]
fn wipe_clears_data_and_position_durably() {
    let tmp = tempfile::tempdir().unwrap();
    let config = RocksDbConfig::default();
    {
        let store = open(tmp.path(), &config).unwrap();
        store
            .write_with_position(
                &batch(&[("", "empty key"), ("a", "1"), ("zz", "2")]),
                &Position::of(3, 7),
            )
            .unwrap();
        store.put(&[0xFF, 0xFF, 0xFF], b"high").unwrap();
        store.flush().unwrap();
        store.wipe().unwrap();
        assert!(entries(&store).is_empty());
        assert_eq!(store.position().unwrap(), Position::empty());
        store.put(b"after", b"wipe").unwrap();
        // Dropped without close: wipe itself must have been made durable.
    }
    let store = open(tmp.path(), &config).unwrap();
    assert_eq!(store.position().unwrap(), Position::empty());
    let left = entries(&store);
    assert!(
        left.is_empty() || left == vec![(b"after".to_vec(), b"wipe".to_vec())],
        "{left:?}"
    );
}

#[test]
fn bulk_loading_round_trip_flushes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = RocksDbConfig::default().with_wal_enabled(true);
    {
        let store = open(tmp.path(), &config).unwrap();
        store.set_bulk_loading(true).unwrap();
        for i in 0..1000u32 {
            store
                .write_with_position(
                    &batch(&[(&format!("k{i:04}"), "v")]),
                    &Position::of(0, i64::from(i)),
                )
                .unwrap();
        }
        store.set_bulk_loading(false).unwrap();
        // Dropped without close: ending bulk loading made everything durable.
    }
    let store = open(tmp.path(), &config).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 999));
    assert_eq!(entries(&store).len(), 1000);
}
