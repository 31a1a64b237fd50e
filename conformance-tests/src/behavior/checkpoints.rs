//! The `# Behavior` bullets of [`KeyValueStore::checkpoint`] and
//! [`KeyValueBytesStoreSupplier::open_checkpoint`], for every backend whose
//! `Capability` has `snapshots` (the others return at once).
//!
//! [`KeyValueStore::checkpoint`]: state_core::KeyValueStore::checkpoint
//! [`KeyValueBytesStoreSupplier::open_checkpoint`]: state_core::KeyValueBytesStoreSupplier::open_checkpoint

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use state_core::{
    ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Position, ProcessingGuarantee, WriteBatch,
};
use test_support::snapshot;

use crate::harness::{Fixture, block_on, contents};
use crate::support::{self, PARTITION};

fn snapshots(f: &Fixture) -> bool {
    f.supplier().capability().snapshots
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:04}").into_bytes()
}

/// Opens `checkpoint` through `supplier` into `dir`, naming both on failure.
fn open_checkpoint(
    supplier: &dyn KeyValueBytesStoreSupplier,
    checkpoint: &Path,
    dir: &Path,
) -> Arc<dyn KeyValueStore> {
    supplier
        .open_checkpoint(checkpoint, dir)
        .unwrap_or_else(|err| {
            panic!(
                "opening checkpoint {} into {} failed: {err}",
                checkpoint.display(),
                dir.display()
            )
        })
}

/// Puts, deletes and a commit through the logging layer, then writes it holds
/// uncommitted; a checkpoint then; more commits to the original. The checkpoint opens,
/// in a new directory, to exactly the first commit's data and position, and says so in
/// its description; the checkpoint directory is taken by the open.
pub fn checkpoint_opens_to_the_same_data_and_position(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let changelog = support::changelog();
    let store = f.open();
    let mut logged = support::logged(
        &changelog,
        Arc::clone(&store),
        ProcessingGuarantee::AtLeastOnce,
    );
    let mut committed = BTreeMap::new();
    for i in 0..40u32 {
        logged.put(&key(i), &i.to_be_bytes()).unwrap();
        committed.insert(key(i), i.to_be_bytes().to_vec());
    }
    for i in (0..40u32).step_by(4) {
        logged.delete(&key(i)).unwrap();
        committed.remove(&key(i));
    }
    block_on(logged.commit()).unwrap();
    let position = store.position().unwrap();
    assert!(
        position.applied(PARTITION).is_some(),
        "the commit set no position"
    );
    // Uncommitted: held by the logging layer, not by the store.
    logged.put(&key(1), b"changed").unwrap();
    logged.put(&key(100), b"new").unwrap();
    logged.delete(&key(2)).unwrap();

    let dir = f.root().join("checkpoint");
    let checkpoint = store.checkpoint(&dir).unwrap();
    let capability = store.capability();
    assert_eq!(checkpoint.dir, dir);
    assert_eq!(checkpoint.backend, capability.backend);
    assert_eq!(checkpoint.backend_format, capability.snapshot_format);
    assert_eq!(checkpoint.position, position);
    assert!(!checkpoint.files.is_empty(), "a checkpoint without files");
    for file in &checkpoint.files {
        let size = std::fs::metadata(dir.join(&file.path))
            .unwrap_or_else(|err| panic!("listed file {} is not there: {err}", file.path))
            .len();
        assert_eq!(size, file.size, "{}", file.path);
    }

    // The original goes on: the buffered writes commit, and more after them.
    block_on(logged.commit()).unwrap();
    let mut batch = WriteBatch::new();
    batch.put(key(3), b"later").delete(key(5));
    store
        .write_with_position(&batch, &Position::of(PARTITION, 1_000))
        .unwrap();
    assert_ne!(
        contents(store.as_ref()),
        committed.clone().into_iter().collect::<Vec<_>>(),
        "the original must have moved on, or the test shows nothing"
    );

    let restored = f.root().join("restored");
    let opened = open_checkpoint(f.supplier().as_ref(), &dir, &restored);
    assert_eq!(
        contents(opened.as_ref()),
        committed.into_iter().collect::<Vec<_>>()
    );
    assert_eq!(opened.position().unwrap(), position);
    assert!(!dir.exists(), "open_checkpoint left {}", dir.display());
    // The opened store is a store like any other.
    opened
        .write_with_position(&WriteBatch::new(), &Position::of(PARTITION, 2_000))
        .unwrap();
    assert_eq!(opened.position().unwrap().applied(PARTITION), Some(2_000));
}

/// A store written outside a commit (`put` since its last `write_with_position`) holds
/// data its position does not cover: the checkpoint is refused as `Unavailable` and
/// creates nothing; after the next commit it is taken, with that write.
pub fn checkpoint_refuses_writes_made_outside_a_commit(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let store = f.open();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &Position::of(0, 1))
        .unwrap();
    store.put(b"b", b"2").unwrap();
    let dir = f.root().join("checkpoint");
    let err = store.checkpoint(&dir).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        !dir.exists(),
        "a refused checkpoint created {}",
        dir.display()
    );

    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 2))
        .unwrap();
    let checkpoint = store.checkpoint(&dir).unwrap();
    assert_eq!(checkpoint.position, Position::of(0, 2));
    let opened = open_checkpoint(f.supplier().as_ref(), &dir, &f.root().join("restored"));
    assert_eq!(opened.position().unwrap(), Position::of(0, 2));
    assert_eq!(
        contents(opened.as_ref()),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
}

/// A checkpoint goes into a new directory only: an existing one, empty or not, is
/// refused as `InvalidInput` and left as it was.
pub fn checkpoint_into_an_existing_directory_is_refused(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let store = f.open();
    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 0))
        .unwrap();
    let empty = f.root().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let kept = f.root().join("kept");
    std::fs::create_dir(&kept).unwrap();
    std::fs::write(kept.join("notes.txt"), b"someone's notes").unwrap();
    for dir in [empty, kept] {
        let before = snapshot(&dir);
        let err = store.checkpoint(&dir).map(|_| ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.message().contains(&dir.display().to_string()),
            "the error must name {}: {err}",
            dir.display()
        );
        let changes = snapshot(&dir).changes_since(&before);
        assert!(changes.is_empty(), "{}: {changes:?}", dir.display());
    }
}

/// A begun checkpoint ([`KeyValueStore::begin_checkpoint`]) holds the commit before it
/// began, however many commits come between its beginning and its finish, and opens to
/// exactly that data and position.
///
/// [`KeyValueStore::begin_checkpoint`]: state_core::KeyValueStore::begin_checkpoint
pub fn begun_checkpoint_holds_the_commit_it_began_at(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let store = f.open();
    let mut batch = WriteBatch::new();
    for i in 0..50u32 {
        batch.put(key(i), b"before");
    }
    store
        .write_with_position(&batch, &Position::of(PARTITION, 10))
        .unwrap();
    let began = contents(store.as_ref());
    let dir = f.root().join("checkpoint");
    let pending = store.begin_checkpoint(&dir).unwrap();
    for round in 0..5i64 {
        let mut batch = WriteBatch::new();
        for i in 0..60u32 {
            batch.put(key(i), round.to_be_bytes());
        }
        batch.delete(key(round as u32));
        store
            .write_with_position(&batch, &Position::of(PARTITION, 11 + round))
            .unwrap();
    }
    assert_ne!(
        contents(store.as_ref()),
        began,
        "the store must have moved on"
    );
    let checkpoint = pending.finish().unwrap();
    assert_eq!(checkpoint.position, Position::of(PARTITION, 10));
    let opened = open_checkpoint(f.supplier().as_ref(), &dir, &f.root().join("restored"));
    assert_eq!(contents(opened.as_ref()), began);
    assert_eq!(opened.position().unwrap(), Position::of(PARTITION, 10));
}

/// A store closed while checkpoints begun on it are unfinished really closes: its
/// directory opens again at once, with its data if the backend is durable. A checkpoint finished after that either
/// holds the commit it began at or fails with its directory gone; one dropped unfinished
/// leaves no directory.
pub fn close_ends_begun_checkpoints(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let store = f.open();
    let mut batch = WriteBatch::new();
    for i in 0..20u32 {
        batch.put(key(i), i.to_be_bytes());
    }
    store
        .write_with_position(&batch, &Position::of(PARTITION, 3))
        .unwrap();
    let data = contents(store.as_ref());
    let finished_late = f.root().join("finished-late");
    let dropped = f.root().join("dropped");
    let late = store.begin_checkpoint(&finished_late).unwrap();
    let unused = store.begin_checkpoint(&dropped).unwrap();
    store.close().unwrap();
    drop(store);
    // A file still held open by a checkpoint's reader fails here (redb: "already open").
    let reopened = f.open();
    if f.supplier().durable() {
        assert_eq!(contents(reopened.as_ref()), data);
        assert_eq!(reopened.position().unwrap(), Position::of(PARTITION, 3));
    }
    // The reopened store moves on: none of it may reach the late checkpoint.
    let mut later = WriteBatch::new();
    for i in 0..20u32 {
        later.put(key(i), b"reopened");
    }
    reopened
        .write_with_position(&later, &Position::of(PARTITION, 4))
        .unwrap();
    drop(unused);
    assert!(
        !dropped.exists(),
        "a dropped begun checkpoint left {}",
        dropped.display()
    );
    match late.finish() {
        Ok(checkpoint) => {
            assert_eq!(checkpoint.position, Position::of(PARTITION, 3));
            let opened = open_checkpoint(
                f.supplier().as_ref(),
                &finished_late,
                &f.root().join("restored"),
            );
            assert_eq!(contents(opened.as_ref()), data);
        }
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
            assert!(
                !finished_late.exists(),
                "a failed checkpoint left {}",
                finished_late.display()
            );
        }
    }
}

/// Checkpoints taken while another thread commits batch after batch (every key set to
/// the batch's round, the round as the position) each open to exactly one commit: every
/// key at the round the position names, and no older than the last commit that had
/// returned before the checkpoint began.
pub fn checkpoint_is_consistent_while_commits_run(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    const KEYS: u32 = 300;
    let store = f.open();
    let done = AtomicBool::new(false);
    let (committed, rounds) = std::sync::mpsc::channel::<i64>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut round = 0i64;
            while !done.load(Ordering::Acquire) {
                let mut batch = WriteBatch::new();
                for i in 0..KEYS {
                    batch.put(key(i), round.to_be_bytes());
                }
                store
                    .write_with_position(&batch, &Position::of(0, round))
                    .unwrap();
                // The checkpoints stop listening at the end.
                let _ = committed.send(round);
                round += 1;
            }
        });
        // Stops the writer however this thread leaves the scope: a failed assertion
        // below must fail the test, not leave the scope waiting for the writer.
        let _stop = Stop(&done);
        for n in 0..6 {
            // At least one commit between two checkpoints, the latest one known.
            let mut returned = rounds.recv().unwrap();
            while let Ok(later) = rounds.try_recv() {
                returned = later;
            }
            let dir = f.root().join(format!("checkpoint-{n}"));
            let checkpoint = store.checkpoint(&dir).unwrap();
            let opened = open_checkpoint(
                f.supplier().as_ref(),
                &dir,
                &f.root().join(format!("restored-{n}")),
            );
            let position = opened.position().unwrap();
            assert_eq!(position, checkpoint.position, "checkpoint {n}");
            let Some(round) = position.applied(0) else {
                panic!("checkpoint {n} has no position after commit {returned} returned");
            };
            assert!(
                round >= returned,
                "checkpoint {n} holds round {round}, older than round {returned}, which had \
                 committed before it began"
            );
            let data = contents(opened.as_ref());
            assert_eq!(data.len(), KEYS as usize, "checkpoint {n}");
            let mixed: Vec<_> = data
                .iter()
                .filter(|(_, value)| value[..] != round.to_be_bytes())
                .collect();
            assert!(
                mixed.is_empty(),
                "checkpoint {n} at round {round} holds other rounds' values, e.g. {:?}",
                mixed.first()
            );
        }
        drop(_stop);
        drop(rounds);
        writer.join().unwrap();
    });
}

/// Sets its flag when dropped, unwinding included.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Every file of the checkpoint in `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A checkpoint with every file cut to half its length, and one with bytes in the middle
/// of every file flipped, are refused as `Corruption`; the checkpoint keeps every byte
/// and the store directory gains nothing.
///
/// What each backend detects on open, beyond these: the memory dump checks every byte (a
/// checksum over the whole file). redb checks every page its tables use (when its
/// configuration checks integrity, the default), not pages no table uses. RocksDB checks
/// its metadata files and the footer, index and filter of each SST when it opens them;
/// a flipped byte inside an SST data block shows as `Corruption` only when the block is
/// read. The snapshot store checks every file's BLAKE3 checksum on download, which
/// covers every byte of every backend.
pub fn damaged_checkpoint_is_refused(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let store = f.open();
    // Mostly data, so damage in the middle of a file lands on live data.
    let mut batch = WriteBatch::new();
    for i in 0..4000u32 {
        batch.put(key(i), [u8::try_from(i % 251).unwrap(); 200]);
    }
    store
        .write_with_position(&batch, &Position::of(0, 3999))
        .unwrap();
    for (n, damage) in ["truncated", "garbled"].into_iter().enumerate() {
        let dir = f.root().join(format!("{damage}-checkpoint"));
        store.checkpoint(&dir).unwrap();
        for file in files(&dir) {
            let mut bytes = std::fs::read(&file).unwrap();
            if bytes.is_empty() {
                continue;
            }
            if damage == "truncated" {
                bytes.truncate(bytes.len() / 2);
            } else {
                let middle = bytes.len() / 2;
                let end = (middle + 64).min(bytes.len());
                for b in &mut bytes[middle.saturating_sub(64)..end] {
                    *b ^= 0xA5;
                }
            }
            // A new file in its place: RocksDB's checkpoint files are hard links to the
            // store's own, and writing into them would damage the store too.
            std::fs::remove_file(&file).unwrap();
            std::fs::write(&file, bytes).unwrap();
        }
        let before = snapshot(&dir);
        let restored = f.root().join(format!("restored-{n}"));
        let err = f
            .supplier()
            .open_checkpoint(&dir, &restored)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption, "{damage}: {err}");
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{damage}: the error must name the checkpoint {}: {err}",
            dir.display()
        );
        let changes = snapshot(&dir).changes_since(&before);
        assert!(
            changes.is_empty(),
            "{damage}: the checkpoint changed: {changes:?}"
        );
        assert!(
            snapshot(&restored).is_empty(),
            "{damage}: the refused checkpoint left files in {}",
            restored.display()
        );
    }
}

/// A checkpoint of every other backend with `snapshots`, and a directory of unknown
/// files, are refused as `Foreign` naming the directory; neither is changed and the
/// store directory gains nothing.
pub fn foreign_checkpoint_is_refused(f: &Fixture) {
    if !snapshots(f) {
        return;
    }
    let mut foreign = Vec::new();
    for other in crate::backends() {
        let supplier = other.supplier("foreign");
        if other.name() == f.supplier().backend() || !supplier.capability().snapshots {
            continue;
        }
        let store = supplier
            .open(&f.root().join(format!("{}-store", other.name())))
            .unwrap();
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        store
            .write_with_position(&batch, &Position::of(0, 0))
            .unwrap();
        let dir = f.root().join(format!("{}-checkpoint", other.name()));
        store.checkpoint(&dir).unwrap();
        store.close().unwrap();
        foreign.push(dir);
    }
    let unknown = f.root().join("unknown");
    std::fs::create_dir(&unknown).unwrap();
    std::fs::write(unknown.join("notes.txt"), b"someone's notes").unwrap();
    foreign.push(unknown);

    for (n, dir) in foreign.iter().enumerate() {
        let before = snapshot(dir);
        let restored = f.root().join(format!("restored-{n}"));
        let err = f
            .supplier()
            .open_checkpoint(dir, &restored)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Foreign, "{}: {err}", dir.display());
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "the error must name {}: {err}",
            dir.display()
        );
        let changes = snapshot(dir).changes_since(&before);
        assert!(changes.is_empty(), "{}: {changes:?}", dir.display());
        assert!(snapshot(&restored).is_empty(), "{}", restored.display());
    }
}
