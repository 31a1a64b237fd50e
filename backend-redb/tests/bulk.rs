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
