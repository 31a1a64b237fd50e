//! A real crash in the middle of a restore: a child process restores a changelog into a
//! durable store with durability points and is killed with SIGKILL partway; the parent
//! reopens the store and checks that it kept at least the last durability point before the
//! kill, with data and position agreeing, and that a restore then replays only the rest.
//!
//! Without the points a bulk-loading restore kept nothing here: redb makes one commit in 256
//! durable, RocksDB keeps WAL-less writes in memtables until they fill (issue 24).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ChangelogRecord, ChangelogSink, DurabilityPoints, NoopRestoreListener, Offset,
    ProcessingGuarantee, RestoreListener, RestoreOptions, RestoreTarget, SinkOptions,
    SourceOffsets, TopicSpec, restore,
};

use crate::harness::{BackendFactory, Fixture, block_on, contents};

/// The changelog topic the child restores.
pub const TOPIC: &str = "restore-kill-changelog";
/// Records in the changelog.
pub const RECORDS: u32 = 200_000;
/// Records per restore batch.
pub const BATCH: usize = 1_000;
/// A durability point every this many records (and never by time: the test counts).
pub const POINT_EVERY: u64 = 10_000;
/// The child is killed once it reports a batch ending at or past this offset.
const KILL_AFTER: Offset = 50_000;

fn record(i: u32) -> (Vec<u8>, Vec<u8>) {
    (
        format!("key-{:05}", i % 10_000).into_bytes(),
        u64::from(i).to_be_bytes().to_vec(),
    )
}

/// The changelog every round restores, in memory (the child builds the same one).
pub fn changelog() -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    changelog
        .ensure_topic_now(&TopicSpec::changelog(TOPIC, 1, &BTreeMap::new()))
        .unwrap_or_else(|err| panic!("{err}"));
    let sink = changelog
        .sink_now(&SinkOptions::default())
        .unwrap_or_else(|err| panic!("{err}"));
    for i in 0..RECORDS {
        let (key, value) = record(i);
        sink.append(TOPIC, 0, &ChangelogRecord::put(key, value, 0))
            .unwrap_or_else(|err| panic!("{err}"));
    }
    block_on(sink.commit(&SourceOffsets::none())).unwrap_or_else(|err| panic!("{err}"));
    changelog
}

/// The options the child restores with.
pub fn options() -> RestoreOptions {
    RestoreOptions {
        batch_size: Some(BATCH),
        durability_points: Some(DurabilityPoints {
            records: POINT_EVERY,
            interval: Duration::from_secs(3600),
        }),
        ..RestoreOptions::default()
    }
}

/// Prints each batch's last offset on stdout, for the parent to decide when to kill.
pub struct PrintBatches;

impl RestoreListener for PrintBatches {
    fn on_batch_restored(&self, _: RestoreTarget<'_>, end: Offset, _: u64) {
        println!("{end}");
    }
}

/// Contents after applying offsets `..upto` of the changelog.
fn expected(upto: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut map = BTreeMap::new();
    for i in 0..upto {
        let (key, value) = record(i);
        map.insert(key, value);
    }
    map.into_iter().collect()
}

/// Runs `child_exe` (the `restore_child` binary) on a fresh store of `backend`, kills it
/// once it reported a batch at or past [`KILL_AFTER`], and checks what the store kept.
pub fn kill_mid_restore(backend: &dyn BackendFactory, child_exe: &Path) {
    let fixture = Fixture::new(backend, "kill-store");
    let mut child = Command::new(child_exe)
        .args([backend.name(), &fixture.store_dir().to_string_lossy()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("spawning {}: {err}", child_exe.display()));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (lines, seen) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let reported = loop {
        match seen.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let end: Offset = line.trim().parse().unwrap_or(-1);
                if end >= KILL_AFTER {
                    break end;
                }
            }
            Err(err) => {
                let _ = child.kill();
                panic!(
                    "{}: the child reported no batch past {KILL_AFTER}: {err}",
                    backend.name()
                );
            }
        }
    };
    child.kill().unwrap_or_else(|err| panic!("SIGKILL: {err}"));
    let status = child.wait().unwrap_or_else(|err| panic!("{err}"));
    assert!(!status.success(), "the child finished before the kill");

    let store = fixture.open();
    let applied = store
        .position()
        .unwrap_or_else(|err| panic!("{err}"))
        .applied(0)
        .unwrap_or_else(|| {
            panic!(
                "{}: no position after a kill at offset {reported}",
                backend.name()
            )
        });
    // The point after the batch the child reported may not have been made; the one before
    // it was.
    let guaranteed = (reported + 1) / POINT_EVERY as Offset * POINT_EVERY as Offset - 1;
    assert!(
        applied >= guaranteed - POINT_EVERY as Offset,
        "{}: kept up to offset {applied}, killed after reporting {reported}",
        backend.name()
    );
    let upto = u32::try_from(applied + 1).unwrap_or(u32::MAX);
    assert!(upto <= RECORDS);
    assert!(
        contents(store.as_ref()) == expected(upto),
        "{}: data and position disagree after SIGKILL mid-restore (position {applied})",
        backend.name()
    );

    let changelog = changelog();
    let reader = changelog
        .reader_now(TOPIC, ProcessingGuarantee::AtLeastOnce.isolation())
        .unwrap_or_else(|err| panic!("{err}"));
    let summary = block_on(restore(
        store.as_ref(),
        &reader,
        0,
        &RestoreOptions::default(),
        &NoopRestoreListener,
    ))
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        summary.from,
        applied + 1,
        "the rerun must resume after the kept position"
    );
    assert!(
        contents(store.as_ref()) == expected(RECORDS),
        "{}: the resumed restore differs from the changelog",
        backend.name()
    );
}
