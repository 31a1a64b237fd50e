//! Data and position across close, drop and reopen.

mod common;

use backend_redb::{CommitDurability, RedbConfig, RedbStore};
use common::{all, file, open, supplier, supplier_with};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch};
use tempfile::TempDir;

fn batch(from: u32, to: u32) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in from..to {
        batch.put(format!("key-{i:05}"), format!("value-{i}"));
    }
    batch
}

#[test]
fn reopen_after_close_keeps_data_and_position() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    store
        .write_with_position(&batch(0, 100), &Position::of(0, 99))
        .unwrap();
    store.delete(b"key-00007").unwrap();
    store.close().unwrap();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.position().unwrap(), Position::of(0, 99));
    assert_eq!(all(&*store).len(), 99);
    assert_eq!(store.get(b"key-00042").unwrap(), Some(b"value-42".to_vec()));
    assert_eq!(store.get(b"key-00007").unwrap(), None);
}

#[test]
fn drop_without_close_then_reopen_data_and_position_match() {
    for durability in [
        CommitDurability::Immediate,
        CommitDurability::Deferred { immediate_every: 4 },
    ] {
        let dir = TempDir::new().unwrap();
        let supplier = supplier_with(RedbConfig::new().with_durability(durability));
        let store = supplier.open(dir.path()).unwrap();
        for round in 0..10u32 {
            let offset = i64::from(round * 10 + 9);
            store
                .write_with_position(
                    &batch(round * 10, round * 10 + 10),
                    &Position::of(3, offset),
                )
                .unwrap();
        }
        drop(store);

        let store = supplier.open(dir.path()).unwrap();
        let position = store.position().unwrap();
        let applied = position.applied(3).expect("a position was written");
        // Whatever survived, the store holds exactly the records up to its position.
        let count = u32::try_from(applied + 1).unwrap();
        let expected: Vec<_> = (0..count)
            .map(|i| {
                (
                    format!("key-{i:05}").into_bytes(),
                    format!("value-{i}").into_bytes(),
                )
            })
            .collect();
        assert_eq!(all(&*store), expected, "{durability:?}");
    }
}

#[test]
fn write_with_position_keeps_other_partitions() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    assert_eq!(store.position().unwrap(), Position::empty());
    let both: Position = [(0, 5), (1, 7)].into_iter().collect();
    store
        .write_with_position(&WriteBatch::new(), &both)
        .unwrap();
    store
        .write_with_position(&batch(0, 1), &Position::of(1, 9))
        .unwrap();
    let expected: Position = [(0, 5), (1, 9)].into_iter().collect();
    assert_eq!(store.position().unwrap(), expected);
    store.close().unwrap();
    assert_eq!(open(dir.path()).position().unwrap(), expected);
}

#[test]
fn deferred_commits_are_durable_after_flush() {
    let dir = TempDir::new().unwrap();
    let config = RedbConfig::new().with_durability(CommitDurability::Deferred {
        immediate_every: 1000,
    });
    let supplier = supplier_with(config);
    let store = supplier.open(dir.path()).unwrap();
    for i in 0..50u32 {
        store.put(format!("k{i:03}").as_bytes(), b"v").unwrap();
    }
    store.flush().unwrap();
    drop(store);
    let store = supplier.open(dir.path()).unwrap();
    assert_eq!(all(&*store).len(), 50);
}

#[test]
fn wipe_clears_data_and_position_across_reopen() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    store
        .write_with_position(&batch(0, 20), &Position::of(0, 19))
        .unwrap();
    store.wipe().unwrap();
    assert!(all(&*store).is_empty());
    assert_eq!(store.position().unwrap(), Position::empty());
    assert_eq!(store.approximate_num_entries().unwrap(), 0);
    store.put(b"after", b"wipe").unwrap();
    store.close().unwrap();

    let store = open(dir.path());
    assert_eq!(all(&*store), vec![(b"after".to_vec(), b"wipe".to_vec())]);
    assert_eq!(store.position().unwrap(), Position::empty());
}

#[test]
fn single_key_operations_commit() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    assert_eq!(store.put_if_absent(b"a", b"1").unwrap(), None);
    assert_eq!(
        store.put_if_absent(b"a", b"2").unwrap(),
        Some(b"1".to_vec())
    );
    assert_eq!(store.delete(b"missing").unwrap(), None);
    store.put(b"", b"").unwrap();
    assert_eq!(store.approximate_num_entries().unwrap(), 2);
    store.close().unwrap();

    let store = open(dir.path());
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"").unwrap(), Some(Vec::new()));
    assert_eq!(store.delete(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"a").unwrap(), None);
}

#[test]
fn opening_an_open_file_twice_is_unavailable() {
    let dir = TempDir::new().unwrap();
    let first = open(dir.path());
    let err = supplier().open(dir.path()).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string()
            .contains(&file(dir.path()).display().to_string()),
        "{err}"
    );
    first.close().unwrap();
    // close releases the file even while the first handle still exists.
    let second = open(dir.path());
    second.put(b"k", b"v").unwrap();
    drop(first);
}

#[test]
fn operations_after_close_are_closed_errors() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    store.put(b"k", b"v").unwrap();
    let scan = store.all().unwrap();
    store.close().unwrap();
    store.close().unwrap();
    assert_eq!(store.get(b"k").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(store.put(b"k", b"v").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(store.position().unwrap_err().kind(), ErrorKind::Closed);
    // A scan started before close must not panic; it may yield what it already holds.
    for item in scan {
        if let Err(err) = item {
            assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
        }
    }
}

#[test]
fn capability_reports_durable_ordered_redb() {
    let dir = TempDir::new().unwrap();
    let store = RedbStore::open("caps", dir.path(), &RedbConfig::default()).unwrap();
    let capability = state_core::KeyValueStore::capability(&store);
    assert_eq!(capability.backend, "redb");
    assert!(capability.durable && capability.ordered_index);
    assert_eq!(store.path(), file(dir.path()));
}

#[test]
fn supplier_creates_missing_directory_and_custom_file_name() {
    let dir = TempDir::new().unwrap();
    let nested = dir.path().join("app").join("rewards-0");
    let supplier = supplier_with(RedbConfig::new().with_file_name("data.redb"));
    let store = supplier.open(&nested).unwrap();
    store.put(b"k", b"v").unwrap();
    store.close().unwrap();
    assert!(nested.join("data.redb").is_file());
    supplier.destroy(&nested).unwrap();
    assert!(!nested.join("data.redb").exists());
    supplier.destroy(&nested).unwrap();
    let bad = supplier_with(RedbConfig::new().with_file_name("../escape"));
    assert_eq!(
        bad.open(&nested).map(|_| ()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}
