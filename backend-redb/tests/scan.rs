//! Ordered scans against a `BTreeMap` model.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{all, collect, model_entries, open};
use state_core::{KeyRange, Position, WriteBatch};
use tempfile::TempDir;

fn keys() -> Vec<Vec<u8>> {
    vec![
        vec![],
        vec![0x00],
        vec![0x00, 0x00],
        b"a".to_vec(),
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"b".to_vec(),
        vec![0x7F],
        vec![0x80],
        vec![0xFE, 0xFF],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
        vec![0xFF, 0xFF, 0xFF],
    ]
}

fn filled(
    dir: &TempDir,
) -> (
    std::sync::Arc<dyn state_core::KeyValueStore>,
    BTreeMap<Vec<u8>, Vec<u8>>,
) {
    let store = open(dir.path());
    let mut batch = WriteBatch::new();
    let mut model = BTreeMap::new();
    for (i, key) in keys().into_iter().enumerate() {
        let value = vec![u8::try_from(i).unwrap()];
        batch.put(key.clone(), value.clone());
        model.insert(key, value);
    }
    store
        .write_with_position(&batch, &Position::of(0, 41))
        .unwrap();
    (store, model)
}

fn bounds() -> Vec<Bound<Vec<u8>>> {
    let mut bounds = vec![Bound::Unbounded];
    let mut probes = keys();
    probes.extend([
        b"aa".to_vec(),
        vec![0xFF, 0xFF, 0xFF, 0xFF],
        b"zzz".to_vec(),
    ]);
    for key in probes {
        bounds.push(Bound::Included(key.clone()));
        bounds.push(Bound::Excluded(key));
    }
    bounds
}

#[test]
fn range_bound_variants_match_btreemap() {
    let dir = TempDir::new().unwrap();
    let (store, model) = filled(&dir);
    let mut checked_inverted = 0;
    for start in bounds() {
        for end in bounds() {
            let range = KeyRange::new(start.clone(), end.clone());
            let expected: Vec<_> = if range.is_empty() {
                checked_inverted += 1;
                Vec::new()
            } else {
                model
                    .range::<Vec<u8>, _>((start.clone(), end.clone()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let forward = collect(store.range(&range).unwrap());
            assert_eq!(forward, expected, "range {range:?}");
            let mut reversed = collect(store.reverse_range(&range).unwrap());
            reversed.reverse();
            assert_eq!(reversed, expected, "reverse range {range:?}");
        }
    }
    assert!(
        checked_inverted > 100,
        "inverted ranges exercised: {checked_inverted}"
    );
}

#[test]
fn prefix_scan_with_ff_bytes() {
    let dir = TempDir::new().unwrap();
    let (store, model) = filled(&dir);
    let prefixes: [&[u8]; 7] = [&[], &[0xFF], &[0xFF, 0xFF], &[0xFE], b"a", b"ab", &[0x00]];
    for prefix in prefixes {
        let expected: Vec<_> = model_entries(&model)
            .into_iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        assert_eq!(
            collect(store.prefix_scan(prefix).unwrap()),
            expected,
            "prefix {prefix:?}"
        );
    }
}

#[test]
fn position_hidden_from_scans() {
    let dir = TempDir::new().unwrap();
    let (store, model) = filled(&dir);
    assert_eq!(store.position().unwrap(), Position::of(0, 41));
    assert_eq!(all(&*store), model_entries(&model));
    assert_eq!(
        collect(store.reverse_range(&KeyRange::all()).unwrap()).len(),
        model.len()
    );
    assert_eq!(store.approximate_num_entries().unwrap(), model.len() as u64);
    for key in [b"position".as_slice(), b"format", b"statestore_meta"] {
        assert_eq!(store.get(key).unwrap(), None);
    }
}

#[test]
fn scan_streams_from_a_snapshot_while_writes_continue() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let mut batch = WriteBatch::new();
    for i in 0..5000u32 {
        batch.put(i.to_be_bytes(), vec![1]);
    }
    store.write(&batch).unwrap();

    let mut scan = store.all().unwrap();
    let first = scan.next().unwrap().unwrap();
    assert_eq!(first.0, 0u32.to_be_bytes().to_vec());
    // Writes during the scan neither block on it nor show up in it.
    store.put(&9999u32.to_be_bytes(), &[2]).unwrap();
    store.delete(&10u32.to_be_bytes()).unwrap();
    let rest = scan.map(|item| item.unwrap()).collect::<Vec<_>>();
    assert_eq!(rest.len(), 4999);
    assert!(rest.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(all(&*store).len(), 5000);
}
