//! Real crashes: a child process writes and commits through the logging layer and is
//! killed with SIGKILL at a random moment; the parent reopens the store, restores it, and
//! checks the guarantee against the changelog the child left behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ChangelogRecord, ChangelogSink, LoggedStore, NoopRestoreListener, ProcessingGuarantee,
    RestoreOptions, SinkOptions, SourceOffsets, TopicSpec, restore,
};
use test_support::try_eventually;

use crate::file_log::{FileSink, read_log};
use crate::harness::{BackendFactory, Fixture, block_on, contents};

/// The changelog topic the kill tests use.
pub const KILL_TOPIC: &str = "kill-store-changelog";
/// The changelog partition the kill tests use.
pub const KILL_PARTITION: i32 = 0;

/// A deterministic operation stream, so the parent can regenerate what the child did.
pub struct Workload {
    state: u64,
    index: u64,
}

/// One operation of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillOp {
    /// Put key = value.
    Put(Vec<u8>, Vec<u8>),
    /// Delete key.
    Delete(Vec<u8>),
}

impl KillOp {
    /// Applies the operation through a logged store.
    pub fn apply_logged(&self, store: &LoggedStore) -> state_core::Result<()> {
        match self {
            KillOp::Put(k, v) => store.put(k, v),
            KillOp::Delete(k) => store.delete(k).map(|_| ()),
        }
    }

    /// The changelog record the operation writes: key and value, or a tombstone.
    pub fn as_record(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            KillOp::Put(k, v) => (k.clone(), Some(v.clone())),
            KillOp::Delete(k) => (k.clone(), None),
        }
    }
}

impl Workload {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            index: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64: tiny, deterministic, good enough to spread keys and commit points.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next operation and whether a commit follows it.
    pub fn next_op(&mut self) -> (KillOp, bool) {
        let r = self.next_u64();
        self.index += 1;
        let key = format!("key-{:02}", r % 64).into_bytes();
        let op = if (r >> 8).is_multiple_of(5) {
            KillOp::Delete(key)
        } else {
            KillOp::Put(key, self.index.to_be_bytes().to_vec())
        };
        (op, (r >> 16).is_multiple_of(8))
    }
}

/// What one kill round saw.
#[derive(Debug, Clone, Copy)]
pub struct RoundReport {
    /// Operations covered by the last commit the child reported.
    pub committed_ops: u64,
    /// Records in the changelog the child left.
    pub logged_records: u64,
    /// Records restore replayed after reopening the store.
    pub replayed: u64,
}

/// Runs one round: starts `child_exe` on a fresh store of `backend`, kills it with SIGKILL
/// once it has reported `commits_before_kill` commits, and checks recovery.
pub fn kill_round(
    backend: &dyn BackendFactory,
    child_exe: &Path,
    seed: u64,
    commits_before_kill: usize,
) -> RoundReport {
    let fixture = Fixture::new(backend, "kill-store");
    let log = fixture.root().join("changelog.log");
    let journal = fixture.root().join("commits.journal");
    let args = [
        backend.name().to_owned(),
        fixture.store_dir().to_string_lossy().into_owned(),
        format!("file:{}", log.display()),
        journal.to_string_lossy().into_owned(),
        seed.to_string(),
    ];
    let committed = run_and_kill(child_exe, &args, &journal, commits_before_kill);

    // Reopen: data and position must agree before any restore.
    let logged_records = read_log(&log).unwrap();
    let store = fixture.open();
    let position = store.position().unwrap().applied(KILL_PARTITION);
    let upto = position.map_or(0, |p| p as usize + 1);
    assert!(
        upto <= logged_records.len(),
        "store position {position:?} is past the changelog ({} records)",
        logged_records.len()
    );
    assert_eq!(
        contents(store.as_ref()),
        replay(&logged_records[..upto]),
        "data and position disagree after SIGKILL (seed {seed})"
    );

    // Nothing reordered or invented: the changelog is exactly a prefix of the workload
    // covering every committed operation.
    let mut workload = Workload::new(seed);
    let expected: Vec<_> = (0..logged_records.len())
        .map(|_| workload.next_op().0.as_record())
        .collect();
    assert_eq!(
        logged_records, expected,
        "changelog is not a prefix of the operations (seed {seed})"
    );
    assert!(
        logged_records.len() as u64 >= committed,
        "changelog lost committed operations (seed {seed})"
    );

    // Restore from the changelog the child left.
    let changelog = changelog_from(&logged_records);
    let reader = changelog
        .reader_now(KILL_TOPIC, ProcessingGuarantee::AtLeastOnce.isolation())
        .unwrap();
    let summary = block_on(restore(
        store.as_ref(),
        &reader,
        KILL_PARTITION,
        &RestoreOptions::default(),
        &NoopRestoreListener,
    ))
    .unwrap();
    assert_eq!(
        summary.restored as usize,
        logged_records.len() - upto,
        "restore must replay only the tail"
    );
    assert_eq!(
        contents(store.as_ref()),
        replay(&logged_records),
        "recovered state != replay of the changelog (seed {seed})"
    );
    RoundReport {
        committed_ops: committed,
        logged_records: logged_records.len() as u64,
        replayed: summary.restored,
    }
}

/// Starts `child_exe` with `args`, waits (deadline 60 s) until its journal shows
/// `commits_before_kill` commits, kills it with SIGKILL, and returns the operations covered
/// by the last commit it reported.
pub fn run_and_kill(
    child_exe: &Path,
    args: &[String],
    journal: &Path,
    commits_before_kill: usize,
) -> u64 {
    let mut child = Command::new(child_exe)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("spawning {}: {err}", child_exe.display()));
    let committed = try_eventually(
        Duration::from_secs(60),
        &format!("the child making {commits_before_kill} commits"),
        || {
            let commits = committed_ops(journal).1;
            if commits >= commits_before_kill {
                return Ok(());
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("child exited early with {status}: {stderr}");
            }
            Err(format!("{commits} commits"))
        },
    );
    if let Err(timed_out) = committed {
        let _ = child.kill();
        panic!("{timed_out}");
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    committed_ops(journal).0
}

/// The last committed operation count in the journal, and the number of commits.
fn committed_ops(journal: &Path) -> (u64, usize) {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    // The last line may be torn by the kill; only whole lines count.
    let whole: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    let last = whole
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (last, whole.len())
}

/// `records` applied in order to an empty map: what any store restored from them holds.
pub fn replay(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut map = BTreeMap::new();
    for (key, value) in records {
        match value {
            Some(value) => map.insert(key.clone(), value.clone()),
            None => map.remove(key),
        };
    }
    map.into_iter().collect()
}

/// An in-process changelog holding `records` in [`KILL_TOPIC`] partition
/// [`KILL_PARTITION`], committed: the file changelog a child left, readable by restore.
pub fn changelog_from(records: &[(Vec<u8>, Option<Vec<u8>>)]) -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    changelog
        .ensure_topic_now(&TopicSpec::changelog(KILL_TOPIC, 1, &BTreeMap::new()))
        .unwrap();
    let sink = changelog.sink_now(&SinkOptions::default()).unwrap();
    for (key, value) in records {
        let record = ChangelogRecord {
            key: key.clone(),
            value: value.clone(),
            timestamp: 0,
            headers: Vec::new(),
        };
        sink.append(KILL_TOPIC, KILL_PARTITION, &record).unwrap();
    }
    block_on(sink.commit(&SourceOffsets::none())).unwrap();
    changelog
}

/// The sink a child's CHANGELOG argument names and the topic it writes: `file:PATH` (a
/// file changelog, at-least-once) or `kafka:BOOTSTRAP:TOPIC:at_least_once|exactly_once`
/// (a real broker; the transactional id is `<TOPIC>-txn`).
pub fn open_sink(spec: &str) -> state_core::Result<(Arc<dyn ChangelogSink>, String)> {
    if let Some(path) = spec.strip_prefix("file:") {
        let sink = FileSink::open(Path::new(path), KILL_TOPIC, KILL_PARTITION)?;
        return Ok((Arc::new(sink), KILL_TOPIC.to_owned()));
    }
    #[cfg(feature = "kafka")]
    if let Some(rest) = spec.strip_prefix("kafka:") {
        return crate::kill_kafka::sink_from_spec(rest);
    }
    Err(state_core::Error::invalid_input(format!(
        "unknown changelog {spec}"
    )))
}

/// Runs `STATESTORE_KILL_ROUNDS` (default 100) seeded rounds and prints a summary.
pub fn kill_test(backend: &dyn BackendFactory, child_exe: &Path) {
    let rounds: u64 = std::env::var("STATESTORE_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let base_seed = crate::harness::seed_from_env();
    let (mut replayed, mut committed) = (0, 0);
    for round in 0..rounds {
        let seed = base_seed.wrapping_add(round);
        let report = kill_round(backend, child_exe, seed, 1 + (seed % 40) as usize);
        replayed += report.replayed;
        committed += report.committed_ops;
    }
    eprintln!(
        "kill test {}: {rounds} SIGKILL rounds passed (STATESTORE_SEED={base_seed}; {committed} committed ops, {replayed} replayed after reopen)",
        backend.name()
    );
}
