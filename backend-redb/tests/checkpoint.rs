//! Checkpoints of redb stores: what only this backend has (its file name, its
//! configuration, read-only stores, what a refused open leaves). The contract every
//! backend shares is checked by the conformance suite.

mod common;

use std::path::Path;

use backend_redb::{CommitDurability, RedbConfig};
use common::{all, file, open, supplier, supplier_with};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch};
use tempfile::TempDir;
use test_support::snapshot;

/// 4,000 keys of 200-byte values at position 3999, closed: the file is mostly data
/// pages, so damage lands on live data.
fn written(dir: &Path) {
    let store = open(dir);
    let mut batch = WriteBatch::new();
    for i in 0..4000u32 {
        batch.put(format!("key-{i:04}"), [u8::try_from(i % 251).unwrap(); 200]);
    }
    store
        .write_with_position(&batch, &Position::of(0, 3999))
        .unwrap();
    store.close().unwrap();
}

/// A read-only store checkpoints too (no writer, so nothing uncommitted), and the
/// checkpoint is one file under the store's name.
#[test]
fn a_read_only_store_checkpoints() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("store");
    written(&dir);
    let store = supplier().open_read_only(&dir).unwrap();
    let checkpoint = store.checkpoint(&root.path().join("c")).unwrap();
    assert_eq!(checkpoint.position, Position::of(0, 3999));
    let names: Vec<_> = checkpoint.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, [backend_redb::DEFAULT_FILE_NAME]);
    let opened = supplier()
        .open_checkpoint(&checkpoint.dir, &root.path().join("restored"))
        .unwrap();
    assert_eq!(all(opened.as_ref()), all(store.as_ref()));
    assert_eq!(opened.position().unwrap(), Position::of(0, 3999));
}

/// The opened store has the supplier's configuration (its durability shows in the
/// capability) and its file name; a checkpoint written under another file name is not
/// taken for one, and stays as it was.
#[test]
fn opening_follows_the_suppliers_configuration() {
    let root = TempDir::new().unwrap();
    let named = RedbConfig::new()
        .with_file_name("rewards.redb")
        .with_durability(CommitDurability::Deferred { immediate_every: 4 });
    let store = supplier_with(named.clone())
        .open(&root.path().join("store"))
        .unwrap();
    store
        .write_with_position(&WriteBatch::new(), &Position::of(1, 3))
        .unwrap();
    let checkpoint = store.checkpoint(&root.path().join("c")).unwrap();
    assert_eq!(checkpoint.files[0].path, "rewards.redb");

    let before = snapshot(&checkpoint.dir);
    let err = supplier()
        .open_checkpoint(&checkpoint.dir, &root.path().join("other"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Foreign, "{err}");
    assert!(err.message().contains("rewards.redb"), "{err}");
    assert!(snapshot(&checkpoint.dir).changes_since(&before).is_empty());

    let restored = root.path().join("restored");
    let opened = supplier_with(named)
        .open_checkpoint(&checkpoint.dir, &restored)
        .unwrap();
    assert!(!opened.capability().commits_survive_crash);
    assert!(restored.join("rewards.redb").is_file());
    assert_eq!(opened.position().unwrap(), Position::of(1, 3));
    assert!(!checkpoint.dir.exists());
}

/// A damaged checkpoint, or a store directory that already holds a store, is refused;
/// the checkpoint keeps every byte and the store directory gains nothing.
#[test]
fn a_refused_open_changes_nothing() {
    let root = TempDir::new().unwrap();
    let dir = root.path().join("store");
    written(&dir);
    let store = open(&dir);
    let checkpoint = store.checkpoint(&root.path().join("c")).unwrap();
    drop(store);

    let before = snapshot(&dir);
    let err = supplier()
        .open_checkpoint(&checkpoint.dir, &dir)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(snapshot(&dir).changes_since(&before).is_empty());

    let path = file(&checkpoint.dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle - 64..middle + 64] {
        *b ^= 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let damaged = snapshot(&checkpoint.dir);
    let restored = root.path().join("restored");
    let err = supplier()
        .open_checkpoint(&checkpoint.dir, &restored)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(snapshot(&checkpoint.dir).changes_since(&damaged).is_empty());
    assert!(snapshot(&restored).is_empty());
}
