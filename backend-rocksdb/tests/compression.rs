//! Every block compression the config offers works in the RocksDB this crate links: a
//! RocksDB built without one refuses to open a store that asks for it, and one that
//! silently stored blocks raw would write files as large as no compression does.

mod common;

use std::path::Path;

use backend_rocksdb::{RocksDbCompression, RocksDbConfig};
use common::{entries, files, open};
use state_core::{KeyValueStore, Position, WriteBatch};

const KEYS: usize = 20_000;

/// A value that compresses well: a short pattern repeated, different for each key.
fn value(key: usize) -> Vec<u8> {
    format!("customer-{key:06}:")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(400)
        .collect()
}

/// Writes every key with `compression` into `dir`, flushes it to data files, and returns
/// the data files' total size after checking a reopened store reads every value back.
fn written_bytes(dir: &Path, compression: RocksDbCompression) -> u64 {
    let config = RocksDbConfig::default().with_compression(compression);
    {
        let store = open(dir, &config).unwrap_or_else(|err| {
            panic!("a store with {compression:?} compression must open: {err}")
        });
        let mut batch = WriteBatch::new();
        for key in 0..KEYS {
            batch.put(format!("k{key:06}").as_bytes(), value(key));
        }
        store
            .write_with_position(&batch, &Position::of(0, 1))
            .unwrap();
        store.flush().unwrap();
        store.close().unwrap();
    }
    let store = open(dir, &config).unwrap();
    let read = entries(&store);
    assert_eq!(read.len(), KEYS, "{compression:?}");
    for (key, (read_key, read_value)) in read.iter().enumerate() {
        assert_eq!(read_key, format!("k{key:06}").as_bytes(), "{compression:?}");
        assert_eq!(read_value, &value(key), "{compression:?}");
    }
    files(dir, |name| name.ends_with(".sst"))
        .iter()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum()
}

#[test]
fn lz4_and_zstd_write_smaller_files_that_read_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = written_bytes(&tmp.path().join("none"), RocksDbCompression::None);
    assert!(
        raw > (KEYS * 400) as u64,
        "uncompressed data files hold every value: {raw} bytes"
    );
    for compression in [RocksDbCompression::Lz4, RocksDbCompression::Zstd] {
        let dir = tmp.path().join(format!("{compression:?}"));
        let compressed = written_bytes(&dir, compression);
        assert!(
            compressed * 3 < raw,
            "{compression:?} wrote {compressed} bytes of data files against {raw} uncompressed"
        );
    }
}
