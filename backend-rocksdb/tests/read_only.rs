//! Read-only opens: nothing created, not a byte changed, concurrent with each other,
//! refused while a writer holds the store; and stores from before the ownership stamp.

mod common;

use std::path::Path;

use backend_rocksdb::RocksDbSupplier;
use common::entries;
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch};
use test_support::{assert_unchanged, snapshot};

fn supplier() -> RocksDbSupplier {
    RocksDbSupplier::new("read-only")
}

/// A closed store in `dir` holding 100 keys at position 99, flushed and not.
fn written(dir: &Path) {
    let store = supplier().open(dir).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..100u32 {
        batch.put(format!("key-{i:03}").into_bytes(), i.to_be_bytes());
    }
    store
        .write_with_position(&batch, &Position::of(0, 99))
        .unwrap();
    store.close().unwrap();
}

#[test]
fn a_read_only_open_changes_not_a_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    written(&dir);
    let before = snapshot(&dir);

    let store = supplier().open_read_only(&dir).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 99));
    assert_eq!(entries(store.as_ref()).len(), 100);
    assert_eq!(
        store.get(b"key-007").unwrap(),
        Some(7u32.to_be_bytes().to_vec())
    );
    assert!(store.approximate_num_entries().is_ok());
    for err in [
        store.put(b"k", b"v").unwrap_err(),
        store.delete(b"key-001").unwrap_err(),
        store.wipe().unwrap_err(),
        store
            .write_with_position(&WriteBatch::new(), &Position::of(0, 100))
            .unwrap_err(),
        store.set_bulk_loading(true).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    store.flush().unwrap();
    store.close().unwrap();
    drop(store);

    assert_unchanged(&dir, &before);
}

#[test]
fn a_missing_or_empty_directory_is_not_found_and_nothing_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let err = supplier().open_read_only(&missing).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!missing.exists());

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = supplier().open_read_only(&empty).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&empty.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn read_only_opens_run_at_the_same_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    written(&dir);
    let stores: Vec<_> = (0..6)
        .map(|_| supplier().open_read_only(&dir).unwrap())
        .collect();
    for store in &stores {
        assert_eq!(entries(store.as_ref()).len(), 100);
    }
}

#[test]
fn a_read_only_open_is_refused_while_a_writer_holds_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let writer = supplier().open(&dir).unwrap();
    writer.put(b"k", b"v").unwrap();
    let err = supplier().open_read_only(&dir).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string()
            .contains("open for writing by a store handle in this process"),
        "{err}"
    );
    // The probe must not have released the writer's lock: a second writer is refused.
    let second = supplier().open(&dir).map(|_| ()).unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Unavailable, "{second}");
    assert!(second.to_string().contains("LOCK file is held"), "{second}");
    writer.close().unwrap();
    drop(writer);
    assert!(supplier().open_read_only(&dir).is_ok());
}

#[test]
fn a_store_without_the_stamp_is_adopted_only_when_it_is_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    written(&dir);
    // A store written before the stamp existed.
    std::fs::remove_file(dir.join("STATESTORE-ROCKSDB")).unwrap();
    let before = snapshot(&dir);
    let store = supplier().open_read_only(&dir).unwrap();
    assert_eq!(entries(store.as_ref()).len(), 100);
    drop(store);
    assert!(snapshot(&dir) == before, "a read-only open must not stamp");
    assert!(supplier().owns(&dir));

    let store = supplier().open(&dir).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 99));
    drop(store);
    assert!(dir.join("STATESTORE-ROCKSDB").exists());
}
