//! Atomicity under concurrent threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use backend_memory::MemoryStore;
use state_core::{KeyValueStore, Position, WriteBatch};
use test_support::try_eventually;

#[test]
fn put_if_absent_has_exactly_one_winner() {
    const THREADS: usize = 8;
    let store = Arc::new(MemoryStore::new("race"));
    for round in 0..50u32 {
        let key = round.to_be_bytes().to_vec();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let (store, barrier, key) = (Arc::clone(&store), Arc::clone(&barrier), key.clone());
                thread::spawn(move || {
                    barrier.wait();
                    let value = vec![u8::try_from(id).unwrap()];
                    (value.clone(), store.put_if_absent(&key, &value).unwrap())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|(_, old)| old.is_none()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = &winners[0].0;
        assert_eq!(store.get(&key).unwrap().as_ref(), Some(winner));
        for (_, old) in &results {
            if let Some(old) = old {
                assert_eq!(old, winner, "losers see the winner's value");
            }
        }
    }
}

#[test]
fn readers_never_see_half_a_batch() {
    const KEYS: u8 = 16;
    const BATCHES: u64 = 2_000;
    let store = Arc::new(MemoryStore::new("atomic"));
    let done = Arc::new(AtomicBool::new(false));
    let observed = Arc::new(AtomicUsize::new(0));

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, done, observed) =
                (Arc::clone(&store), Arc::clone(&done), Arc::clone(&observed));
            thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let entries: Vec<_> = store.all().unwrap().map(Result::unwrap).collect();
                    // Even batches put every key to the same value, odd ones delete them all.
                    assert!(
                        entries.is_empty() || entries.len() == usize::from(KEYS),
                        "half-applied batch: {} keys",
                        entries.len()
                    );
                    if let Some((_, first)) = entries.first() {
                        assert!(
                            entries.iter().all(|(_, v)| v == first),
                            "mixed batch values"
                        );
                    }
                    observed.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for i in 0..BATCHES {
        let mut batch = WriteBatch::new();
        for key in 0..KEYS {
            if i % 2 == 0 {
                batch.put(vec![key], i.to_be_bytes());
            } else {
                batch.delete(vec![key]);
            }
        }
        store
            .write_with_position(&batch, &Position::of(0, i64::try_from(i).unwrap()))
            .unwrap();
    }
    // Keep the readers running until they have observed something (a reader that
    // finished early failed: joining it below says why); they stop either way, and the
    // count is checked after.
    let waited = try_eventually(
        Duration::from_secs(10),
        "the readers observing 10 batches",
        || {
            let seen = observed.load(Ordering::Relaxed);
            if seen >= 10 || readers.iter().any(|reader| reader.is_finished()) {
                Ok(())
            } else {
                Err(format!("{seen} observed"))
            }
        },
    );
    done.store(true, Ordering::Release);
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(
        observed.load(Ordering::Relaxed) >= 10,
        "readers never ran: {waited:?}"
    );
    assert_eq!(
        store.position().unwrap(),
        Position::of(0, i64::try_from(BATCHES - 1).unwrap())
    );
}
