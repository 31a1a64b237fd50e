//! The child process of the kill tests: writes and commits through the logging layer into
//! a store and a changelog, forever, until the parent kills it with SIGKILL.
//!
//! Usage: `crash_child BACKEND STORE_DIR CHANGELOG JOURNAL_FILE SEED`, where CHANGELOG is
//! `file:PATH` (a file changelog, at-least-once) or
//! `kafka:BOOTSTRAP:TOPIC:at_least_once|exactly_once` (a real broker; the transactional id
//! is `<TOPIC>-txn`). After each successful commit it appends the number of operations
//! committed to the journal.

use std::io::Write;
use std::path::PathBuf;

use conformance_tests::block_on;
use conformance_tests::kill::{KILL_PARTITION, Workload, open_sink};
use state_core::LoggedStore;

fn main() {
    if let Err(err) = run() {
        eprintln!("crash_child: {err}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, dir, changelog, journal, seed] = args.as_slice() else {
        return Err("usage: crash_child BACKEND STORE_DIR CHANGELOG JOURNAL_FILE SEED".into());
    };
    let backend = conformance_tests::backend(backend)?;
    let (sink, topic) = open_sink(changelog)?;
    let store = backend.supplier("kill-store").open(&PathBuf::from(dir))?;
    let mut logged = LoggedStore::new(store, sink, topic, KILL_PARTITION);
    let mut journal = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)?;
    let mut workload = Workload::new(seed.parse()?);
    let mut done = 0u64;
    loop {
        let (op, commit_after) = workload.next_op();
        op.apply_logged(&logged)?;
        done += 1;
        if commit_after {
            block_on(logged.commit())?;
            writeln!(journal, "{done}")?;
        }
    }
}
