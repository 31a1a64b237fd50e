//! Range, reverse range and prefix scans against a `BTreeMap` model.

use std::collections::BTreeMap;
use std::ops::Bound;

use backend_memory::MemoryStore;
use proptest::prelude::*;
use state_core::{KeyRange, KeyValue, KeyValueStore, KvIter};

fn collect(iter: KvIter<'_>) -> Vec<KeyValue> {
    iter.collect::<Result<_, _>>().unwrap()
}

fn keys(entries: &[KeyValue]) -> Vec<Vec<u8>> {
    entries.iter().map(|(k, _)| k.clone()).collect()
}

/// The model's answer, computed from the bounds directly rather than through
/// `KeyRange`'s own helpers.
fn model_range(model: &BTreeMap<Vec<u8>, Vec<u8>>, range: &KeyRange) -> Vec<KeyValue> {
    let above = |key: &Vec<u8>| match &range.start {
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
        Bound::Unbounded => true,
    };
    let below = |key: &Vec<u8>| match &range.end {
        Bound::Included(e) => key <= e,
        Bound::Excluded(e) => key < e,
        Bound::Unbounded => true,
    };
    model
        .iter()
        .filter(|(k, _)| above(k) && below(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Short keys over bytes that stress unsigned ordering and prefix successors.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![0x00u8, 0x01, 0x7F, 0x80, 0xFE, 0xFF]),
        0..4,
    )
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

proptest! {
    #[test]
    fn range_variants_match_the_model(
        entries in prop::collection::btree_map(key(), key(), 0..40),
        start in bound(),
        end in bound(),
        prefix in key(),
    ) {
        let store = MemoryStore::new("scan");
        for (k, v) in &entries {
            store.put(k, v).unwrap();
        }
        let range = KeyRange::new(start, end);
        let expected = model_range(&entries, &range);

        prop_assert_eq!(collect(store.range(&range).unwrap()), expected.clone());
        let mut reversed = expected;
        reversed.reverse();
        prop_assert_eq!(collect(store.reverse_range(&range).unwrap()), reversed);

        let prefixed: Vec<KeyValue> = entries
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        prop_assert_eq!(collect(store.prefix_scan(&prefix).unwrap()), prefixed.clone());
        prop_assert_eq!(collect(store.range(&KeyRange::prefix(&prefix)).unwrap()), prefixed);

        let all: Vec<KeyValue> = entries.into_iter().collect();
        prop_assert_eq!(collect(store.all().unwrap()), all);
    }
}

fn store_with(keys: &[&[u8]]) -> MemoryStore {
    let store = MemoryStore::new("scan");
    for key in keys {
        store.put(key, b"v").unwrap();
    }
    store
}

#[test]
fn ordering_is_by_unsigned_bytes() {
    let store = store_with(&[&[0xFF], &[0x80], &[0x7F], &[0x00], &[], &[0x00, 0x00]]);
    let expected: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x7F],
        vec![0x80],
        vec![0xFF],
    ];
    assert_eq!(keys(&collect(store.all().unwrap())), expected);
}

#[test]
fn inclusive_exclusive_and_inverted_ranges() {
    let store = store_with(&[b"a", b"b", b"c", b"d"]);
    let scan = |range: KeyRange| keys(&collect(store.range(&range).unwrap()));
    assert_eq!(
        scan(KeyRange::inclusive(b"b".to_vec(), b"c".to_vec())),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        scan(KeyRange::half_open(b"b".to_vec(), b"c".to_vec())),
        vec![b"b".to_vec()]
    );
    assert_eq!(
        scan(KeyRange::new(
            Bound::Excluded(b"a".to_vec()),
            Bound::Unbounded
        )),
        vec![b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
    );
    assert!(scan(KeyRange::inclusive(b"c".to_vec(), b"b".to_vec())).is_empty());
    let reverse = keys(&collect(
        store
            .reverse_range(&KeyRange::inclusive(b"a".to_vec(), b"c".to_vec()))
            .unwrap(),
    ));
    assert_eq!(reverse, vec![b"c".to_vec(), b"b".to_vec(), b"a".to_vec()]);
    assert!(
        collect(
            store
                .reverse_range(&KeyRange::inclusive(b"d".to_vec(), b"a".to_vec()))
                .unwrap()
        )
        .is_empty()
    );
}

#[test]
fn prefix_scans_include_prefixes_ending_in_ff() {
    let store = store_with(&[
        &[7],
        &[7, 0xFF],
        &[7, 0xFF, 0x00],
        &[7, 0xFF, 0xFF, 0xFF],
        &[8],
        &[7, 0xFE, 0xFF],
        &[0xFF],
    ]);
    let prefix = |p: &[u8]| keys(&collect(store.prefix_scan(p).unwrap()));
    assert_eq!(
        prefix(&[7, 0xFF]),
        vec![
            vec![7, 0xFF],
            vec![7, 0xFF, 0x00],
            vec![7, 0xFF, 0xFF, 0xFF]
        ]
    );
    assert_eq!(prefix(&[0xFF]), vec![vec![0xFF]]);
    assert_eq!(prefix(&[9]), Vec::<Vec<u8>>::new());
    assert_eq!(prefix(&[]).len(), 7);
}

#[test]
fn scans_are_snapshots() {
    let store = store_with(&[b"a", b"b"]);
    let iter = store.all().unwrap();
    store.put(b"c", b"v").unwrap();
    store.delete(b"a").unwrap();
    assert_eq!(keys(&collect(iter)), vec![b"a".to_vec(), b"b".to_vec()]);
}
