//! One test per `# Behavior` bullet of [`KeyValueStore`]: each takes a fresh, empty
//! store opened by the [`Fixture`] and panics with a message on violation. Those of
//! `checkpoint` and of the supplier's `open_checkpoint` are in [`checkpoints`].

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use state_core::{KeyRange, Position, WriteBatch};

use crate::harness::{Fixture, contents};

pub mod checkpoints;
pub use checkpoints::*;

fn kv(k: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (k.to_vec(), v.to_vec())
}

fn collect(iter: state_core::Result<state_core::KvIter<'_>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.and_then(|i| i.collect())
        .unwrap_or_else(|err| panic!("scan failed: {err}"))
}

/// An absent key yields `Ok(None)`.
pub fn get_missing_returns_none(f: &Fixture) {
    let store = f.open();
    assert_eq!(store.get(b"missing").unwrap(), None);
}

/// `get` yields the value of the latest put or batch put.
pub fn get_returns_last_put(f: &Fixture) {
    let store = f.open();
    store.put(b"k", b"1").unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"1".to_vec()));
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"2");
    store.write(&batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"2".to_vec()));
}

/// A second put to a key replaces the first.
pub fn put_overwrites(f: &Fixture) {
    let store = f.open();
    store.put(b"k", b"first").unwrap();
    store.put(b"k", b"second").unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"second".to_vec()));
    assert_eq!(contents(store.as_ref()), vec![kv(b"k", b"second")]);
}

/// Empty byte strings are ordinary keys and values.
pub fn empty_key_and_value_are_valid(f: &Fixture) {
    let store = f.open();
    store.put(b"", b"empty key").unwrap();
    store.put(b"empty value", b"").unwrap();
    assert_eq!(store.get(b"").unwrap(), Some(b"empty key".to_vec()));
    assert_eq!(store.get(b"empty value").unwrap(), Some(Vec::new()));
    assert_eq!(
        contents(store.as_ref()),
        vec![kv(b"", b"empty key"), kv(b"empty value", b"")]
    );
}

/// A present key keeps its value, which is returned.
pub fn put_if_absent_keeps_existing(f: &Fixture) {
    let store = f.open();
    store.put(b"k", b"old").unwrap();
    assert_eq!(
        store.put_if_absent(b"k", b"new").unwrap(),
        Some(b"old".to_vec())
    );
    assert_eq!(store.get(b"k").unwrap(), Some(b"old".to_vec()));
}

/// An absent key is set and `None` returned.
pub fn put_if_absent_inserts_missing(f: &Fixture) {
    let store = f.open();
    assert_eq!(store.put_if_absent(b"k", b"v").unwrap(), None);
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}

/// Under concurrent `put_if_absent` of one key, exactly one caller wins.
pub fn put_if_absent_is_atomic(f: &Fixture) {
    let store = f.open();
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let store = Arc::clone(&store);
                scope.spawn(move || store.put_if_absent(b"race", &[i]).unwrap().is_none())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(winners, 1, "exactly one put_if_absent must insert");
}

/// `delete` yields the removed value, then the key is absent.
pub fn delete_returns_old_value(f: &Fixture) {
    let store = f.open();
    store.put(b"k", b"v").unwrap();
    assert_eq!(store.delete(b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.get(b"k").unwrap(), None);
    assert!(contents(store.as_ref()).is_empty());
}

/// Deleting an absent key yields `None` and changes nothing.
pub fn delete_missing_is_noop(f: &Fixture) {
    let store = f.open();
    store.put(b"other", b"v").unwrap();
    assert_eq!(store.delete(b"missing").unwrap(), None);
    assert_eq!(contents(store.as_ref()), vec![kv(b"other", b"v")]);
}

/// For a key written more than once in a batch, the later op wins, however the writes of
/// different keys interleave (a backend may apply a batch in key order).
pub fn write_batch_applies_in_order(f: &Fixture) {
    let store = f.open();
    store.put(b"gone", b"x").unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put(b"c", b"0")
        .put(b"a", b"1")
        .put(b"b", b"1")
        .delete(b"a")
        .delete(b"gone")
        .put(b"b", b"2")
        .put(b"c", b"3")
        .put(b"a", b"4")
        .delete(b"a");
    store.write(&batch).unwrap();
    assert_eq!(
        contents(store.as_ref()),
        vec![kv(b"b", b"2"), kv(b"c", b"3")]
    );
}

/// Readers never see part of a batch: a concurrent reader sees all or none of it.
pub fn write_batch_is_atomic(f: &Fixture) {
    let store = f.open();
    let keys: Vec<Vec<u8>> = (0..50u8).map(|i| vec![b'k', i]).collect();
    std::thread::scope(|scope| {
        let writer = {
            let store = Arc::clone(&store);
            let keys = keys.clone();
            scope.spawn(move || {
                for round in 0..40u8 {
                    let mut batch = WriteBatch::new();
                    for key in &keys {
                        batch.put(key.clone(), vec![round]);
                    }
                    store.write(&batch).unwrap();
                }
            })
        };
        while !writer.is_finished() {
            let seen = collect(store.range(&KeyRange::prefix(b"k")));
            if seen.is_empty() {
                continue;
            }
            assert_eq!(seen.len(), keys.len(), "a scan saw part of a batch");
            let first = &seen[0].1;
            assert!(
                seen.iter().all(|(_, v)| v == first),
                "a scan mixed two batches: {seen:?}"
            );
        }
    });
}

/// A new store has an empty position.
pub fn position_starts_empty(f: &Fixture) {
    let store = f.open();
    assert_eq!(store.position().unwrap(), Position::empty());
}

/// Data and position are updated together; other partitions keep their offsets.
pub fn write_with_position_sets_both(f: &Fixture) {
    let store = f.open();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    store
        .write_with_position(&batch, &Position::of(0, 41))
        .unwrap();
    store
        .write_with_position(&WriteBatch::new(), &Position::of(3, 7))
        .unwrap();
    assert_eq!(store.get(b"a").unwrap(), Some(b"1".to_vec()));
    let position = store.position().unwrap();
    assert_eq!(position.applied(0), Some(41));
    assert_eq!(position.applied(3), Some(7));
}

/// Ascending unsigned-byte order honouring inclusive, exclusive and unbounded ends,
/// checked against a `BTreeMap`.
pub fn range_is_ordered_and_bounded(f: &Fixture) {
    let store = f.open();
    let mut model = BTreeMap::new();
    for key in [
        &b"\x00"[..],
        b"\x00\x00",
        b"a",
        b"ab",
        b"b",
        b"\x7f",
        b"\x80",
        b"\xff",
        b"\xff\xff",
    ] {
        store.put(key, key).unwrap();
        model.insert(key.to_vec(), key.to_vec());
    }
    let bounds = |b: &[u8]| {
        [
            Bound::Included(b.to_vec()),
            Bound::Excluded(b.to_vec()),
            Bound::Unbounded,
        ]
    };
    for start in bounds(b"a") {
        for end in bounds(b"\x80") {
            let range = KeyRange::new(start.clone(), end.clone());
            let expected: Vec<_> = model
                .range::<[u8], _>(range.as_slices())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert_eq!(collect(store.range(&range)), expected, "range {range:?}");
        }
    }
}

/// `from > to` yields nothing, as in Kafka Streams.
pub fn inverted_range_is_empty(f: &Fixture) {
    let store = f.open();
    store.put(b"a", b"1").unwrap();
    store.put(b"z", b"2").unwrap();
    assert!(collect(store.range(&KeyRange::inclusive(b"z".to_vec(), b"a".to_vec()))).is_empty());
    assert!(
        collect(store.reverse_range(&KeyRange::inclusive(b"z".to_vec(), b"a".to_vec()))).is_empty()
    );
    assert!(collect(store.range(&KeyRange::half_open(b"a".to_vec(), b"a".to_vec()))).is_empty());
}

/// The position is never returned as data.
pub fn range_excludes_position_metadata(f: &Fixture) {
    let store = f.open();
    store
        .write_with_position(&WriteBatch::new(), &Position::of(0, 5))
        .unwrap();
    store.put(b"k", b"v").unwrap();
    assert_eq!(contents(store.as_ref()), vec![kv(b"k", b"v")]);
    let reversed = collect(store.reverse_range(&KeyRange::all()));
    assert_eq!(reversed, vec![kv(b"k", b"v")]);
}

/// Same entries as `range`, reversed.
pub fn reverse_range_is_descending(f: &Fixture) {
    let store = f.open();
    for i in 0..20u8 {
        store.put(&[i], &[i]).unwrap();
    }
    for range in [
        KeyRange::all(),
        KeyRange::inclusive(vec![3], vec![11]),
        KeyRange::new(Bound::Excluded(vec![3]), Bound::Excluded(vec![11])),
        KeyRange::prefix(&[7]),
    ] {
        let mut forward = collect(store.range(&range));
        forward.reverse();
        assert_eq!(
            collect(store.reverse_range(&range)),
            forward,
            "range {range:?}"
        );
    }
}

/// Only keys with the prefix, including prefixes ending in `0xFF`.
pub fn prefix_scan_returns_only_prefixed_keys(f: &Fixture) {
    let store = f.open();
    for key in [
        &b"a"[..],
        b"a\xff",
        b"a\xff\x00",
        b"a\xff\xff",
        b"b",
        b"a\xfe\xff",
        b"\xff",
        b"\xff\x01",
    ] {
        store.put(key, b"v").unwrap();
    }
    let keys = |prefix: &[u8]| -> Vec<Vec<u8>> {
        collect(store.prefix_scan(prefix))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        keys(b"a\xff"),
        vec![
            b"a\xff".to_vec(),
            b"a\xff\x00".to_vec(),
            b"a\xff\xff".to_vec()
        ]
    );
    assert_eq!(keys(b"\xff"), vec![b"\xff".to_vec(), b"\xff\x01".to_vec()]);
    assert_eq!(keys(b"c"), Vec::<Vec<u8>>::new());
    assert_eq!(keys(b"").len(), 8);
}

/// Every entry in key order.
pub fn all_returns_every_entry_in_order(f: &Fixture) {
    let store = f.open();
    for i in (0..100u8).rev() {
        store.put(&[i, i], &[i]).unwrap();
    }
    let all = contents(store.as_ref());
    assert_eq!(all.len(), 100);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "not in key order");
}

/// Backends with `Capability::exact_count` count exactly; estimating ones return
/// something within a factor of two.
pub fn approximate_num_entries_counts(f: &Fixture) {
    let store = f.open();
    for i in 0..100u8 {
        store.put(&[i], b"v").unwrap();
    }
    store.flush().unwrap();
    let count = store.approximate_num_entries().unwrap();
    if store.capability().exact_count {
        assert_eq!(count, 100);
    } else {
        assert!((50..=200).contains(&count), "estimate {count} for 100 keys");
    }
}

/// Removes every entry and the position, leaving a usable store.
pub fn wipe_clears_data_and_position(f: &Fixture) {
    let store = f.open();
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1").put(b"b", b"2");
    store
        .write_with_position(&batch, &Position::of(0, 9))
        .unwrap();
    store.wipe().unwrap();
    assert!(contents(store.as_ref()).is_empty());
    assert_eq!(store.position().unwrap(), Position::empty());
    store.put(b"c", b"3").unwrap();
    assert_eq!(contents(store.as_ref()), vec![kv(b"c", b"3")]);
}

/// Durable backends: data written before `flush` survives close and reopen.
pub fn flush_then_reopen_keeps_data(f: &Fixture) {
    let store = f.open();
    if !store.capability().durable {
        return;
    }
    store.put(b"k", b"v").unwrap();
    store.flush().unwrap();
    drop(store);
    let reopened = f.open();
    assert_eq!(reopened.get(b"k").unwrap(), Some(b"v".to_vec()));
}

/// Durable backends: the position survives close and reopen, with its data.
pub fn position_survives_reopen(f: &Fixture) {
    let store = f.open();
    if !store.capability().durable {
        return;
    }
    let mut batch = WriteBatch::new();
    batch.put(b"k", b"v");
    store
        .write_with_position(&batch, &Position::of(2, 17))
        .unwrap();
    store.close().unwrap();
    drop(store);
    let reopened = f.open();
    assert_eq!(reopened.position().unwrap(), Position::of(2, 17));
    assert_eq!(reopened.get(b"k").unwrap(), Some(b"v".to_vec()));
}
