//! Read-only opens: nothing created, not a byte changed, concurrent with each other,
//! refused while a writer holds the file, damage reported instead of read.

mod common;

use std::path::Path;
use std::process::Command;

use common::{all, file, open, supplier};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch};
use tempfile::TempDir;
use test_support::{assert_unchanged, snapshot};

/// A closed store in `dir` holding 100 keys at position 99.
fn written(dir: &Path) {
    let store = open(dir);
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
    let dir = TempDir::new().unwrap();
    written(dir.path());
    let before = snapshot(dir.path());

    let store = supplier().open_read_only(dir.path()).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 99));
    assert_eq!(all(&*store).len(), 100);
    assert_eq!(store.approximate_num_entries().unwrap(), 100);
    assert_eq!(
        store.get(b"key-007").unwrap(),
        Some(7u32.to_be_bytes().to_vec())
    );
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

    assert_unchanged(dir.path(), &before);
}

#[test]
fn a_missing_store_is_not_found_and_nothing_is_created() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing");
    let err = supplier().open_read_only(&missing).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!missing.exists());

    let err = supplier()
        .open_read_only(dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn read_only_opens_run_at_the_same_time() {
    let dir = TempDir::new().unwrap();
    written(dir.path());
    let stores: Vec<_> = (0..6)
        .map(|_| supplier().open_read_only(dir.path()).unwrap())
        .collect();
    for store in &stores {
        assert_eq!(all(&**store).len(), 100);
    }
}

#[test]
fn a_read_only_open_is_refused_while_a_writer_holds_the_file() {
    let dir = TempDir::new().unwrap();
    let writer = open(dir.path());
    writer.put(b"k", b"v").unwrap();
    let err = supplier()
        .open_read_only(dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("open for writing"), "{err}");
    writer.close().unwrap();
    drop(writer);
    assert_eq!(
        all(&*supplier().open_read_only(dir.path()).unwrap()),
        vec![(b"k".to_vec(), b"v".to_vec())]
    );
}

const CHILD_DIR: &str = "BACKEND_REDB_READ_ONLY_CHILD_DIR";
const CRASH_TEST: &str = "a_file_left_by_a_crash_is_read_without_being_repaired_on_disk";

#[test]
fn a_file_left_by_a_crash_is_read_without_being_repaired_on_disk() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let store = open(Path::new(&dir));
        store.put(b"k", b"v").unwrap();
        std::process::abort();
    }
    let dir = TempDir::new().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");
    assert!(file(dir.path()).exists());
    let before = snapshot(dir.path());
    let store = supplier().open_read_only(dir.path()).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
    store.close().unwrap();
    drop(store);
    assert_unchanged(dir.path(), &before);
    // A read-write open recovers it on disk, keeping the committed write.
    let store = open(dir.path());
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn damage_is_reported_not_read() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let mut batch = WriteBatch::new();
    for i in 0..4000u32 {
        batch.put(format!("key-{i:06}").into_bytes(), vec![7u8; 200]);
    }
    store.write(&batch).unwrap();
    store.close().unwrap();
    drop(store);
    // Without the integrity check, a full scan of this file panicked inside redb.
    let len = std::fs::metadata(file(dir.path())).unwrap().len();
    let mut bytes = std::fs::read(file(dir.path())).unwrap();
    let at = usize::try_from(len / 3).unwrap();
    bytes[at..at + 3 * 4096].fill(0xA5);
    std::fs::write(file(dir.path()), &bytes).unwrap();
    let err = supplier()
        .open_read_only(dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    assert_eq!(std::fs::read(file(dir.path())).unwrap(), bytes);
}
