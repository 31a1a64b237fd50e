//! Resident memory per entry of the in-memory store, of a raw `DashMap` and of a
//! `BTreeMap` holding the same entries: the process's resident set before and after
//! loading them, divided by their number, so the allocator's own overhead counts as it
//! does in production.
//!
//! ```sh
//! cargo run -p benches --profile dev --example memory_per_entry -- store|dashmap|btree [ENTRIES]
//! ```
//!
//! One structure per run, so memory freed by one is never reused by the next. Prints one
//! line of JSON. Keys are the benchmarks' 16-byte keys, values their 100-byte values;
//! entries go in as the store's batches do (10,000 per batch).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use benches::{key, value};
use state_core::{KeyValueStore, WriteBatch};

/// The resident set of this process, in bytes, from `/proc/self/statm`.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // Every Linux this runs on has 4 KiB pages; statm counts in pages.
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let structure = args.next().unwrap_or_else(|| "store".into());
    let entries: usize = args.next().map_or(1_000_000, |n| n.parse().unwrap());
    let before = resident_bytes();
    let keep: Box<dyn std::any::Any> = match structure.as_str() {
        "store" => {
            let store = backend_memory::MemoryStore::new("size");
            for first in (0..entries).step_by(10_000) {
                let mut batch = WriteBatch::with_capacity(10_000);
                for i in first..(first + 10_000).min(entries) {
                    batch.put(key(i), value(i));
                }
                store.write(&batch).unwrap();
            }
            assert_eq!(store.approximate_num_entries().unwrap(), entries as u64);
            Box::new(store)
        }
        "dashmap" => {
            let map = dashmap::DashMap::new();
            for i in 0..entries {
                map.insert(key(i).to_vec(), value(i));
            }
            Box::new(map)
        }
        "btree" => {
            let mut map = BTreeMap::new();
            for i in 0..entries {
                map.insert(key(i).to_vec(), value(i));
            }
            Box::new(map)
        }
        other => panic!("unknown structure {other}: expected store, dashmap or btree"),
    };
    let after = resident_bytes();
    black_box(&keep);
    println!(
        "{{\"structure\":\"{structure}\",\"entries\":{entries},\"bytes_per_entry\":{:.1}}}",
        (after - before) as f64 / entries as f64
    );
}
