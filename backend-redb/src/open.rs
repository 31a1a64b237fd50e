//! Opening a store file: create a new one atomically, open ours, or refuse.
//!
//! redb's own `create` makes the file first and writes its header after, so a crash in
//! between leaves an empty file, which the next open could not tell from someone else's
//! empty file. A new store is therefore built under a temporary name, given its tables
//! and format marker, and only then hard-linked under the store's name (a link never
//! replaces a file that appeared meanwhile).
//!
//! Creators take turns: each holds an exclusive `flock` on the store directory from
//! before its temporary file exists until after that file is gone, looks again for a
//! store once it has its turn (another creator may have just made one: it is used), and
//! only then removes what crashed creations left. Those are provably dead, since their
//! creators no longer hold the directory's lock. Each temporary name is the creator's
//! own besides (process id and a counter), so even where directories cannot be locked
//! no creator touches another's file; leftovers then stay, and opens ignore them. (Two
//! `statestore restore`s of one new store used to share one temporary name and delete
//! each other's as "left by a crash", leaving an empty store behind.) What is found under
//! the store's name is
//! classified by [`probe`] before redb sees it: an empty file, a file without redb's
//! magic bytes, or other files without ours are refused before redb could initialise or
//! touch them.
//!
//! Read-only opens go through a [`ReadOnlyOverlay`] (integrity and layout checked, not a
//! byte written). Writers are told apart by the whole-file `flock` a redb writer holds
//! exclusively (redb keeps taking it for older versions' sake): the read-only open takes
//! it shared, so it fails at once while a writer has the file, and no writer can start
//! while a read-only store is open. redb's own read-only handle is not used: its open
//! reads allocator pages without the checksum check.

use std::fs::TryLockError;
use std::path::Path;

use redb::{Builder, Database};
use state_core::{Error, ErrorKind, Result};

use crate::bulk;
use crate::config::RedbConfig;
use crate::error::{map_io_error, map_redb_error};
use crate::layout;
use crate::overlay::ReadOnlyOverlay;
use crate::probe::{Contents, creating_name, is_creating, probe};

/// Opens the store file in `dir` for writing, creating `dir` and the file when neither
/// holds anything.
pub(crate) fn open_writable(dir: &Path, config: &RedbConfig) -> Result<Database> {
    let path = dir.join(config.file_name());
    if probe(dir, config.file_name())? == Contents::Nothing {
        create(dir, config)?;
    }
    // redb takes the writer's lock before it reads anything, so a live writer is
    // `Unavailable` here rather than a check misreading a file in flux; its integrity
    // check fails before it commits anything to a damaged file. (On another program's
    // sound redb file the check's commit does rewrite the header before `layout::check`
    // refuses it: checking through the overlay first cost a second 60 ms load of the
    // allocator state per open of a 68 MB file.)
    let db = builder(config)
        .open(&path)
        .map_err(|err| map_redb_error(&path, "open", err))?;
    layout::check(&db, &path)?;
    // Runs a bulk load made durable before its process died are merged, other runs it
    // left removed; redb's writer lock, held from here on, keeps them from being another
    // live store's.
    bulk::recover(&db, &path)?;
    Ok(db)
}

/// Opens the existing store file in `dir` without writing anything to disk: no repair,
/// no initialisation on disk; a file a crashed writer left is recovered in memory.
/// Nothing there is `NotFound`; a writer holding the file is `Unavailable`.
pub(crate) fn open_read_only(dir: &Path, config: &RedbConfig) -> Result<Database> {
    let path = dir.join(config.file_name());
    if probe(dir, config.file_name())? == Contents::Nothing {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no redb store at {}: the directory is missing or empty",
                dir.display()
            ),
        ));
    }
    checked_read_only(&path, config)
}

/// The file at `path` opened through a [`ReadOnlyOverlay`] holding a shared lock,
/// integrity-checked (unless the config turns that off) and laid out as ours.
pub(crate) fn checked_read_only(path: &Path, config: &RedbConfig) -> Result<Database> {
    let overlay =
        ReadOnlyOverlay::open(path).map_err(|err| map_io_error(path, "open read-only", err))?;
    match overlay.try_lock_shared() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(Error::unavailable(format!(
                "redb file {} is open for writing (by another process or a store handle in \
                 this process); a read-only open is refused while a writer has it: run it again \
                 once that writer has closed the store",
                path.display()
            )));
        }
        // A filesystem without flock: go on without telling writers apart.
        Err(TryLockError::Error(err)) => {
            log::debug!("no shared lock on {}: {err}", path.display());
        }
    }
    let db = builder(config)
        .create_with_backend(overlay)
        .map_err(|err| map_redb_error(path, "check", err))?;
    layout::check(&db, path)?;
    Ok(db)
}

pub(crate) fn builder(config: &RedbConfig) -> Builder {
    let mut builder = Builder::new();
    builder
        .set_cache_size(config.cache_size())
        .set_check_integrity_on_open(config.check_integrity_on_open());
    builder
}

/// Creates the store file in `dir` under a temporary name and links it into place,
/// unless another creator made one meanwhile.
fn create(dir: &Path, config: &RedbConfig) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|err| map_io_error(dir, "create store directory", err))?;
    let turn = creators_turn(dir)?;
    if probe(dir, config.file_name())? == Contents::Redb {
        // Made by the creator whose turn came first.
        return Ok(());
    }
    if turn.is_some() {
        remove_leftovers(dir, config.file_name())?;
    }
    let path = dir.join(config.file_name());
    let creating = dir.join(creating_name(config.file_name()));
    let db = match builder(config).create(&creating) {
        Ok(db) => db,
        Err(err) => {
            let _ = std::fs::remove_file(&creating);
            return Err(map_redb_error(&creating, "create", err));
        }
    };
    let made = layout::initialize(&db, &creating).and_then(|()| {
        db.close()
            .map_err(|err| map_redb_error(&creating, "close new file", err))
    });
    let linked = made.and_then(|()| match std::fs::hard_link(&creating, &path) {
        // Another process created the store meanwhile, without taking turns (a
        // filesystem without directory locks): use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(map_io_error(&path, "link new redb file", err)),
        Ok(()) => {
            log::info!("created statestore redb file {}", path.display());
            Ok(())
        }
    });
    // Ours alone: removed whether or not it got the store's name.
    let removed = std::fs::remove_file(&creating)
        .map_err(|err| map_io_error(&creating, "remove temporary name of", err));
    linked?;
    removed?;
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| map_io_error(dir, "sync store directory", err))
}

/// Waits for this creator's turn on `dir`: an exclusive `flock` on the directory, held
/// until the returned file drops. `None` where directories cannot be locked.
fn creators_turn(dir: &Path) -> Result<Option<std::fs::File>> {
    let handle =
        std::fs::File::open(dir).map_err(|err| map_io_error(dir, "open store directory", err))?;
    match handle.lock() {
        Ok(()) => Ok(Some(handle)),
        Err(err) => {
            log::debug!("no lock on the directory {}: {err}", dir.display());
            Ok(None)
        }
    }
}

/// Removes the temporary files of creations that crashed; only called on a creator's
/// turn, when no other creation can be under way.
fn remove_leftovers(dir: &Path, file_name: &str) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|err| map_io_error(dir, "list store directory", err))?;
    for entry in entries {
        let entry = entry.map_err(|err| map_io_error(dir, "list store directory", err))?;
        if !is_creating(&entry.file_name().to_string_lossy(), file_name) {
            continue;
        }
        let leftover = entry.path();
        match std::fs::remove_file(&leftover) {
            Ok(()) => log::info!(
                "removed {}, left by a creation that did not finish",
                leftover.display()
            ),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(map_io_error(&leftover, "remove unfinished redb file", err)),
        }
    }
    Ok(())
}
