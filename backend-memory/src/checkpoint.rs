//! Checkpoints of a memory store: one sorted dump file ([`crate::dump`]) in a new
//! directory, and the loader that builds a store from it.
//!
//! **Committed only.** A memory store applies every write in place the moment it is
//! made; there is no buffer to leave out. What a checkpoint must not hold is writes the
//! position does not cover: `put`, `put_if_absent`, `delete` and `write` since the last
//! `write_with_position`. The logging layer never makes those (its uncommitted writes
//! wait in its own buffer, above the store, and reach the store only in
//! `write_with_position`, with their position), so a logged store is always checkpointable;
//! a store written directly since its last commit is refused with `Unavailable` until the
//! next commit. Keeping the old value of every key such a write touches would let the
//! dump leave them out instead, at the price of a copy on every direct write and, for a
//! store that is never committed (logging off), memory that only grows; refusing costs
//! one flag.
//!
//! **Consistent.** The entries are copied, framed as the dump holds them, while the
//! store's gate is held shared and its index for reading (see
//! [`Committed`](crate::store::Committed)): no batch commits, no wipe runs and no key
//! enters or leaves meanwhile, so data and position are those of one commit. Gets and
//! scans go on; commits wait for the copy only. The checksum, writing the file and
//! syncing it come after the store is released ([`begin`]: the store manager's snapshots
//! do them on the uploader's side, off the commit path), at the cost of holding the copy,
//! about the size of the store's entries, in memory until then. (Measured here with the
//! file written on the commit path: 0.2–0.3 s for a million entries of 50 bytes, a 50 MB
//! file, fsync included.) Opening reads and checks the dump whole, then builds the store
//! from it on every core (`MemoryStore::load`). The dump is
//! written under a temporary name in the claimed directory and renamed once synced, so
//! the directory never holds a file under the dump's name that is not whole.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use state_core::{Checkpoint, Error, KeyValueStore, PendingCheckpoint, Position, Result};

use crate::dump::{self, Dump, DumpWriter, Framed};
use crate::{CAPABILITY, MemoryStore};

/// The dump's name in a checkpoint directory.
pub(crate) const FILE: &str = "memory.dump";

/// The error for a checkpoint asked of a store holding writes made outside a commit.
pub(crate) fn uncommitted(store: &str) -> Error {
    Error::unavailable(format!(
        "memory store {store} holds writes made outside a commit (put, put_if_absent, \
         delete or write since its last write_with_position); a checkpoint holds only \
         committed data with its changelog position, so it can be taken after the next \
         commit"
    ))
}

/// Writes `store`'s checkpoint into the new directory `dir`; on failure nothing of it is
/// left.
pub(crate) fn write(store: &MemoryStore, dir: &Path) -> Result<Checkpoint> {
    begin(store, dir)?.finish()
}

/// Begins `store`'s checkpoint into the new directory `dir`: encodes the dump in memory
/// while the store is held still, and leaves writing and syncing the file, the slow
/// part, to [`PendingCheckpoint::finish`]. On failure nothing of it is left.
pub(crate) fn begin(store: &MemoryStore, dir: &Path) -> Result<PendingCheckpoint> {
    Checkpoint::claim_dir(dir)?;
    let encoded = encode(store).map_err(|err| remove_claimed(dir, err))?;
    let claimed = dir.to_path_buf();
    Ok(PendingCheckpoint::deferred(claimed.clone(), move || {
        write_claimed(&claimed, encoded).map_err(|err| remove_claimed(&claimed, err))
    }))
}

/// The committed data, framed as the dump holds it, and its position.
struct Encoded {
    entries: Framed,
    position: Position,
}

/// Copies the committed data while the store is held still: only the framing, the
/// checksum is computed as the file is written.
fn encode(store: &MemoryStore) -> Result<Encoded> {
    let io_error = |err: std::io::Error| {
        Error::from(err).context(format!("encoding checkpoint of {}", store.name()))
    };
    let committed = store.committed()?;
    let mut entries = Framed::default();
    committed.for_each(|key, value| entries.entry(key, value).map_err(io_error))?;
    // A direct write to a present key may have run beside the copy.
    committed.check()?;
    Ok(Encoded {
        entries,
        position: committed.position().clone(),
    })
}

fn write_claimed(dir: &Path, encoded: Encoded) -> Result<Checkpoint> {
    let temp = dir.join(format!(".{FILE}.{}.tmp", unique()));
    let io_error = |err: std::io::Error| {
        Error::from(err).context(format!("writing checkpoint {}", temp.display()))
    };
    dump::create(&temp, |out| {
        let mut writer = DumpWriter::new(out, &encoded.position).map_err(io_error)?;
        writer.framed(&encoded.entries).map_err(io_error)?;
        writer.finish().map(drop).map_err(io_error)
    })?;
    let path = dir.join(FILE);
    std::fs::rename(&temp, &path).map_err(|err| {
        Error::from(err).context(format!("renaming {} to {}", temp.display(), path.display()))
    })?;
    sync_dir(dir)?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        backend: CAPABILITY.backend.to_owned(),
        backend_format: dump::FORMAT,
        position: encoded.position,
        files: Checkpoint::list_files(dir)?,
    })
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

/// Builds a store named `name` from the checkpoint in `checkpoint` and removes the
/// checkpoint. The dump is read and checked whole before the store is built, so nothing
/// of a damaged dump is ever served.
pub(crate) fn open(name: &str, checkpoint: &Path) -> Result<MemoryStore> {
    let dump = Dump::read(&inspect(checkpoint)?)?;
    let store = MemoryStore::with_capacity(name, usize::try_from(dump.len()).unwrap_or(0));
    store.load(&dump);
    drop(dump);
    std::fs::remove_dir_all(checkpoint).map_err(|err| {
        Error::from(err).context(format!(
            "removing the opened checkpoint {}",
            checkpoint.display()
        ))
    })?;
    Ok(store)
}

/// The dump in `checkpoint`, a directory holding it and nothing else.
fn inspect(checkpoint: &Path) -> Result<std::path::PathBuf> {
    Checkpoint::sole_file(checkpoint, FILE, "memory")
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| Error::from(err).context(format!("syncing {}", dir.display())))
}

/// A name part no other checkpoint in this process, or any other live process, uses.
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
