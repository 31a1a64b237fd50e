//! A real process crash (abort) mid-writes: data and position must agree afterwards.
//!
//! The test binary re-runs itself as a child that writes and then aborts; the child part
//! is a test that does nothing unless the child environment variable is set.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use backend_rocksdb::RocksDbConfig;
use common::open;
use state_core::{KeyValueStore, Position, WriteBatch};

const CHILD_DIR: &str = "STATESTORE_ROCKSDB_CRASH_DIR";
const CHILD_WAL: &str = "STATESTORE_ROCKSDB_CRASH_WAL";
const WRITES: i64 = 3000;
const FLUSH_AT: i64 = 1000;

fn config(wal: bool) -> RocksDbConfig {
    // Small memtables so some batches reach disk by themselves before the crash.
    RocksDbConfig::default()
        .with_wal_enabled(wal)
        .with_write_buffer_size(64 * 1024)
}

#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let wal = std::env::var_os(CHILD_WAL).is_some();
    let store = open(Path::new(&dir), &config(wal)).unwrap();
    for offset in 0..WRITES {
        let mut batch = WriteBatch::new();
        batch.put(format!("key-{offset:06}").into_bytes(), vec![0xAB; 64]);
        batch.put(b"last", offset.to_be_bytes());
        store
            .write_with_position(&batch, &Position::of(0, offset))
            .unwrap();
        if offset == FLUSH_AT {
            store.flush().unwrap();
        }
    }
    std::process::abort();
}

fn crash_and_check(wal: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["crash_child", "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_DIR, &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if wal {
        child.env(CHILD_WAL, "1");
    }
    let status = child.status().unwrap();
    assert!(!status.success(), "the child was meant to abort");

    let store = open(&dir, &config(wal)).unwrap();
    assert_eq!(
        store.capability().commits_survive_crash,
        wal,
        "the capability says what a crash keeps"
    );
    let applied = store
        .position()
        .unwrap()
        .applied(0)
        .expect("the flush at FLUSH_AT persisted a position");
    eprintln!("wal={wal}: recovered position {applied} of {}", WRITES - 1);
    assert!(
        applied >= FLUSH_AT,
        "position {applied} is older than the explicit flush"
    );
    if store.capability().commits_survive_crash {
        assert_eq!(
            applied,
            WRITES - 1,
            "with the WAL on nothing is lost when only the process dies"
        );
    }
    let last = store
        .get(b"last")
        .unwrap()
        .expect("last is written with every position");
    assert_eq!(i64::from_be_bytes(last.try_into().unwrap()), applied);
    let keys = store
        .prefix_scan(b"key-")
        .unwrap()
        .collect::<state_core::Result<Vec<_>>>()
        .unwrap()
        .len() as i64;
    assert_eq!(
        keys,
        applied + 1,
        "data holds exactly the batches up to the position"
    );
}

#[test]
fn killed_process_without_wal_keeps_data_and_position_in_agreement() {
    crash_and_check(false);
}

#[test]
fn killed_process_with_wal_keeps_everything() {
    crash_and_check(true);
}
