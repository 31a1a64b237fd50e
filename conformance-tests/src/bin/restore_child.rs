//! The child process of the kill-mid-restore test (`conformance_tests::kill_restore`):
//! restores the test changelog into a store with durability points, printing each batch's
//! last offset, until the parent kills it with SIGKILL.
//!
//! Usage: `restore_child BACKEND STORE_DIR`.

use std::path::PathBuf;

use conformance_tests::block_on;
use conformance_tests::kill_restore::{PrintBatches, TOPIC, changelog, options};
use state_core::{ProcessingGuarantee, restore};

fn main() {
    if let Err(err) = run() {
        eprintln!("restore_child: {err}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, backend, dir] = args.as_slice() else {
        return Err("usage: restore_child BACKEND STORE_DIR".into());
    };
    let backend = conformance_tests::backend(backend)?;
    let store = backend.supplier("kill-store").open(&PathBuf::from(dir))?;
    let changelog = changelog();
    let reader = changelog.reader_now(TOPIC, ProcessingGuarantee::AtLeastOnce.isolation())?;
    block_on(restore(
        store.as_ref(),
        &reader,
        0,
        &options(),
        &PrintBatches,
    ))?;
    Ok(())
}
