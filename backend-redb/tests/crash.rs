//! A real crash: a child process writes with each commit durability and aborts (no
//! destructors, no close), then the parent reopens its files.

mod common;

use std::path::Path;
use std::process::Command;

use backend_redb::{CommitDurability, RedbConfig};
use common::{all, supplier_with};
use state_core::{KeyValueBytesStoreSupplier, KeyValueStore, Position, WriteBatch};
use tempfile::TempDir;

const CHILD_DIR: &str = "BACKEND_REDB_CRASH_CHILD_DIR";
const TEST_NAME: &str = "abort_mid_run_keeps_data_and_position_in_agreement";
const COMMITS: u32 = 23;
const PER_COMMIT: u32 = 10;

fn deferred() -> RedbConfig {
    RedbConfig::new().with_durability(CommitDurability::Deferred { immediate_every: 5 })
}

/// Bulk merges of 3 commits' records (30), one in 4 of them `Immediate`.
fn bulk() -> RedbConfig {
    RedbConfig::new()
        .with_bulk_immediate_every(4)
        .with_bulk_transaction_records(3 * PER_COMMIT as usize)
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// Commit `n` (1-based) writes records `(n-1)*PER_COMMIT..n*PER_COMMIT` and sets the
/// position to the last of them.
fn run_commits(store: &dyn KeyValueStore) {
    for n in 1..=COMMITS {
        let mut batch = WriteBatch::new();
        for i in (n - 1) * PER_COMMIT..n * PER_COMMIT {
            batch.put(key(i), i.to_be_bytes());
        }
        let offset = i64::from(n * PER_COMMIT - 1);
        store
            .write_with_position(&batch, &Position::of(0, offset))
            .unwrap();
    }
}

fn child(dir: &Path) -> ! {
    let immediate_store = supplier_with(RedbConfig::new())
        .open(&dir.join("immediate"))
        .unwrap();
    run_commits(&*immediate_store);
    let deferred_store = supplier_with(deferred())
        .open(&dir.join("deferred"))
        .unwrap();
    run_commits(&*deferred_store);
    let bulk_store = supplier_with(bulk()).open(&dir.join("bulk")).unwrap();
    bulk_store.set_bulk_loading(true).unwrap();
    run_commits(&*bulk_store);
    std::fs::write(dir.join("written"), b"").unwrap();
    std::process::abort();
}

/// After the crash the store holds exactly the records up to its position, and at least
/// everything up to the last `Immediate` commit.
fn check(dir: &Path, config: RedbConfig, last_immediate_commit: u32) {
    let store = supplier_with(config).open(dir).unwrap();
    let applied = store
        .position()
        .unwrap()
        .applied(0)
        .expect("a durable position");
    let durable_floor = i64::from(last_immediate_commit * PER_COMMIT - 1);
    assert!(
        applied >= durable_floor,
        "{}: position {applied} < {durable_floor}",
        dir.display()
    );
    let count = u32::try_from(applied + 1).unwrap();
    let expected: Vec<_> = (0..count)
        .map(|i| (key(i), i.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(all(&*store), expected, "{}", dir.display());
    store.close().unwrap();
}

#[test]
fn abort_mid_run_keeps_data_and_position_in_agreement() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        child(Path::new(&dir));
    }
    let dir = TempDir::new().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR, dir.path())
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to abort");
    assert!(
        dir.path().join("written").exists(),
        "the child failed before aborting: {status}"
    );

    // The default, Immediate: every commit, as the capability promises.
    assert!(
        supplier_with(RedbConfig::new())
            .capability()
            .commits_survive_crash
    );
    check(&dir.path().join("immediate"), RedbConfig::new(), COMMITS);
    // Deferred { immediate_every: 5 }: commits 5, 10, 15, 20 were Immediate.
    assert!(!supplier_with(deferred()).capability().commits_survive_crash);
    check(&dir.path().join("deferred"), deferred(), 20);
    // Bulk loading: merges after commits 3, 6, ..., 21, the 4th of them (after commit
    // 12) Immediate; commits 22 and 23 were still held back, in memory.
    check(&dir.path().join("bulk"), bulk(), 12);
}
