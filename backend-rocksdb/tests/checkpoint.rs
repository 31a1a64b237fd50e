//! RocksDB checkpoints: what only this backend has (SST files shared between
//! checkpoints, memtable data with the WAL off or on, read-only stores). The contract
//! every backend shares is checked by the conformance suite.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use backend_rocksdb::{RocksDbConfig, RocksDbSupplier};
use common::{entries, open};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Position, WriteBatch};

/// `count` keys from `first` with values of `round`, committed at `offset`.
fn commit(store: &dyn KeyValueStore, first: u32, count: u32, round: u8, offset: i64) {
    let mut batch = WriteBatch::new();
    for i in first..first + count {
        batch.put(format!("key-{i:06}"), [round; 100]);
    }
    store
        .write_with_position(&batch, &Position::of(0, offset))
        .unwrap();
}

/// The SST files of a checkpoint directory, by name, with their bytes.
fn ssts(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sst"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// A second checkpoint after more writes keeps every SST of the first under the same
/// name with the same bytes and adds the flush of the new writes: what makes snapshots
/// incremental.
#[test]
fn a_later_checkpoint_shares_the_unchanged_sst_files() {
    let root = tempfile::tempdir().unwrap();
    let store = open(&root.path().join("store"), &RocksDbConfig::default()).unwrap();
    commit(&store, 0, 5_000, 1, 0);
    let first = store.checkpoint(&root.path().join("first")).unwrap();
    commit(&store, 5_000, 5_000, 2, 1);
    let second = store.checkpoint(&root.path().join("second")).unwrap();

    let (before, after) = (ssts(&first.dir), ssts(&second.dir));
    assert!(!before.is_empty(), "the first checkpoint has no SST file");
    for (name, bytes) in &before {
        assert!(
            after.get(name) == Some(bytes),
            "{name} of the first checkpoint is not in the second unchanged: first {:?}, \
             second {:?}",
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        after.len() > before.len(),
        "the new writes added no SST file"
    );
    assert_eq!(second.position, Position::of(0, 1));
    for file in &second.files {
        let on_disk = std::fs::metadata(second.dir.join(&file.path))
            .unwrap()
            .len();
        assert_eq!(file.size, on_disk, "{}", file.path);
    }
}

/// With the WAL off or on, commits still in the memtables (never flushed, the store
/// never closed) are in the checkpoint, and a write made after it is not. (The store
/// directory is missing the first time and an empty directory the second: both take
/// the checkpoint.)
#[test]
fn memtable_data_is_in_the_checkpoint_with_the_wal_off_or_on() {
    for wal in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let config = RocksDbConfig::default().with_wal_enabled(wal);
        let store = open(&root.path().join("store"), &config).unwrap();
        commit(&store, 0, 100, 7, 41);
        let checkpoint = store.checkpoint(&root.path().join("c")).unwrap();
        commit(&store, 0, 100, 8, 42);
        let supplier = RocksDbSupplier::new("test").with_config(config);
        let restored = root.path().join("restored");
        if wal {
            std::fs::create_dir(&restored).unwrap();
        }
        let opened = supplier
            .open_checkpoint(&checkpoint.dir, &restored)
            .unwrap();
        assert_eq!(opened.position().unwrap(), Position::of(0, 41), "wal {wal}");
        let data = entries(opened.as_ref());
        assert_eq!(data.len(), 100, "wal {wal}");
        assert!(data.iter().all(|(_, v)| v[..] == [7; 100]), "wal {wal}");
    }
}

/// RocksDB flushes nothing in read-only mode, so a read-only store refuses, and
/// nothing is created.
#[test]
fn a_read_only_store_refuses_to_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let store = open(&dir, &RocksDbConfig::default()).unwrap();
    commit(&store, 0, 10, 1, 9);
    store.close().unwrap();
    drop(store);
    let read_only = RocksDbSupplier::new("test").open_read_only(&dir).unwrap();
    let target = root.path().join("c");
    let err = read_only.checkpoint(&target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(!target.exists());
}
