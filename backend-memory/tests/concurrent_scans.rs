//! Scans running beside puts, deletes and batches, each checked against what it could
//! legally see.
//!
//! Every write and every scan takes a ticket from one sequentially consistent clock
//! before it starts and after it ends, so each has an interval that contains the moment
//! it took effect. Both writers write every key, so writes to one key race each other (a
//! put of a new key against a delete is where the map and its ordered index could part).
//! A scan over `[s0, s1]` may show for a key the state of any write that began before
//! `s1` and was not overwritten for certain before `s0` (another write to the key began
//! after it ended and ended before `s0`); it may show the key absent before any write
//! ended; nothing else.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use backend_memory::MemoryStore;
use state_core::{KeyRange, KeyValue, KeyValueStore, WriteBatch};

const GROUPS: u8 = 4;
const KEYS_PER_GROUP: u8 = 16;
const WRITERS: u8 = 2;
const WRITES_PER_WRITER: usize = 20_000;

/// Keys are `[group, index]`: prefix scans select a group.
fn key(group: u8, index: u8) -> Vec<u8> {
    vec![group, index]
}

/// A key's state after a write: the id of the put, or `None` after a delete.
type State = Option<u64>;

#[derive(Debug)]
struct Write {
    key: Vec<u8>,
    state: State,
    began: u64,
    ended: u64,
}

#[derive(Debug)]
struct Scan {
    range: KeyRange,
    descending: bool,
    began: u64,
    ended: u64,
    entries: Vec<KeyValue>,
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn all_keys() -> Vec<Vec<u8>> {
    (0..GROUPS)
        .flat_map(|g| (0..KEYS_PER_GROUP).map(move |i| key(g, i)))
        .collect()
}

/// Writes by one thread: single puts and deletes, and batches of three distinct keys.
fn write(store: &MemoryStore, clock: &AtomicU64, writer: u8) -> Vec<Write> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ u64::from(writer + 1));
    let own = all_keys();
    let mut log = Vec::new();
    let mut next_id = u64::from(writer) << 32;
    while log.len() < WRITES_PER_WRITER {
        let width = if rng.below(4) == 0 { 3 } else { 1 };
        let mut picked: Vec<&Vec<u8>> = Vec::new();
        while picked.len() < width {
            let candidate = &own[usize::try_from(rng.below(own.len() as u64)).unwrap()];
            if !picked.contains(&candidate) {
                picked.push(candidate);
            }
        }
        let states: Vec<State> = picked
            .iter()
            .map(|_| {
                next_id += 1;
                (rng.below(3) != 0).then_some(next_id)
            })
            .collect();
        let began = clock.fetch_add(1, Ordering::SeqCst);
        if width == 1 {
            match states[0] {
                Some(id) => store.put(picked[0], &id.to_be_bytes()).unwrap(),
                None => {
                    store.delete(picked[0]).unwrap();
                }
            }
        } else {
            let mut batch = WriteBatch::new();
            for (key, state) in picked.iter().zip(&states) {
                match state {
                    Some(id) => batch.put(key.as_slice(), id.to_be_bytes()),
                    None => batch.delete(key.as_slice()),
                };
            }
            store.write(&batch).unwrap();
        }
        let ended = clock.fetch_add(1, Ordering::SeqCst);
        for (key, state) in picked.into_iter().zip(states) {
            log.push(Write {
                key: key.clone(),
                state,
                began,
                ended,
            });
        }
    }
    log
}

/// A scan of a random shape: everything, a range in either direction, or a prefix.
fn scan(store: &MemoryStore, clock: &AtomicU64, rng: &mut XorShift) -> Scan {
    let bound = |rng: &mut XorShift| {
        let k = key(
            u8::try_from(rng.below(u64::from(GROUPS))).unwrap(),
            u8::try_from(rng.below(u64::from(KEYS_PER_GROUP))).unwrap(),
        );
        match rng.below(3) {
            0 => Bound::Included(k),
            1 => Bound::Excluded(k),
            _ => Bound::Unbounded,
        }
    };
    let shape = rng.below(4);
    let range = match shape {
        0 => KeyRange::all(),
        3 => KeyRange::prefix(&[u8::try_from(rng.below(u64::from(GROUPS))).unwrap()]),
        _ => KeyRange::new(bound(rng), bound(rng)),
    };
    let descending = shape == 2;
    let began = clock.fetch_add(1, Ordering::SeqCst);
    let iter = match shape {
        0 => store.all(),
        2 => store.reverse_range(&range),
        3 => store.prefix_scan(&[range_group(&range)]),
        _ => store.range(&range),
    };
    let entries = iter.unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let ended = clock.fetch_add(1, Ordering::SeqCst);
    Scan {
        range,
        descending,
        began,
        ended,
        entries,
    }
}

/// The group a prefix range was made from.
fn range_group(range: &KeyRange) -> u8 {
    match &range.start {
        Bound::Included(prefix) => prefix[0],
        other => panic!("a prefix range starts inclusive, got {other:?}"),
    }
}

/// The writes to one key, sorted by the tickets they ended with, and for each prefix the
/// latest ticket any of them began with.
struct KeyHistory<'a> {
    by_end: Vec<&'a Write>,
    latest_begin: Vec<u64>,
}

impl<'a> KeyHistory<'a> {
    fn new(mut writes: Vec<&'a Write>) -> Self {
        writes.sort_by_key(|w| w.ended);
        let latest_begin = writes
            .iter()
            .scan(0, |latest, w| {
                *latest = w.began.max(*latest);
                Some(*latest)
            })
            .collect();
        Self {
            by_end: writes,
            latest_begin,
        }
    }

    /// Whether the key may show `shown` to a scan over `[began, ended]`.
    fn may_show(&self, shown: State, began: u64, ended: u64) -> bool {
        let done = self.by_end.partition_point(|w| w.ended < began);
        if done == 0 && shown.is_none() {
            return true;
        }
        // A write that ended before the latest start among the writes done before the scan
        // is overwritten for certain.
        let overwritten_below = done.checked_sub(1).map_or(0, |i| self.latest_begin[i]);
        self.by_end
            .iter()
            .filter(|w| w.began < ended && w.ended > overwritten_below)
            .any(|w| w.state == shown)
    }
}

fn check(scan: &Scan, histories: &BTreeMap<Vec<u8>, KeyHistory<'_>>) {
    let keys: Vec<&Vec<u8>> = scan.entries.iter().map(|(k, _)| k).collect();
    let mut expected_order = keys.clone();
    expected_order.sort();
    if scan.descending {
        expected_order.reverse();
    }
    expected_order.dedup();
    assert_eq!(keys, expected_order, "out of order or repeated: {scan:?}");
    let seen: BTreeMap<&Vec<u8>, State> = scan
        .entries
        .iter()
        .map(|(k, v)| {
            (
                k,
                Some(u64::from_be_bytes(v.as_slice().try_into().unwrap())),
            )
        })
        .collect();
    for (key, history) in histories {
        let shown = seen.get(key).copied().unwrap_or(None);
        if !scan.range.contains(key) {
            assert!(!seen.contains_key(key), "{key:?} is outside {scan:?}");
            continue;
        }
        assert!(
            history.may_show(shown, scan.began, scan.ended),
            "key {key:?} shown as {shown:?}, which no write could have left during [{}, {}]",
            scan.began,
            scan.ended
        );
    }
}

#[test]
fn every_scan_shows_a_state_it_could_legally_see() {
    let store = Arc::new(MemoryStore::new("mixed"));
    let clock = Arc::new(AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let start = Arc::new(Barrier::new(usize::from(WRITERS) + 2));

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, clock, start) =
                (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                write(&store, &clock, writer)
            })
        })
        .collect();
    let scanners: Vec<_> = (0..2u64)
        .map(|scanner| {
            let (store, clock, start, writing) = (
                Arc::clone(&store),
                Arc::clone(&clock),
                Arc::clone(&start),
                Arc::clone(&writing),
            );
            thread::spawn(move || {
                let mut rng = XorShift(0xD1B5_4A32_D192_ED03 ^ (scanner + 1));
                let mut scans = Vec::new();
                start.wait();
                // At least a few scans after the writers stop, so the final state is checked too.
                let mut after_writers = 0;
                while after_writers < 5 {
                    if !writing.load(Ordering::Acquire) {
                        after_writers += 1;
                    }
                    scans.push(scan(&store, &clock, &mut rng));
                }
                scans
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut logs = Vec::new();
    for writer in writers {
        logs.extend(writer.join().unwrap());
    }
    writing.store(false, Ordering::Release);
    let scans: Vec<Scan> = scanners
        .into_iter()
        .flat_map(|scanner| scanner.join().unwrap())
        .collect();
    assert!(Instant::now() < deadline, "the run took over two minutes");

    let mut writes_by_key: BTreeMap<Vec<u8>, Vec<&Write>> =
        all_keys().into_iter().map(|k| (k, Vec::new())).collect();
    for write in &logs {
        writes_by_key.get_mut(&write.key).unwrap().push(write);
    }
    let histories: BTreeMap<Vec<u8>, KeyHistory<'_>> = writes_by_key
        .into_iter()
        .map(|(key, writes)| (key, KeyHistory::new(writes)))
        .collect();
    let writes_ended = logs.iter().map(|w| w.ended).max().unwrap();
    let overlapping = scans.iter().filter(|s| s.began < writes_ended).count();
    assert!(
        overlapping >= 100,
        "only {overlapping} of {} scans ran beside a write",
        scans.len()
    );
    for scan in &scans {
        check(scan, &histories);
    }

    // At rest, scans and point reads agree: the ordered index holds exactly the map's keys.
    let by_get: Vec<KeyValue> = all_keys()
        .into_iter()
        .filter_map(|k| store.get(&k).unwrap().map(|v| (k, v)))
        .collect();
    let by_scan: Vec<KeyValue> = store.all().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(by_scan, by_get);
    let mut by_reverse_scan: Vec<KeyValue> = store
        .reverse_range(&KeyRange::all())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    by_reverse_scan.reverse();
    assert_eq!(by_reverse_scan, by_get);
}
