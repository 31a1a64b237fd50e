//! Damaged and foreign directories: open fails naming the path; damage to our own store
//! is `Corruption` (restore may wipe it), anything else is `Foreign` and left untouched.

mod common;

use std::path::Path;

use backend_rocksdb::{RocksDbConfig, RocksDbSupplier};
use common::{files, garble, truncate_half};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch, open_or_rebuild};
use test_support::snapshot;

fn supplier() -> RocksDbSupplier {
    RocksDbSupplier::new("damaged")
}

/// A closed store in `dir` with flushed data, so SST files exist.
fn populated(dir: &Path) {
    let store = supplier().open(dir).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..100u32 {
        batch.put(format!("key-{i}").into_bytes(), vec![1u8; 100]);
    }
    store
        .write_with_position(&batch, &Position::of(0, 99))
        .unwrap();
    store.close().unwrap();
}

/// Opening `dir` fails with `kind` naming it, read-write and read-only; then destroy and
/// open give an empty, usable store.
fn assert_rejected_then_recoverable(dir: &Path, kind: ErrorKind) {
    let err = open_error(dir);
    eprintln!(
        "open of damaged {} failed as expected: {err}",
        dir.display()
    );
    assert_eq!(err.kind(), kind, "wrong kind: {err}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "no path in: {err}"
    );
    let read_only = supplier().open_read_only(dir).map(|_| ()).unwrap_err();
    assert_eq!(read_only.kind(), kind, "read-only: {read_only}");

    supplier().destroy(dir).unwrap();
    assert!(!dir.exists());
    let store = supplier().open(dir).unwrap();
    assert_eq!(store.position().unwrap(), Position::empty());
    assert_eq!(store.all().unwrap().count(), 0);
    store.put(b"k", b"v").unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}

/// The error opening `dir` fails with.
fn open_error(dir: &Path) -> state_core::Error {
    match supplier().open(dir) {
        Ok(_) => panic!("opening {} succeeded", dir.display()),
        Err(err) => err,
    }
}

fn damaged(damage: impl Fn(&Path), pick: impl Fn(&str) -> bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    populated(&dir);
    let targets = files(&dir, pick);
    assert!(
        !targets.is_empty(),
        "nothing to damage in {}",
        dir.display()
    );
    for target in &targets {
        damage(target);
    }
    assert_rejected_then_recoverable(&dir, ErrorKind::Corruption);
}

#[test]
fn garbled_current_is_rejected() {
    damaged(garble, |name| name == "CURRENT");
}

#[test]
fn truncated_current_is_rejected() {
    damaged(truncate_half, |name| name == "CURRENT");
}

#[test]
fn empty_current_is_rejected() {
    damaged(
        |path| std::fs::write(path, b"").unwrap(),
        |name| name == "CURRENT",
    );
}

#[test]
fn garbled_manifest_is_rejected() {
    damaged(garble, |name| name.starts_with("MANIFEST-"));
}

#[test]
fn truncated_manifest_is_rejected() {
    damaged(truncate_half, |name| name.starts_with("MANIFEST-"));
}

#[test]
fn a_damaged_manifest_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    populated(&dir);
    let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    let name = current.trim();
    truncate_half(&dir.join(name));
    let err = open_error(&dir).to_string();
    assert!(err.contains(name), "{name} not named in: {err}");
}

#[test]
fn garbled_sst_is_rejected() {
    damaged(garble, |name| name.ends_with(".sst"));
}

#[test]
fn truncated_sst_is_rejected() {
    damaged(truncate_half, |name| name.ends_with(".sst"));
}

#[test]
fn missing_current_is_not_replaced_by_a_fresh_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    populated(&dir);
    std::fs::remove_file(dir.join("CURRENT")).unwrap();
    let tables = files(&dir, |name| name.ends_with(".sst"));
    assert!(supplier().open(&dir).is_err());
    // The failed open created nothing and deleted nothing.
    assert!(!dir.join("CURRENT").exists());
    assert_eq!(files(&dir, |name| name.ends_with(".sst")), tables);
    assert_rejected_then_recoverable(&dir, ErrorKind::Corruption);
}

#[test]
fn foreign_directory_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("not-a-store");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"hello").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub").join("data.bin"), [0u8, 1, 2]).unwrap();
    assert_foreign_and_untouched(&dir, "notes.txt");
    assert_rejected_then_recoverable(&dir, ErrorKind::Foreign);
}

/// Opening `dir` read-write, read-only and through `open_or_rebuild` (what restore uses)
/// fails as `Foreign` naming `dir` and `found`, and not a byte under `dir` changed.
fn assert_foreign_and_untouched(dir: &Path, found: &str) {
    let before = snapshot(dir);
    let errors = [
        open_error(dir),
        supplier().open_read_only(dir).map(|_| ()).unwrap_err(),
        open_or_rebuild(&supplier(), dir).map(|_| ()).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::Foreign, "{err}");
        let text = err.to_string();
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(text.contains(found), "{found} not named in: {text}");
    }
    assert!(
        snapshot(dir) == before,
        "a refused open changed {}",
        dir.display()
    );
    assert!(!supplier().owns(dir));
}

#[test]
fn another_backends_store_is_foreign_and_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("store.redb"), vec![7u8; 4096]).unwrap();
    assert_foreign_and_untouched(&dir, "store.redb");
}

#[test]
fn foreign_rocksdb_without_meta_column_family_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("other-app");
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let db = rocksdb::DB::open(&options, &dir).unwrap();
        db.put(b"their", b"data").unwrap();
    }
    assert_foreign_and_untouched(&dir, "column families [\"default\"]");
    assert_rejected_then_recoverable(&dir, ErrorKind::Foreign);
}

#[test]
fn wrong_format_marker_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    populated(&dir);
    {
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            &dir,
            ["default", "statestore.meta"],
        )
        .unwrap();
        let meta = db.cf_handle("statestore.meta").unwrap();
        db.put_cf(meta, b"format", b"statestore-rocksdb-v999")
            .unwrap();
        db.flush_cf(meta).unwrap();
    }
    assert_rejected_then_recoverable(&dir, ErrorKind::InvalidInput);
}

#[test]
fn damaged_position_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    populated(&dir);
    {
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            &dir,
            ["default", "statestore.meta"],
        )
        .unwrap();
        let meta = db.cf_handle("statestore.meta").unwrap();
        db.put_cf(meta, b"position", [1u8, 2, 3]).unwrap();
        db.flush_cf(meta).unwrap();
    }
    assert_rejected_then_recoverable(&dir, ErrorKind::Corruption);
}

#[test]
fn destroy_of_a_missing_directory_is_a_noop() {
    let tmp = tempfile::tempdir().unwrap();
    supplier()
        .destroy(&tmp.path().join("never-created"))
        .unwrap();
}

#[test]
fn destroy_refuses_an_open_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store-0");
    let store = supplier().open(&dir).unwrap();
    let err = supplier().destroy(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    store.put(b"still", b"here").unwrap();
    assert_eq!(store.get(b"still").unwrap(), Some(b"here".to_vec()));
}

#[test]
fn second_open_of_the_same_directory_is_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    let _store = supplier().open(tmp.path()).unwrap();
    let err = open_error(tmp.path());
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn a_file_instead_of_a_directory_is_invalid_input() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    let err = open_error(&file);
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
}

#[test]
fn config_is_kept_by_the_supplier() {
    let supplier = supplier().with_config(RocksDbConfig::new().with_wal_enabled(true));
    assert!(supplier.config().wal_enabled());
    assert_eq!(supplier.backend(), "rocksdb");
    assert!(supplier.durable());
}
