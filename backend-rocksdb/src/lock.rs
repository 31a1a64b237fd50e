//! Who holds a store for writing, found without taking or disturbing any lock.
//!
//! RocksDB marks an open database with a POSIX record lock (`fcntl(F_SETLK)`) on its
//! `LOCK` file. A read-only open takes no lock, so on its own it would read a store while
//! a writer changes it and never say so. `fcntl(F_GETLK)` asks who holds the lock without
//! taking it. One trap: closing *any* descriptor of a file drops every POSIX lock this
//! process holds on that file, so probing a `LOCK` file that a writer in this very
//! process holds would silently unlock the writer's database. Read-write opens therefore
//! register their directory here first; a probe of a registered directory answers "this
//! process" without opening the file, and one mutex keeps probes and registrations from
//! interleaving.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Store directories (device, inode) open for writing in this process, with a count: a
/// second open of the same directory registers too before RocksDB refuses it.
static WRITERS: Mutex<BTreeMap<(u64, u64), usize>> = Mutex::new(BTreeMap::new());

/// Who holds a store's `LOCK` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A store handle of this process.
    ThisProcess,
    /// Another process, with its id when the system reports it.
    Process(Option<i32>),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::ThisProcess => f.write_str("a store handle in this process"),
            Holder::Process(Some(pid)) => write!(f, "process {pid}"),
            Holder::Process(None) => f.write_str("another process"),
        }
    }
}

/// Keeps a directory registered as open for writing until dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    key: Option<(u64, u64)>,
}

fn writers() -> MutexGuard<'static, BTreeMap<(u64, u64), usize>> {
    // The map is updated in single statements; a panic elsewhere cannot leave it torn.
    WRITERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers `dir` (which exists) as about to be opened for writing by this process.
pub(crate) fn register(dir: &Path) -> Registration {
    let key = identity(dir);
    if let Some(key) = key {
        *writers().entry(key).or_insert(0) += 1;
    }
    Registration { key }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut writers = writers();
        if let Some(count) = writers.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                writers.remove(&key);
            }
        }
    }
}

/// Who holds `dir`'s `LOCK` file for writing, if anyone; `None` also when it cannot be
/// told (no `LOCK` file, an unreadable one, a system without POSIX locks).
pub(crate) fn holder(dir: &Path) -> Option<Holder> {
    let writers = writers();
    if writers.contains_key(&identity(dir)?) {
        return Some(Holder::ThisProcess);
    }
    let holder = probe(&dir.join("LOCK"));
    // The descriptor is closed inside `probe`, under the guard: no writer of this process
    // can have registered and locked this directory in between.
    drop(writers);
    holder
}

#[cfg(unix)]
fn identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(unix)]
fn probe(lock_file: &Path) -> Option<Holder> {
    use rustix::process::{Flock, FlockType, fcntl_getlk};
    // Opened for reading only: F_GETLK needs no write access, and a read-only store
    // directory stays usable.
    let file = std::fs::File::open(lock_file).ok()?;
    let lock = fcntl_getlk(&file, &Flock::from(FlockType::WriteLock)).ok()??;
    Some(Holder::Process(
        lock.pid.map(|pid| pid.as_raw_nonzero().get()),
    ))
}

#[cfg(not(unix))]
fn identity(_dir: &Path) -> Option<(u64, u64)> {
    None
}

#[cfg(not(unix))]
fn probe(_lock_file: &Path) -> Option<Holder> {
    None
}
