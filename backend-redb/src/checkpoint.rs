//! Checkpoints of a redb store: a logical copy of one read transaction into a new redb
//! file of the same layout, and opening such a copy as a store.
//!
//! **Consistent.** A redb read transaction is a snapshot of one commit: the data table
//! and the position in the meta table are read from the same one, whatever writers
//! commit meanwhile. Copying the file's bytes instead would not be: writers keep
//! changing pages while a copy runs. The copy goes into a file created under a unique
//! temporary name in the new directory and gets the store's name only once committed
//! (`Immediate`) and closed, so the directory never holds a partial file under that
//! name. Its cost is a read of every entry and a write of each into a B-tree that grows
//! in key order (1.4 s for a million 50-byte entries here, the crate docs say more);
//! the source's read transaction pins the pages later commits replace until the copy is
//! done. Only the read transaction's start holds the store
//! ([`KeyValueStore::begin_checkpoint`](state_core::KeyValueStore::begin_checkpoint));
//! the copy runs when the checkpoint is finished, for the store manager's snapshots on
//! the uploader's side, off the commit path. Closing the store ends copies not started
//! and waits for those running (`src/copies.rs`).
//!
//! **Committed only.** Every store write is a redb commit, visible to every later read
//! transaction the moment it returns; there is no buffer to leave out. What a
//! checkpoint must not hold is writes the position does not cover (`put`,
//! `put_if_absent`, `delete`, `write` since the last `write_with_position`). The
//! logging layer never makes those: its uncommitted writes wait in its own buffer above
//! the store and arrive in `write_with_position` with their position. A store written
//! directly since its last commit is refused with `Unavailable` until the next commit.
//! Leaving such writes out exactly would mean holding a read transaction from the first
//! of them until the next commit; for a store that is never committed (logging off)
//! that pins every page forever and the file only grows.
//!
//! **Opening.** The checkpoint's file is checked as a read-only open checks a store
//! (whatever the supplier's configuration asks: the integrity of every page, our
//! tables and format marker, the position) without a byte written, then moved into the
//! store directory by a hard link (which never replaces a file that appeared there) and
//! opened with the supplier's configuration. What redb's check does not see, such as a
//! flipped byte in a page no table uses, is harmless to the store; the snapshot store
//! checks each file's BLAKE3 checksum on download besides.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadTransaction, ReadableTable};
use state_core::{Checkpoint, Error, ErrorKind, PendingCheckpoint, Position, Result};

use crate::config::RedbConfig;
use crate::copies::Parked;
use crate::error::{map_io_error, map_redb_error};
use crate::layout::{self, DATA, META, POSITION_KEY};
use crate::open::{builder, checked_read_only, open_writable};
use crate::probe::{Contents, probe};
use crate::store::RedbStore;

/// The version of the checkpoint's files: the store file itself, in layout
/// [`FORMAT_V1`](crate::layout::FORMAT_V1).
pub(crate) const FORMAT: u32 = 1;

/// The error for a checkpoint asked of a store holding writes made outside a commit.
pub(crate) fn uncommitted(store: &str, path: &Path) -> Error {
    Error::unavailable(format!(
        "redb store {store} at {} holds writes made outside a commit (put, put_if_absent, \
         delete or write since its last write_with_position); a checkpoint holds only \
         committed data with its changelog position, so it can be taken after the next \
         commit",
        path.display()
    ))
}

/// Claims the new directory `dir` for a copy of what the parked read transaction `source`
/// sees of the store at `store_path`, and leaves the copy itself to
/// [`PendingCheckpoint::finish`]: the transaction already fixes what the checkpoint
/// holds, so the store can go on. On failure, and when the store closed before the copy
/// started, nothing of it is left.
pub(crate) fn begin(
    source: Parked,
    store_path: Arc<Path>,
    config: RedbConfig,
    dir: &Path,
) -> Result<PendingCheckpoint> {
    Checkpoint::claim_dir(dir)?;
    let claimed = dir.to_path_buf();
    Ok(PendingCheckpoint::deferred(claimed.clone(), move || {
        let copied = match source.start() {
            // Dropping `running` when the copy is done frees the source's pages for reuse
            // and lets the store close.
            Some(running) => write_claimed(running.source(), &store_path, &config, &claimed),
            None => Err(Error::new(
                ErrorKind::Closed,
                format!(
                    "redb store at {} was closed before its checkpoint into {} was written",
                    store_path.display(),
                    claimed.display()
                ),
            )),
        };
        copied.map_err(|err| remove_claimed(&claimed, err))
    }))
}

/// `err`, after removing the claimed directory `dir` (ours alone).
fn remove_claimed(dir: &Path, err: Error) -> Error {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => err,
        Err(left) => err.context(format!(
            "checkpoint {} failed and could not be removed ({left})",
            dir.display()
        )),
    }
}

fn write_claimed(
    source: &ReadTransaction,
    store_path: &Path,
    config: &RedbConfig,
    dir: &Path,
) -> Result<Checkpoint> {
    let temp = dir.join(format!(".{}.{}.creating", config.file_name(), unique()));
    let position = copy(source, store_path, config, &temp)?;
    let path = dir.join(config.file_name());
    std::fs::rename(&temp, &path).map_err(|err| map_io_error(&path, "rename checkpoint", err))?;
    sync_dir(dir)?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        backend: crate::CAPABILITY.backend.to_owned(),
        backend_format: FORMAT,
        position,
        files: Checkpoint::list_files(dir)?,
    })
}

/// Writes the data and position `source` sees into a new redb file at `temp`, laid out
/// as a store, committed and closed; returns the position.
fn copy(
    source: &ReadTransaction,
    store_path: &Path,
    config: &RedbConfig,
    temp: &Path,
) -> Result<Position> {
    let data = source
        .open_table(DATA)
        .map_err(on(store_path, "open data table for a checkpoint"))?;
    let meta = source
        .open_table(META)
        .map_err(on(store_path, "open meta table for a checkpoint"))?;
    let position = layout::read_position(&meta, store_path)?;

    let db = builder(config)
        .create(temp)
        .map_err(on(temp, "create checkpoint file"))?;
    layout::initialize(&db, temp)?;
    let txn = db
        .begin_write()
        .map_err(on(temp, "begin checkpoint copy"))?;
    {
        let mut table = txn
            .open_table(DATA)
            .map_err(on(temp, "open checkpoint data"))?;
        for entry in data
            .iter()
            .map_err(on(store_path, "read data for a checkpoint"))?
        {
            let (key, value) = entry.map_err(on(store_path, "read data for a checkpoint"))?;
            table
                .insert(key.value(), value.value())
                .map_err(on(temp, "copy data into the checkpoint"))?;
        }
        // As in the store: an absent position is the empty one.
        if !position.is_empty() {
            let mut meta = txn
                .open_table(META)
                .map_err(on(temp, "open checkpoint meta"))?;
            meta.insert(POSITION_KEY, position.encode().as_slice())
                .map_err(on(temp, "write checkpoint position"))?;
        }
    }
    txn.commit().map_err(on(temp, "commit checkpoint copy"))?;
    db.close().map_err(on(temp, "close checkpoint file"))?;
    Ok(position)
}

/// Maps any redb error raised doing `action` on the file at `path`.
fn on<'a, E: Into<redb::Error>>(path: &'a Path, action: &'a str) -> impl FnOnce(E) -> Error + 'a {
    move |err| map_redb_error(path, action, err)
}

/// Opens the store in `dir` from the checkpoint in `checkpoint`, which is gone on `Ok`
/// and left as it was on `Err`.
pub(crate) fn open(
    name: String,
    checkpoint: &Path,
    dir: &Path,
    config: &RedbConfig,
) -> Result<RedbStore> {
    config.validate()?;
    let source = inspect(checkpoint, config.file_name())?;
    // Integrity (if the configuration checks it), tables, marker and position, with
    // nothing written: a refused checkpoint stays as it is.
    drop(checked_read_only(&source, config)?);
    let target = dir.join(config.file_name());
    take(&source, dir, &target)?;
    // Checked just above, and no one else has the file: a second check would only read
    // it all again.
    let unchecked = config.clone().with_check_integrity_on_open(false);
    match open_writable(dir, &unchecked) {
        Ok(db) => Ok(RedbStore::opened(name, dir, config, db)),
        Err(err) => Err(give_back(&target, checkpoint, &source, err)),
    }
}

/// The store file in `checkpoint`, a directory holding it and nothing else, and
/// starting as redb files do.
fn inspect(checkpoint: &Path, file_name: &str) -> Result<PathBuf> {
    match std::fs::metadata(checkpoint) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no checkpoint at {}", checkpoint.display()),
            ));
        }
        Err(err) => return Err(map_io_error(checkpoint, "inspect checkpoint", err)),
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::invalid_input(format!(
                "checkpoint {} is not a directory",
                checkpoint.display()
            )));
        }
        Ok(_) => {}
    }
    // A checkpoint opens with the file name it was written with.
    Checkpoint::sole_file(checkpoint, file_name, "redb")?;
    match probe(checkpoint, file_name)? {
        Contents::Redb => Ok(checkpoint.join(file_name)),
        // Listed a moment ago: removed meanwhile.
        Contents::Nothing => Err(Error::new(
            ErrorKind::NotFound,
            format!("checkpoint {} vanished", checkpoint.display()),
        )),
    }
}

/// Moves `source` to `target` in `dir`, which must hold no store, and removes the
/// emptied checkpoint directory. A hard link first, so a file that appeared under the
/// store's name meanwhile is never replaced, and the checkpoint's name goes only once
/// the store's is durable.
fn take(source: &Path, dir: &Path, target: &Path) -> Result<()> {
    let file_name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    if probe(dir, &file_name)? == Contents::Redb {
        return Err(Error::invalid_input(format!(
            "{} already holds a redb store; destroy it before opening a checkpoint there",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|err| map_io_error(dir, "create store directory", err))?;
    std::fs::hard_link(source, target).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            Error::invalid_input(format!(
                "{} appeared while a checkpoint was being opened there; it was left as it is",
                target.display()
            ))
        } else {
            map_io_error(target, "link checkpoint into place as", err)
        }
    })?;
    sync_dir(dir)?;
    if let Err(err) = std::fs::remove_file(source) {
        // The checkpoint keeps its file; the store directory gives it back.
        let _ = std::fs::remove_file(target);
        return Err(map_io_error(source, "remove the opened checkpoint", err));
    }
    if let Some(checkpoint) = source.parent()
        && let Err(err) = std::fs::remove_dir(checkpoint)
    {
        // Empty and harmless; the store is in place.
        log::warn!(
            "could not remove the opened checkpoint directory {}: {err}",
            checkpoint.display()
        );
    }
    Ok(())
}

/// After the store in `target` failed to open: the checkpoint gets its file back, and
/// the store directory loses it unless another handle has it open.
fn give_back(target: &Path, checkpoint: &Path, source: &Path, err: Error) -> Error {
    let restored =
        std::fs::create_dir_all(checkpoint).and_then(|()| std::fs::hard_link(target, source));
    if let Err(link) = restored {
        return err.context(format!(
            "opening checkpoint {} as {} failed, and the file stays at {} ({link})",
            checkpoint.display(),
            target.display(),
            target.display()
        ));
    }
    if err.kind() != ErrorKind::Unavailable {
        let _ = std::fs::remove_file(target);
    }
    err.context(format!(
        "opening checkpoint {} as {}",
        checkpoint.display(),
        target.display()
    ))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| map_io_error(dir, "sync", err))
}

/// A name part no other temporary file of this process, or of any other live process,
/// uses: a checkpoint's, or a new store's (`open.rs`).
pub(crate) fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
