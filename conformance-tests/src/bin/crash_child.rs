//! The child process of the kill tests: writes and commits through the logging layer into
//! a durable store and a file changelog, forever, until the parent kills it with SIGKILL.
//!
//! Usage: `crash_child BACKEND STORE_DIR LOG_FILE JOURNAL_FILE SEED`. After each
//! successful commit it appends the number of operations committed to the journal.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use conformance_tests::file_log::FileSink;
use conformance_tests::kill::{KILL_PARTITION, KILL_TOPIC, Workload};
use state_core::LoggedStore;

fn main() {
    if let Err(err) = run() {
        eprintln!("crash_child: {err}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, dir, log, journal, seed] = args.as_slice() else {
        return Err("usage: crash_child BACKEND STORE_DIR LOG_FILE JOURNAL_FILE SEED".into());
    };
    let backend = conformance_tests::backends()
        .into_iter()
        .find(|b| b.name() == backend)
        .ok_or_else(|| format!("backend {backend} is not compiled in"))?;
    let store = backend.supplier("kill-store").open(&PathBuf::from(dir))?;
    let sink = FileSink::open(&PathBuf::from(log), KILL_TOPIC, KILL_PARTITION)?;
    let mut logged = LoggedStore::new(store, Arc::new(sink), KILL_PARTITION);
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
            futures::executor::block_on(logged.commit())?;
            writeln!(journal, "{done}")?;
        }
    }
}
