//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use backend_rocksdb::{RocksDbConfig, RocksDbStore};
use state_core::{KeyValueStore, Result};

/// Opens the store `"test"` in `dir` with `config`.
pub fn open(dir: &Path, config: &RocksDbConfig) -> Result<RocksDbStore> {
    RocksDbStore::open("test", dir, config)
}

/// Every entry of `store`, in key order, failing on the first scan error.
pub fn entries(store: &dyn KeyValueStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.all().unwrap().collect::<Result<Vec<_>>>().unwrap()
}

/// Files in `dir` whose name satisfies `pick`.
pub fn files(dir: &Path, pick: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(&pick))
        .collect();
    found.sort();
    found
}

/// Overwrites `path` with deterministic noise of the same length.
pub fn garble(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    let mut state: u32 = 0x9E37_79B9;
    let noise: Vec<u8> = (0..len.max(1))
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(path, noise).unwrap();
}

/// Cuts `path` to half its length.
pub fn truncate_half(path: &Path) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
}
