//! Damaged and foreign files: an error naming the path, then destroy + open recovers.
//! Damage to our own file is `Corruption` (restore may wipe it); anything else is
//! `Foreign` and left untouched.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{all, file, open, supplier};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch, open_or_rebuild};
use tempfile::TempDir;
use test_support::snapshot;

/// A closed store whose file is mostly data pages, so damage lands on live data.
fn written_store(dir: &Path) {
    let store = open(dir);
    let mut batch = WriteBatch::new();
    for i in 0..4000u32 {
        batch.put(
            format!("key-{i:06}"),
            vec![u8::try_from(i % 251).unwrap(); 200],
        );
    }
    store
        .write_with_position(&batch, &Position::of(0, 3999))
        .unwrap();
    store.close().unwrap();
}

/// Opening fails with `kind` naming the file, read-write and read-only; destroy + open
/// then gives an empty, usable store.
fn assert_rejected_then_recoverable(dir: &Path, kind: ErrorKind) {
    let read_only = supplier().open_read_only(dir).map(|_| ()).unwrap_err();
    assert_eq!(read_only.kind(), kind, "read-only: {read_only}");
    for attempt in 0..2 {
        let err = supplier().open(dir).map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), kind, "attempt {attempt}: {err}");
        assert!(
            err.to_string().contains(&file(dir).display().to_string()),
            "{err}"
        );
        // A failed open must not have replaced the file with a fresh store: the second
        // attempt fails the same way.
    }

    supplier().destroy(dir).unwrap();
    let store = open(dir);
    assert!(all(&*store).is_empty());
    assert_eq!(store.position().unwrap(), Position::empty());
    store.put(b"fresh", b"start").unwrap();
    assert_eq!(store.get(b"fresh").unwrap(), Some(b"start".to_vec()));
}

#[test]
fn truncated_file_is_rejected() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    let len = std::fs::metadata(file(dir.path())).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(file(dir.path()))
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Corruption);
}

#[test]
fn file_truncated_inside_header_is_rejected() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    OpenOptions::new()
        .write(true)
        .open(file(dir.path()))
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Corruption);
}

#[test]
fn bytes_overwritten_in_the_middle_are_rejected() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    let len = std::fs::metadata(file(dir.path())).unwrap().len();
    let mut f = OpenOptions::new()
        .write(true)
        .open(file(dir.path()))
        .unwrap();
    f.seek(SeekFrom::Start(len / 4)).unwrap();
    f.write_all(&vec![0xA5; usize::try_from(len / 2).unwrap()])
        .unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Corruption);
}

#[test]
fn garbled_header_is_rejected() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    let mut f = OpenOptions::new()
        .write(true)
        .open(file(dir.path()))
        .unwrap();
    f.write_all(&[0x5A; 512]).unwrap();
    drop(f);
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Foreign);
}

#[test]
fn foreign_file_is_rejected() {
    let dir = TempDir::new().unwrap();
    let text = "this is not a database\n".repeat(1000);
    std::fs::write(file(dir.path()), text).unwrap();
    assert_foreign_and_untouched(dir.path(), "magic bytes");
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Foreign);
}

#[test]
fn redb_file_without_meta_table_is_rejected() {
    let dir = TempDir::new().unwrap();
    {
        let db = redb::Database::create(file(dir.path())).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("other");
            txn.open_table(table).unwrap().insert(1, 2).unwrap();
        }
        txn.commit().unwrap();
    }
    // Read-only opens leave it as it is; a read-write open's integrity check commits
    // (rewriting redb's header) before the layout tells it is someone else's file.
    let before = snapshot(dir.path());
    let err = supplier()
        .open_read_only(dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Foreign, "{err}");
    assert!(err.to_string().contains("no \"statestore_meta\""), "{err}");
    assert!(
        snapshot(dir.path()) == before,
        "a read-only open changed the file"
    );
    assert!(!supplier().owns(dir.path()));
    let err = open_or_rebuild(&supplier(), dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Foreign, "{err}");
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Foreign);
}

#[test]
fn wrong_format_marker_is_rejected() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    {
        let db = redb::Database::create(file(dir.path())).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<'_, &str, &[u8]> =
                redb::TableDefinition::new("statestore_meta");
            txn.open_table(meta)
                .unwrap()
                .insert("format", b"statestore-redb/99".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let err = supplier().open(dir.path()).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("statestore-redb/99"), "{err}");
    assert_rejected_then_recoverable(dir.path(), ErrorKind::InvalidInput);
}

#[test]
fn damaged_position_is_corruption() {
    let dir = TempDir::new().unwrap();
    written_store(dir.path());
    {
        let db = redb::Database::create(file(dir.path())).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<'_, &str, &[u8]> =
                redb::TableDefinition::new("statestore_meta");
            txn.open_table(meta)
                .unwrap()
                .insert("position", [1u8, 0, 0].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let err = supplier().open(dir.path()).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Corruption);
}

#[test]
fn an_empty_file_is_foreign_and_untouched() {
    let dir = TempDir::new().unwrap();
    std::fs::write(file(dir.path()), b"").unwrap();
    assert_foreign_and_untouched(dir.path(), "an empty file");
    assert_rejected_then_recoverable(dir.path(), ErrorKind::Foreign);
}

#[test]
fn another_backends_store_is_foreign_and_untouched() {
    let dir = TempDir::new().unwrap();
    for name in [
        "CURRENT",
        "MANIFEST-000005",
        "000009.sst",
        "STATESTORE-ROCKSDB",
    ] {
        std::fs::write(dir.path().join(name), name).unwrap();
    }
    assert_foreign_and_untouched(dir.path(), "MANIFEST-000005");
    assert!(!file(dir.path()).exists());
}

/// Opening read-write, read-only and through `open_or_rebuild` (what restore uses) fails
/// as `Foreign` naming the path and `found`, and not a byte under `dir` changed.
fn assert_foreign_and_untouched(dir: &Path, found: &str) {
    let before = snapshot(dir);
    let errors = [
        supplier().open(dir).map(|_| ()).unwrap_err(),
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
fn a_creation_cut_short_leaves_no_store_and_is_redone() {
    let dir = TempDir::new().unwrap();
    // What a crash inside redb's create leaves under the temporary name.
    std::fs::write(dir.path().join("store.redb.creating"), b"").unwrap();
    let err = supplier()
        .open_read_only(dir.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let store = open(dir.path());
    store.put(b"k", b"v").unwrap();
    store.close().unwrap();
    assert!(!dir.path().join("store.redb.creating").exists());
    assert!(supplier().owns(dir.path()));
}

#[test]
fn creations_left_by_dead_creators_go_and_only_the_store_stays() {
    let dir = TempDir::new().unwrap();
    // Left by creators that died: this version's names and an older version's.
    for leftover in ["store.redb.creating.4000000000-3", "store.redb.creating"] {
        std::fs::write(dir.path().join(leftover), b"redb\x1a").unwrap();
    }
    drop(open(dir.path()));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["store.redb"]);
}

/// Creators of one new store at once (threads here; processes in the CLI's
/// `concurrent_writers` test) never delete each other's files: each gets the store or
/// finds it open, and what is left is one valid store and nothing else.
#[test]
fn concurrent_creators_leave_one_valid_store() {
    for round in 0..30 {
        let dir = TempDir::new().unwrap();
        let creators = 3;
        let start = std::sync::Barrier::new(creators);
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..creators)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        // Closed at once: the next creator may open it after.
                        supplier()
                            .open(dir.path())
                            .map(|store| store.close().unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for outcome in &outcomes {
            if let Err(err) = outcome {
                assert_eq!(err.kind(), ErrorKind::Unavailable, "round {round}: {err}");
            }
        }
        assert!(
            outcomes.iter().any(Result::is_ok),
            "round {round}: {outcomes:?}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["store.redb"], "round {round}");
        let store = supplier().open_read_only(dir.path()).unwrap();
        assert_eq!(store.position().unwrap(), Position::empty());
    }
}
