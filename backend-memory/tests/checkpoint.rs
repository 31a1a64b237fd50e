//! Checkpoints of the memory store: what they hold, what they refuse, and the loader.
//! The conformance suite checks the contract every backend shares; these check what
//! only the dump has.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use backend_memory::{MemoryStore, MemorySupplier};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Position, WriteBatch};

fn entries(store: &dyn KeyValueStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.all().unwrap().collect::<Result<_, _>>().unwrap()
}

/// A direct write since the last commit makes a checkpoint fail and leaves no directory;
/// the next commit makes it possible again, with that write in it.
#[test]
fn writes_outside_a_commit_refuse_until_the_next_commit() {
    let root = tempfile::tempdir().unwrap();
    let store = MemoryStore::new("s");
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &Position::of(0, 1))
        .unwrap();
    store.put(b"b", b"2").unwrap();
    let dir = root.path().join("refused");
    let err = store.checkpoint(&dir).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("outside a commit"), "{err}");
    assert!(!dir.exists(), "a refused checkpoint left {}", dir.display());

    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 2))
        .unwrap();
    let checkpoint = store.checkpoint(&dir).unwrap();
    assert_eq!(checkpoint.position, Position::of(0, 2));
    let opened = MemorySupplier::new("s")
        .open_checkpoint(&dir, &root.path().join("unused"))
        .unwrap();
    assert_eq!(
        entries(opened.as_ref()),
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"2".to_vec())
        ]
    );
    assert!(!dir.exists(), "open_checkpoint must take the checkpoint");
}

/// Deletes that left graves (not yet purged) are not in the dump, and a delete or
/// put_if_absent that changed nothing does not count as an uncommitted write.
#[test]
fn graves_are_left_out_and_no_op_writes_do_not_refuse() {
    let root = tempfile::tempdir().unwrap();
    let store = MemoryStore::new("s");
    let mut batch = WriteBatch::new();
    for i in 0..100u32 {
        batch.put(i.to_be_bytes(), b"v");
    }
    for i in (0..100u32).step_by(3) {
        batch.delete(i.to_be_bytes());
    }
    store
        .write_with_position(&batch, &Position::of(2, 99))
        .unwrap();
    assert_eq!(store.delete(b"never there").unwrap(), None);
    assert_eq!(
        store.put_if_absent(&1u32.to_be_bytes(), b"other").unwrap(),
        Some(b"v".to_vec())
    );
    let dir = root.path().join("c");
    let checkpoint = store.checkpoint(&dir).unwrap();
    assert_eq!(checkpoint.files.len(), 1);
    assert_eq!(checkpoint.backend, "memory");
    assert_eq!(checkpoint.backend_format, 1);
    let opened = MemorySupplier::new("s")
        .open_checkpoint(&dir, root.path())
        .unwrap();
    assert_eq!(entries(opened.as_ref()), entries(&store));
    assert_eq!(opened.approximate_num_entries().unwrap(), 66);
    assert_eq!(opened.position().unwrap(), Position::of(2, 99));
}

/// Checkpoints taken while a writer commits batch after batch each hold one whole
/// commit: every key at the value of the commit the position names.
#[test]
fn checkpoints_beside_commits_hold_exactly_one_commit() {
    let root = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new("s"));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut round = 0i64;
            while !done.load(Ordering::Acquire) {
                let mut batch = WriteBatch::new();
                for key in 0..200u32 {
                    batch.put(key.to_be_bytes(), round.to_be_bytes());
                }
                store
                    .write_with_position(&batch, &Position::of(0, round))
                    .unwrap();
                round += 1;
            }
            round
        })
    };
    for i in 0..30 {
        let dir = root.path().join(format!("c{i}"));
        let checkpoint = store.checkpoint(&dir).unwrap();
        let opened = MemorySupplier::new("s")
            .open_checkpoint(&dir, root.path())
            .unwrap();
        let position = opened.position().unwrap();
        assert_eq!(position, checkpoint.position);
        let data = entries(opened.as_ref());
        match position.applied(0) {
            None => assert!(data.is_empty(), "data without a position"),
            Some(round) => {
                assert_eq!(data.len(), 200, "checkpoint {i}");
                assert!(
                    data.iter().all(|(_, v)| *v == round.to_be_bytes()),
                    "checkpoint {i} at round {round} mixes commits"
                );
            }
        }
    }
    done.store(true, Ordering::Release);
    assert!(writer.join().unwrap() > 0);
}

/// A damaged dump is refused naming the file, and the checkpoint stays where it was.
#[test]
fn a_damaged_dump_is_refused_and_kept() {
    let root = tempfile::tempdir().unwrap();
    let store = MemoryStore::new("s");
    let mut batch = WriteBatch::new();
    batch.put(b"key", b"value");
    store
        .write_with_position(&batch, &Position::of(0, 0))
        .unwrap();
    let dir = root.path().join("c");
    let checkpoint = store.checkpoint(&dir).unwrap();
    let file = dir.join(&checkpoint.files[0].path);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let err = MemorySupplier::new("s")
        .open_checkpoint(&dir, root.path())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    assert!(err.message().contains(&file.display().to_string()), "{err}");
    assert!(err.message().contains("at byte"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "the refused file changed"
    );
}

/// A checkpoint large enough to be loaded in runs on several threads opens with every
/// entry: in scans (the ordered index), through gets (the hash map), and the store then
/// takes writes like any other.
#[test]
fn a_large_checkpoint_opens_whole_on_every_core() {
    const KEYS: u32 = 250_000;
    let root = tempfile::tempdir().unwrap();
    let store = MemoryStore::new("s");
    let mut batch = WriteBatch::new();
    // Keys that share a long prefix and vary in length, with a value per key.
    for i in 0..KEYS {
        batch.put(format!("customer-{}", i * 7919 % KEYS), i.to_be_bytes());
    }
    store
        .write_with_position(&batch, &Position::of(3, 41))
        .unwrap();
    let expected = entries(&store);
    let dir = root.path().join("large");
    store.checkpoint(&dir).unwrap();
    let opened = MemorySupplier::new("s")
        .open_checkpoint(&dir, &root.path().join("unused"))
        .unwrap();
    assert_eq!(opened.position().unwrap(), Position::of(3, 41));
    assert_eq!(opened.approximate_num_entries().unwrap(), u64::from(KEYS));
    assert!(entries(opened.as_ref()) == expected, "a scan differs");
    for (key, value) in &expected {
        assert_eq!(opened.get(key).unwrap().as_ref(), Some(value), "{key:?}");
    }
    opened.put(b"customer-x", b"new").unwrap();
    opened.delete(expected[0].0.as_slice()).unwrap();
    assert_eq!(opened.get(b"customer-x").unwrap(), Some(b"new".to_vec()));
    assert_eq!(opened.get(&expected[0].0).unwrap(), None);
    assert_eq!(entries(opened.as_ref()).len(), expected.len());
}
