//! One writer per store, across processes: two and three `restore`s of one new store at
//! once, and a `restore` beside a `demo` on one state directory, on every durable backend.
//! In every round one process wins; any other fails with an error naming the winner's
//! process and command; what is left is a valid store (the changelog's contents and
//! position) or nothing, with no lock file and no half-made file beside it.
//!
//! Rounds: `STATESTORE_CONCURRENT_ROUNDS` (default 50) of each restore kind per backend,
//! `STATESTORE_DEMO_ROUNDS` (default 50) of restore + demo per backend. A round waits on
//! the broker far more than it computes (a restore process costs ~30 ms of CPU, a demo
//! round ~130 ms, measured here), so rounds run [`AT_ONCE`] at a time, each in its own
//! state directory, to keep the binary's wall time small.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::{BIN, args, durable_backends, location, store_dir, supplier, text};
use statestore::{Serde, Serdes};
use test_support::{single_broker, try_eventually, unique_name};

/// Records in the changelog the restores race to restore.
const RECORDS: u32 = 2000;

/// Restore rounds per kind and backend, unless `STATESTORE_CONCURRENT_ROUNDS` says.
const ROUNDS: usize = 50;

/// Restore + demo rounds per backend, unless `STATESTORE_DEMO_ROUNDS` says (a demo on the
/// broker takes a few seconds, mostly waiting on its transactional producers).
const DEMO_ROUNDS: usize = 50;

/// Rounds run at the same time.
const AT_ONCE: usize = 8;

fn rounds(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn restore_args(servers: &str, state_dir: &Path, app: &str, backend: &str) -> Vec<String> {
    let mut out = args(&[&[
        "restore",
        "--bootstrap-servers",
        servers,
        "--timeout",
        "30",
        "--partitions",
        "0",
    ]]);
    out.extend(location(state_dir, app, backend));
    out
}

fn spawn(args: &[String]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `round` for every round number, [`AT_ONCE`] at a time.
fn in_batches(rounds: usize, round: impl Fn(usize) + Sync) {
    let round = &round;
    for first in (0..rounds).step_by(AT_ONCE) {
        std::thread::scope(|scope| {
            for number in first..rounds.min(first + AT_ONCE) {
                scope.spawn(move || round(number));
            }
        });
    }
}

/// Asserts that a process that lost names one of `others` (pid and command) as the
/// writer in its way, and that it failed for that reason alone.
fn assert_lost_to(output: &Output, others: &[u32], command: &str, what: &str) {
    let text = text(output);
    assert_eq!(output.status.code(), Some(1), "{what}: {text}");
    assert!(!text.contains("panicked"), "{what}: {text}");
    assert!(
        others.iter().any(|pid| {
            text.contains(&format!(
                "in use by another writer: process {pid} (statestore {command}"
            ))
        }),
        "{what}: the error names none of processes {others:?} running `statestore {command}`: {text}"
    );
}

/// Every file and directory under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().to_owned());
        }
    }
    found
}

/// Asserts that nothing under `dir` is a lock file or a half-made store file.
fn assert_no_leftovers(dir: &Path, what: &str) {
    let leftovers: Vec<_> = tree(dir)
        .into_iter()
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name == statestore::LOCK_FILE_NAME || name.contains(".creating")
        })
        .collect();
    assert!(leftovers.is_empty(), "{what}: left {leftovers:?}");
}

/// Asserts that the store of partition 0 under `state_dir` holds exactly the changelog
/// [`RECORDS`] were appended to, at its last offset.
fn assert_restored(backend: &str, state_dir: &Path, app: &str, what: &str) {
    let store = supplier(backend)
        .open_read_only(&store_dir(state_dir, app, 0))
        .unwrap_or_else(|err| panic!("{what}: the store left is not valid: {err}"));
    assert_eq!(
        store.position().unwrap().applied(0),
        Some(i64::from(RECORDS) - 1),
        "{what}"
    );
    let entries = store
        .all()
        .unwrap()
        .collect::<statestore::Result<Vec<_>>>()
        .unwrap();
    assert_eq!(entries.len(), RECORDS as usize, "{what}");
    for (i, (key, value)) in (0..RECORDS).zip(entries) {
        let expected_key = Serdes::string()
            .serialize(&format!("customer-{i:04}"))
            .unwrap();
        let expected_value = Serdes::f64().serialize(&f64::from(i)).unwrap();
        assert_eq!(
            (key, value),
            (expected_key, expected_value),
            "{what}: entry {i}"
        );
    }
}

/// `writers` restores of one new store at once, `rounds` times per durable backend.
fn concurrent_restores(writers: usize) {
    let Some(servers) = single_broker() else {
        return;
    };
    let app = unique_name("cli-writers");
    common::append_records(&servers, &app, 1, 0..RECORDS);
    let rounds = rounds("STATESTORE_CONCURRENT_ROUNDS", ROUNDS);
    for backend in durable_backends() {
        let raced = AtomicUsize::new(0);
        in_batches(rounds, |round| {
            let what = format!("{backend}, {writers} restores, round {round}");
            let dir = tempfile::tempdir().unwrap();
            let restore = restore_args(&servers, dir.path(), &app, backend);
            let children: Vec<Child> = (0..writers).map(|_| spawn(&restore)).collect();
            let pids: Vec<u32> = children.iter().map(Child::id).collect();
            let outputs: Vec<Output> = children
                .into_iter()
                .map(|child| child.wait_with_output().unwrap())
                .collect();
            let mut won = 0;
            for (index, output) in outputs.iter().enumerate() {
                if output.status.success() {
                    won += 1;
                    continue;
                }
                let others: Vec<u32> = pids
                    .iter()
                    .enumerate()
                    .filter(|&(other, _)| other != index)
                    .map(|(_, &pid)| pid)
                    .collect();
                assert_lost_to(output, &others, "restore", &what);
            }
            // Those that did not overlap both succeed: the later one finds the store
            // restored and has nothing to do.
            assert!(won >= 1, "{what}: nobody won");
            if won < writers {
                raced.fetch_add(1, Ordering::Relaxed);
            }
            assert_restored(backend, dir.path(), &app, &what);
            assert_no_leftovers(dir.path(), &what);
        });
        let raced = raced.into_inner();
        println!("{backend}, {writers} restores: {raced} of {rounds} rounds had a loser");
        // Processes started together overlap: rounds that never did would prove nothing.
        assert!(
            rounds < 10 || raced > 0,
            "{backend}, {writers} restores: no round of {rounds} had two writers at once"
        );
    }
}

#[test]
fn on_a_real_broker_two_restores_of_one_new_store_leave_one_valid_store() {
    concurrent_restores(2);
}

#[test]
fn on_a_real_broker_three_restores_of_one_new_store_leave_one_valid_store() {
    concurrent_restores(3);
}

/// The demo's stdout, read on a thread of its own: its application id as soon as it is
/// printed, all of it at the end.
fn demo_output(child: &mut Child) -> (mpsc::Receiver<String>, std::thread::JoinHandle<String>) {
    let stdout = child.stdout.take().unwrap();
    let (id_tx, id_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("application ")
                && let Some((id, _)) = rest.split_once(':')
            {
                let _ = id_tx.send(id.to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (id_rx, reader)
}

/// A `restore` of the stores a running `demo` writes, in the same state directory: in
/// even rounds instance A's, which the demo holds when the restore starts; in odd rounds
/// instance B's, which the demo opens later. Whichever of the two finds the stores in use
/// fails naming the other's process; the demo is otherwise never disturbed, and a store
/// the restore wrote equals its changelog.
#[test]
fn on_a_real_broker_a_restore_beside_a_demo_one_wins() {
    let Some(servers) = single_broker() else {
        return;
    };
    let rounds = rounds("STATESTORE_DEMO_ROUNDS", DEMO_ROUNDS);
    for backend in durable_backends() {
        in_batches(rounds, |round| {
            let what = format!("{backend}, restore + demo, round {round}");
            let dir = tempfile::tempdir().unwrap();
            let state_dir = dir.path().to_str().unwrap();
            let mut demo = Command::new(BIN)
                .args([
                    "demo",
                    "--bootstrap-servers",
                    &servers,
                    "--backend",
                    backend,
                    "--partitions",
                    "1",
                    "--purchases",
                    "1000",
                    "--state-dir",
                    state_dir,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (id, stdout) = demo_output(&mut demo);
            let mut demo_stderr = demo.stderr.take().unwrap();
            let stderr = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut demo_stderr, &mut text);
                text
            });
            let app = id
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|err| panic!("{what}: the demo named no application: {err}"));
            // The demo's root is `<state-dir>/<application>`, its instances' state
            // directories `a` and `b` in it.
            let a = dir.path().join(&app).join("a");
            let lock = a.join(&app).join("0").join(statestore::LOCK_FILE_NAME);
            let target = if round % 2 == 0 {
                a.clone()
            } else {
                dir.path().join(&app).join("b")
            };
            // Started once instance A holds its partition (or has already let it go).
            let started = try_eventually(Duration::from_secs(60), "instance A's lock", || {
                lock.exists() || dir.path().join(&app).join("b").exists()
            });
            assert!(started.is_ok(), "{what}: {started:?}");
            let restore = spawn(&args(&[
                &[
                    "restore",
                    "--bootstrap-servers",
                    &servers,
                    "--timeout",
                    "30",
                ],
                &["--partitions", "0", "--exactly-once"],
                &location(&target, &app, backend)
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ]));
            let restore_pid = restore.id();
            let restored = restore.wait_with_output().unwrap();
            let demo_pid = demo.id();
            let demo_status = demo.wait().unwrap();
            let demo_text = stdout.join().unwrap();
            let demo_err = stderr.join().unwrap();
            let demo_output = Output {
                status: demo_status,
                stdout: demo_text.clone().into_bytes(),
                stderr: demo_err.clone().into_bytes(),
            };
            if demo_status.success() {
                assert!(
                    demo_text.contains("verified: the totals"),
                    "{what}: {demo_text}{demo_err}"
                );
            } else {
                assert_lost_to(&demo_output, &[restore_pid], "restore", &what);
                assert!(
                    restored.status.success(),
                    "{what}: both failed: {}{demo_text}{demo_err}",
                    text(&restored)
                );
            }
            println!(
                "{what}: {}",
                match (restored.status.success(), demo_status.success()) {
                    (true, true) => "one after the other",
                    (true, false) => "the demo lost to the restore",
                    _ => "the restore lost to the demo",
                }
            );
            if restored.status.success() {
                // What it restored is the changelog (as far as its last committed
                // transaction), as verify says.
                let verify = common::run_owned(&args(&[
                    &["verify", "--bootstrap-servers", &servers, "--timeout", "30"],
                    &["--partition", "0", "--exactly-once"],
                    &location(&target, &app, backend)
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ]));
                // Unless the restore came while instance A had let go of a store it
                // never committed to and the demo had committed nothing yet: it then
                // applied nothing and kept the demo's store as it was, without a
                // position, which verify rightly refuses to call verified.
                let applied_nothing = text(&restored).contains("restored 0 records");
                let no_position = text(&verify).contains("the store has no position");
                assert!(
                    verify.status.code() == Some(0)
                        || (verify.status.code() == Some(1) && applied_nothing && no_position),
                    "{what}: {}\nafter the restore: {}",
                    text(&verify),
                    text(&restored)
                );
            } else {
                assert_lost_to(&restored, &[demo_pid], "demo", &what);
            }
            assert_no_leftovers(dir.path(), &what);
        });
    }
}
