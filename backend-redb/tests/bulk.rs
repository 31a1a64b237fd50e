//! Bulk-loading mode (restore) and durability.

mod common;

use backend_redb::RedbConfig;
use common::{all, supplier_with};
use state_core::{KeyValueBytesStoreSupplier, Position, WriteBatch};
use tempfile::TempDir;

#[test]
fn bulk_loading_then_reopen_keeps_everything() {
    let dir = TempDir::new().unwrap();
    let supplier = supplier_with(RedbConfig::new().with_bulk_immediate_every(7));
    let store = supplier.open(dir.path()).unwrap();
    store.set_bulk_loading(true).unwrap();
    for round in 0..20u32 {
        let mut batch = WriteBatch::new();
        for i in round * 100..round * 100 + 100 {
            batch.put(i.to_be_bytes(), i.to_le_bytes());
        }
        store
            .write_with_position(&batch, &Position::of(0, i64::from(round * 100 + 99)))
            .unwrap();
    }
    store.set_bulk_loading(false).unwrap();
    drop(store);

    let store = supplier.open(dir.path()).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 1999));
    let entries = all(&*store);
    assert_eq!(entries.len(), 2000);
    assert_eq!(
        entries[1234],
        (
            1234u32.to_be_bytes().to_vec(),
            1234u32.to_le_bytes().to_vec()
        )
    );
    store.close().unwrap();
}

/// A batch of `count` puts from `start`, keys big-endian so they sort as numbers.
fn puts(start: u32, count: u32) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in start..start + count {
        batch.put(i.to_be_bytes(), i.to_le_bytes());
    }
    batch
}

#[test]
fn writes_held_in_the_open_bulk_transaction_are_read_back_at_once() {
    let dir = TempDir::new().unwrap();
    let store = supplier_with(RedbConfig::new()).open(dir.path()).unwrap();
    store.set_bulk_loading(true).unwrap();
    for round in 0..3u32 {
        store
            .write_with_position(&puts(round * 10, 10), &Position::of(0, i64::from(round)))
            .unwrap();
        // Far below the transaction's limit: these reads must see it all the same.
        assert_eq!(store.position().unwrap(), Position::of(0, i64::from(round)));
        assert_eq!(all(&*store).len(), (round as usize + 1) * 10);
        let last = round * 10 + 9;
        assert_eq!(
            store.get(&last.to_be_bytes()).unwrap(),
            Some(last.to_le_bytes().to_vec())
        );
    }
    store.set_bulk_loading(false).unwrap();
    store.close().unwrap();
}

#[test]
fn a_store_dropped_while_bulk_loading_reopens_with_data_and_position_agreeing() {
    let dir = TempDir::new().unwrap();
    let supplier = supplier_with(RedbConfig::new());
    let store = supplier.open(dir.path()).unwrap();
    store
        .write_with_position(&puts(0, 100), &Position::of(0, 0))
        .unwrap();
    store.set_bulk_loading(true).unwrap();
    for round in 1..5u32 {
        store
            .write_with_position(&puts(round * 100, 100), &Position::of(0, i64::from(round)))
            .unwrap();
    }
    // Dropped, not closed: the batches the open transaction holds are lost with their
    // position, as a killed process loses them.
    drop(store);

    let store = supplier.open(dir.path()).unwrap();
    let position = store.position().unwrap();
    let reached = position.applied(0).expect("the first commit's position");
    assert_eq!(all(&*store).len() as i64, (reached + 1) * 100);
    store.close().unwrap();
}

#[test]
fn a_checkpoint_taken_while_bulk_loading_holds_the_last_batch() {
    let dir = TempDir::new().unwrap();
    let store = supplier_with(RedbConfig::new()).open(dir.path()).unwrap();
    // A write outside a commit makes a checkpoint wait for the next commit ...
    store.put(b"outside", b"1").unwrap();
    store.set_bulk_loading(true).unwrap();
    // ... which the open bulk transaction is, once committed.
    store
        .write_with_position(&puts(0, 50), &Position::of(0, 49))
        .unwrap();
    let target = TempDir::new().unwrap();
    let checkpoint = store.checkpoint(&target.path().join("cp")).unwrap();
    assert_eq!(checkpoint.position, Position::of(0, 49));
    store.set_bulk_loading(false).unwrap();
    store.close().unwrap();
}
