//! Damaged local files: opening reports a clear error naming the path, and building the
//! store through the restore path rebuilds it identically from the changelog.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::serde::Serdes;
use state_core::{ErrorKind, StoreBuilder, StoreContext, WipeReason};

use crate::harness::{BackendFactory, block_on};

/// How the local files get damaged.
#[derive(Debug, Clone, Copy)]
pub enum Damage {
    /// Every file cut to half its length (a torn copy, a full disk).
    TruncateHalf,
    /// Bytes in the middle of every file overwritten (bit rot, a bad sector).
    GarbleMiddle,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn damage(dir: &Path, how: Damage) {
    for file in files(dir) {
        let mut bytes = std::fs::read(&file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        match how {
            Damage::TruncateHalf => bytes.truncate(bytes.len() / 2),
            Damage::GarbleMiddle => {
                let mid = bytes.len() / 2;
                let end = (mid + 64).min(bytes.len());
                for b in &mut bytes[mid.saturating_sub(64)..end] {
                    *b ^= 0xA5;
                }
            }
        }
        std::fs::write(&file, bytes).unwrap();
    }
}

/// Writes through the builder, closes, damages the files, checks that opening fails with
/// a `Corruption` error naming the path, and that `build` rebuilds the same contents.
pub fn damaged_files_are_rebuilt_from_the_changelog(backend: &dyn BackendFactory, how: Damage) {
    if !backend.supplier("probe").durable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let changelog = Arc::new(InMemoryChangelog::new());
    let context = StoreContext::new("shop", 0, 1, root.path())
        .unwrap()
        .with_changelog(changelog.clone());
    let builder = StoreBuilder::new(backend.supplier("rewards"), Serdes::string(), Serdes::i64())
        .with_logging_enabled(HashMap::new());
    let mut store = block_on(builder.build(&context)).unwrap();
    for i in 0..2_000i64 {
        store.put(&format!("customer-{i:05}"), &(i * 3)).unwrap();
        if i % 500 == 499 {
            block_on(store.commit()).unwrap();
        }
    }
    let written: Vec<(String, i64)> = store.all().unwrap().collect::<Result<_, _>>().unwrap();
    store.close().unwrap();

    let dir = context.store_dir("rewards").unwrap();
    damage(&dir, how);
    let err = match backend.supplier("rewards").open(&dir) {
        Ok(_) => panic!(
            "{} opened damaged files ({how:?}) without an error",
            backend.name()
        ),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Corruption, "{how:?}: {err}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "the error must name the path {}: {err}",
        dir.display()
    );

    let rebuilt = block_on(builder.build(&context)).unwrap();
    let summary = rebuilt.restore_summary().unwrap();
    assert!(
        matches!(summary.wiped, Some(WipeReason::CorruptLocalState(_))),
        "the rebuild must be reported: {summary:?}"
    );
    assert_eq!(summary.restored, 2_000);
    let restored: Vec<(String, i64)> = rebuilt.all().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(restored, written);
}
