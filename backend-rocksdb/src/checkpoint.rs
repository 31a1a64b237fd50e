//! Checkpoints of a RocksDB store through RocksDB's own Checkpoint, and opening one.
//!
//! **Consistent.** `Checkpoint::create_checkpoint` passes `log_size_for_flush = 0`,
//! which makes RocksDB flush the memtables before it lists the live files
//! (`DBImpl::GetLiveFilesStorageInfo`: only a non-zero size lets it skip the flush and
//! copy the WAL instead). That flush is what puts our writes in the checkpoint at all:
//! the WAL is off by default, so memtable data exists nowhere else. The store's options
//! set `atomic_flush`, so the flush switches the memtables of the data and the meta
//! column family in one step between two write batches: data and position are one
//! commit's. With the WAL on, the live WAL files are copied too and replayed on open,
//! which adds whole write batches after that step (RocksDB drops a torn last record).
//! SST files are hard-linked under their own names, so an SST that survives from one
//! checkpoint to the next keeps its name and its bytes, and a snapshot store keyed by
//! content uploads only the new ones.
//!
//! **Committed only.** Every store write goes straight into the database (a RocksDB
//! write batch per call, none held back until a commit), so writes outside a commit
//! (`put`, `put_if_absent`, `delete`, `write` since the last `write_with_position`)
//! cannot be left out. The logging layer never makes them (its uncommitted writes wait
//! in its own buffer above the store and arrive in `write_with_position` with their
//! position). A store holding some is refused with `Unavailable` until the next commit,
//! and while a checkpoint runs they wait for it (the store's `direct_writes` lock),
//! while commits go on. The position is therefore not the store's cached one, which may
//! move during the checkpoint: it is read back from the checkpoint, whose read-only open
//! also proves the checkpoint opens.
//!
//! **Directories.** The checkpoint is built in a staging directory beside `dir` with a
//! name no other checkpoint uses (RocksDB stages in `<target>.tmp` and deletes what is
//! there first, so two checkpoints sharing a target name would delete each other's
//! files), gets the stamp that marks statestore's RocksDB directories, and is renamed
//! over `dir`, which was created empty first so that an existing `dir` is refused before
//! any work. Opening a checkpoint checks it read-only (stamp, column families, format
//! marker, position), then renames the directory into the store's place and opens it
//! with the supplier's configuration.
//!
//! What the checks on open do not see: RocksDB reads an SST's footer, index and filter
//! when it opens it, and verifies a data block's checksum only when the block is read,
//! so a flipped byte inside a data block is found by the first read of that block (as
//! `Corruption`), not by `open_checkpoint`. The snapshot store checks every file's
//! BLAKE3 checksum on download, which covers it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::Options;
use state_core::{Checkpoint, Error, ErrorKind, Result};

use crate::config::RocksDbConfig;
use crate::error::map_rocksdb_error;
use crate::open::{open_db_read_only, write_stamp};
use crate::probe::{Contents, foreign, probe};
use crate::scan::Db;
use crate::store::RocksDbStore;

/// The version of the checkpoint's files: a stamped RocksDB directory holding the
/// statestore layout `statestore-rocksdb-v1`.
pub(crate) const FORMAT: u32 = 1;

/// The error for a checkpoint asked of a store holding writes made outside a commit.
pub(crate) fn uncommitted(store: &str, path: &Path) -> Error {
    Error::unavailable(format!(
        "rocksdb store {store} at {} holds writes made outside a commit (put, \
         put_if_absent, delete or write since its last write_with_position); a checkpoint \
         holds only committed data with its changelog position, so it can be taken after \
         the next commit",
        path.display()
    ))
}

/// Writes a checkpoint of `db` (the store at `store_path`) into the new directory
/// `dir`; on failure nothing of it is left. `options` open it read-only to check it.
pub(crate) fn write(
    db: &Db,
    store_path: &Path,
    options: &Options,
    dir: &Path,
) -> Result<Checkpoint> {
    state_core::Checkpoint::claim_dir(dir)?;
    let staging = beside(dir, "staging")?;
    let built = build(db, store_path, options, &staging).and_then(|position| {
        std::fs::rename(&staging, dir).map_err(|err| {
            Error::from(err).context(format!(
                "renaming checkpoint {} to {}",
                staging.display(),
                dir.display()
            ))
        })?;
        sync_parent(dir)?;
        Ok(position)
    });
    let position = match built {
        Ok(position) => position,
        Err(err) => {
            // Both ours: `claim` made `dir` (still empty), the name of `staging` is unique.
            let _ = std::fs::remove_dir_all(&staging);
            let _ = std::fs::remove_dir(dir);
            return Err(err);
        }
    };
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        backend: crate::CAPABILITY.backend.to_owned(),
        backend_format: FORMAT,
        position,
        files: Checkpoint::list_files(dir)?,
    })
}

/// RocksDB's checkpoint of `db` in `staging`, stamped; returns the position it holds.
fn build(
    db: &Db,
    store_path: &Path,
    options: &Options,
    staging: &Path,
) -> Result<state_core::Position> {
    let rocks = |err| map_rocksdb_error(err, store_path).context("taking a checkpoint");
    let checkpoint = rocksdb::checkpoint::Checkpoint::new(db).map_err(rocks)?;
    // `create_checkpoint` passes log_size_for_flush = 0: memtables are flushed first.
    checkpoint.create_checkpoint(staging).map_err(rocks)?;
    write_stamp(staging)?;
    let opened = open_db_read_only(staging, options)
        .map_err(|err| err.context("checking the new checkpoint"))?;
    Ok(opened.position)
}

/// Opens the store in `dir` from the checkpoint in `checkpoint`, which is gone on `Ok`
/// and left in place on `Err` (unless the store was taken by another handle meanwhile).
pub(crate) fn open(
    name: String,
    checkpoint: &Path,
    dir: &Path,
    config: &RocksDbConfig,
) -> Result<RocksDbStore> {
    let options = config.to_options(dir)?;
    match probe(checkpoint)? {
        Contents::Stamped => {}
        Contents::Nothing if !checkpoint.exists() => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no checkpoint at {}", checkpoint.display()),
            ));
        }
        Contents::Nothing => {
            return Err(foreign(
                checkpoint,
                "it is an empty directory, not a checkpoint",
            ));
        }
        // Our checkpoints are always stamped.
        Contents::Unstamped => {
            return Err(foreign(
                checkpoint,
                "it is a RocksDB database without statestore's stamp, not a checkpoint \
                 statestore wrote",
            ));
        }
    }
    // Column families, format marker and position, with nothing written; damage here is
    // `Corruption` (the directory is stamped).
    drop(
        open_db_read_only(checkpoint, &options)
            .map_err(|err| err.context("checking checkpoint"))?,
    );
    match probe(dir)? {
        Contents::Nothing => {}
        Contents::Stamped | Contents::Unstamped => {
            return Err(Error::invalid_input(format!(
                "{} already holds a rocksdb store; destroy it before opening a checkpoint \
                 there",
                dir.display()
            )));
        }
    }
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|err| Error::from(err).context(format!("creating {}", parent.display())))?;
    }
    // Replaces `dir` only if it is an empty directory; a directory that gained files
    // meanwhile makes it fail, and nothing is lost.
    std::fs::rename(checkpoint, dir).map_err(|err| {
        Error::from(err).context(format!(
            "moving checkpoint {} into place as {}",
            checkpoint.display(),
            dir.display()
        ))
    })?;
    sync_parent(dir)?;
    RocksDbStore::open(name, dir, config).map_err(|err| {
        // Another handle that opened the store meanwhile keeps it; otherwise the
        // checkpoint goes back (with whatever the failed open wrote, all RocksDB's own).
        if err.kind() == ErrorKind::Unavailable {
            return err;
        }
        match std::fs::rename(dir, checkpoint) {
            Ok(()) => err,
            Err(back) => err.context(format!(
                "the checkpoint stays at {} ({back})",
                dir.display()
            )),
        }
    })
}

/// A path beside `dir` that no other checkpoint, in this process or any other live one,
/// uses: `.<dir name>.<pid>-<n>.<what>`.
fn beside(dir: &Path, what: &str) -> Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = dir.file_name().ok_or_else(|| {
        Error::invalid_input(format!(
            "checkpoint directory {} has no name",
            dir.display()
        ))
    })?;
    Ok(dir.with_file_name(format!(
        ".{}.{}-{}.{what}",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )))
}

/// Makes a rename of `dir` durable.
fn sync_parent(dir: &Path) -> Result<()> {
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|parent| parent.sync_all())
        .map_err(|err| Error::from(err).context(format!("syncing {}", parent.display())))
}
