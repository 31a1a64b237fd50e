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
fn writes_held_back_while_bulk_loading_are_read_back_at_once() {
    let dir = TempDir::new().unwrap();
    let store = supplier_with(RedbConfig::new()).open(dir.path()).unwrap();
    store.set_bulk_loading(true).unwrap();
    for round in 0..3u32 {
        store
            .write_with_position(&puts(round * 10, 10), &Position::of(0, i64::from(round)))
            .unwrap();
        // Far below the merge's limit: these reads must see it all the same.
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
    // Dropped, not closed: the batches held back are lost with their
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
    // ... which the merge of what the bulk load holds back is.
    store
        .write_with_position(&puts(0, 50), &Position::of(0, 49))
        .unwrap();
    let target = TempDir::new().unwrap();
    let checkpoint = store.checkpoint(&target.path().join("cp")).unwrap();
    assert_eq!(checkpoint.position, Position::of(0, 49));
    store.set_bulk_loading(false).unwrap();
    store.close().unwrap();
}

/// The directory a bulk load's runs spill to, beside the default store file.
fn runs_dir(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("store.redb.bulk-runs")
}

/// Overwrites and deletes spilled over many runs and merged several times come out as
/// each key's last write, with the last position, and leave no run behind.
#[test]
fn held_back_writes_spilled_in_runs_merge_to_each_keys_last_write() {
    let dir = TempDir::new().unwrap();
    let config = RedbConfig::new()
        .with_bulk_run_bytes(512)
        .with_bulk_transaction_records(700);
    let store = supplier_with(config).open(dir.path()).unwrap();
    store.set_bulk_loading(true).unwrap();
    let mut model = std::collections::BTreeMap::new();
    for round in 0..30u32 {
        let mut batch = WriteBatch::new();
        for i in 0..100u32 {
            let key = ((i * 7 + round * 13) % 250).to_be_bytes();
            if (i + round) % 9 == 0 {
                batch.delete(key);
                model.remove(key.as_slice());
            } else {
                batch.put(key, (round * 1000 + i).to_le_bytes());
                model.insert(key.to_vec(), (round * 1000 + i).to_le_bytes().to_vec());
            }
        }
        store
            .write_with_position(&batch, &Position::of(0, i64::from(round)))
            .unwrap();
        if round == 10 {
            assert!(runs_dir(dir.path()).exists(), "runs spilled by now");
        }
    }
    store.set_bulk_loading(false).unwrap();
    assert!(!runs_dir(dir.path()).exists());
    assert_eq!(store.position().unwrap(), Position::of(0, 29));
    assert_eq!(all(&*store), model.into_iter().collect::<Vec<_>>());
    store.close().unwrap();
}

/// Runs a killed bulk load left beside the file are removed by the next writable open,
/// which holds what was merged before them and nothing of theirs.
#[test]
fn runs_left_by_a_crash_are_removed_on_open() {
    let dir = TempDir::new().unwrap();
    let supplier = supplier_with(RedbConfig::new());
    let store = supplier.open(dir.path()).unwrap();
    store
        .write_with_position(&puts(0, 10), &Position::of(0, 9))
        .unwrap();
    store.close().unwrap();
    std::fs::create_dir(runs_dir(dir.path())).unwrap();
    std::fs::write(runs_dir(dir.path()).join("run-000000"), b"cut short").unwrap();

    let store = supplier.open(dir.path()).unwrap();
    assert!(!runs_dir(dir.path()).exists());
    assert_eq!(store.position().unwrap(), Position::of(0, 9));
    assert_eq!(all(&*store).len(), 10);
    store.close().unwrap();
}

/// A store in `dir` holding 10 records at offset 0, bulk loading, its runs spilled every
/// few hundred bytes; and its supplier.
fn bulk_loading_after_ten_records(
    dir: &std::path::Path,
) -> (
    backend_redb::RedbSupplier,
    std::sync::Arc<dyn state_core::KeyValueStore>,
) {
    let supplier = supplier_with(RedbConfig::new().with_bulk_run_bytes(300));
    let store = supplier.open(dir).unwrap();
    store
        .write_with_position(&puts(0, 10), &Position::of(0, 0))
        .unwrap();
    store.set_bulk_loading(true).unwrap();
    (supplier, store)
}

/// A store dropped while bulk loading, after a durability point and before its next,
/// reopens with everything up to the point: the runs the point made durable are merged
/// by the open, what came after is gone with its position, and no run is left.
#[test]
fn runs_made_durable_by_a_flush_are_merged_by_the_next_open() {
    let dir = TempDir::new().unwrap();
    let (supplier, store) = bulk_loading_after_ten_records(dir.path());
    for round in 1..6u32 {
        store
            .write_with_position(&puts(round * 10, 10), &Position::of(0, i64::from(round)))
            .unwrap();
    }
    store.flush().unwrap();
    store
        .write_with_position(&puts(60, 10), &Position::of(0, 6))
        .unwrap();
    drop(store);
    assert!(
        runs_dir(dir.path()).exists(),
        "the durable runs stay for the open"
    );

    let store = supplier.open(dir.path()).unwrap();
    assert!(!runs_dir(dir.path()).exists());
    assert_eq!(store.position().unwrap(), Position::of(0, 5));
    let entries = all(&*store);
    assert_eq!(entries.len(), 60);
    assert_eq!(entries[59].0, 59u32.to_be_bytes().to_vec());
    store.close().unwrap();
}

/// A durable run damaged on disk is not merged: the open drops the runs, and the store
/// stays at its last merge, data and position together, for restore to replay the rest.
#[test]
fn a_damaged_durable_run_is_dropped_and_the_store_stays_at_its_last_merge() {
    let dir = TempDir::new().unwrap();
    let (supplier, store) = bulk_loading_after_ten_records(dir.path());
    store
        .write_with_position(&puts(10, 40), &Position::of(0, 1))
        .unwrap();
    store.flush().unwrap();
    drop(store);
    let run = runs_dir(dir.path()).join("run-000000");
    let mut bytes = std::fs::read(&run).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&run, bytes).unwrap();

    let store = supplier.open(dir.path()).unwrap();
    assert!(!runs_dir(dir.path()).exists());
    assert_eq!(store.position().unwrap(), Position::of(0, 0));
    assert_eq!(all(&*store), all_puts(0, 10));
    store.close().unwrap();
    // The dropped manifest is gone with its runs: the next open has nothing to merge.
    let store = supplier.open(dir.path()).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 0));
    store.close().unwrap();
}

/// What `puts(start, count)` writes, as the store lists it.
fn all_puts(start: u32, count: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    (start..start + count)
        .map(|i| (i.to_be_bytes().to_vec(), i.to_le_bytes().to_vec()))
        .collect()
}
