//! Point operations, batches, position, wipe and the supplier.

use backend_memory::{MemoryStore, MemorySupplier};
use state_core::{KeyValueBytesStoreSupplier, KeyValueStore, Position, WriteBatch};

#[test]
fn point_operations_follow_the_contract() {
    let store = MemoryStore::new("rewards");
    assert_eq!(store.name(), "rewards");
    assert_eq!(store.get(b"a").unwrap(), None);
    store.put(b"a", b"1").unwrap();
    store.put(b"a", b"2").unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    store.put(b"", b"").unwrap();
    assert_eq!(store.get(b"").unwrap(), Some(Vec::new()));

    assert_eq!(
        store.put_if_absent(b"a", b"3").unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(store.get(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.put_if_absent(b"b", b"1").unwrap(), None);
    assert_eq!(store.get(b"b").unwrap(), Some(b"1".to_vec()));

    assert_eq!(store.delete(b"a").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.delete(b"a").unwrap(), None);
    assert_eq!(store.approximate_num_entries().unwrap(), 2);
}

#[test]
fn batch_applies_in_order_and_later_ops_win() {
    let store = MemoryStore::new("s");
    store.put(b"gone", b"x").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"1").put(b"k", b"2");
    batch.put(b"d", b"1").delete(b"d");
    batch.delete(b"gone");
    store.write(&batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(b"d").unwrap(), None);
    assert_eq!(store.get(b"gone").unwrap(), None);
    assert_eq!(store.approximate_num_entries().unwrap(), 1);
}

#[test]
fn write_with_position_sets_both_and_keeps_other_partitions() {
    let store = MemoryStore::new("s");
    assert_eq!(store.position().unwrap(), Position::empty());
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &[(0, 10), (1, 4)].into_iter().collect())
        .unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 12))
        .unwrap();
    assert_eq!(
        store.position().unwrap(),
        [(0, 12), (1, 4)].into_iter().collect()
    );
    // The position is not data.
    assert_eq!(store.all().unwrap().count(), 1);
}

#[test]
fn wipe_clears_data_and_position() {
    let store = MemoryStore::new("s");
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &Position::of(0, 3))
        .unwrap();
    store.wipe().unwrap();
    assert_eq!(store.get(b"a").unwrap(), None);
    assert_eq!(store.position().unwrap(), Position::empty());
    assert_eq!(store.approximate_num_entries().unwrap(), 0);
    store.flush().unwrap();
    store.close().unwrap();
}

#[test]
fn capability_reports_a_non_durable_ordered_backend() {
    let capability = MemoryStore::new("s").capability();
    assert_eq!(capability.backend, "memory");
    assert!(!capability.durable);
    assert!(capability.ordered_index);
}

#[test]
fn supplier_opens_a_fresh_empty_store_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let supplier = MemorySupplier::new("rewards");
    assert_eq!(supplier.name(), "rewards");
    assert_eq!(supplier.backend(), "memory");
    assert!(!supplier.durable());

    let first = supplier.open(dir.path()).unwrap();
    assert_eq!(first.name(), "rewards");
    first.put(b"a", b"1").unwrap();
    first.flush().unwrap();
    let second = supplier.open(dir.path()).unwrap();
    assert_eq!(second.get(b"a").unwrap(), None);
    assert_eq!(second.position().unwrap(), Position::empty());
    supplier.destroy(dir.path()).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing is written to disk"
    );
}
