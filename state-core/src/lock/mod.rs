//! One writer per store partition, across processes: the partition directory's lock.
//!
//! Like Kafka Streams' task-directory `.lock` (`StateDirectory`), every process that
//! creates, restores, replaces, writes or destroys the stores of a partition first takes
//! an exclusive lock on [`LOCK_FILE_NAME`] in the partition's directory
//! (`<state_dir>/<application>/<partition>/`, [`StoreContext::partition_dir`]) and holds
//! it until its stores there are closed. A second process finds it taken and fails at
//! once with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) naming the
//! holder (process id, command line and since when, which the holder writes into the
//! file) and the lock file; it never waits, and it touches no store file.
//!
//! The engines lock their own files too (redb a `flock` on its file, RocksDB its `LOCK`
//! file), but only while a handle is open: not while a store is being created, nor
//! between closing a store and destroying or replacing its files (a failed first restore,
//! a snapshot taking the local store's place). That is where two writers deleted each
//! other's files; this lock covers the whole span.
//!
//! **Within one process the lock is shared.** A store manager opens a partition as a
//! standby and later as active, or a revoked active's stores stay open as standbys, while
//! another task of the same process opens the next store of the partition: excluding
//! itself would stall it. So the first [`PartitionLock::acquire`] in a process takes the
//! file lock and later ones only count; the lock is released when the last guard drops.
//! Inside a process the engines' own locks still keep two handles off one store.
//!
//! **The file exists only while held.** The last guard removes the lock file before it
//! unlocks it, so a state directory nobody uses holds no lock files, and a run that
//! leaves no store leaves no directory behind. Removing a lock file safely needs one more
//! step from acquirers: after locking, a process checks that the path still names the
//! file it locked (a holder may have removed it between the open and the lock) and
//! starts over if it does not.
//!
//! **Readers create nothing.** [`PartitionLock::check`] (for `inspect` and `verify`)
//! opens an existing lock file read-only and asks for a shared lock it drops at once: a
//! held lock is reported, and no byte on disk changes.
//!
//! The lock is `flock(2)` through [`std::fs::File::try_lock`]: released by the kernel
//! when the holder dies, however it dies (a `kill -9` leaves a file, never a held lock).
//! Where the filesystem has no such locks (some network filesystems), acquiring goes on
//! without one and logs a warning, as the engines do.
//!
//! [`StoreContext::partition_dir`]: crate::StoreContext::partition_dir

mod holder;
mod store;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use holder::Holder;
pub(crate) use store::LockedStore;

use crate::{Error, Result};

/// The lock file's name in a partition directory.
pub const LOCK_FILE_NAME: &str = ".lock";

/// Tries before giving up when the directory or the lock file keeps being removed under
/// an acquirer (another process releasing, or removing directories it left empty).
const ATTEMPTS: usize = 20;

/// The partition directories this process holds, by canonical path.
static HELD: Mutex<BTreeMap<PathBuf, Held>> = Mutex::new(BTreeMap::new());

/// One held partition directory.
struct Held {
    /// Guards alive in this process.
    count: usize,
    /// The open lock file, holding the file lock.
    file: File,
    path: PathBuf,
}

fn held() -> MutexGuard<'static, BTreeMap<PathBuf, Held>> {
    // Entries are inserted and removed in single statements: a panic leaves none torn.
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A held writer lock on a partition directory; released when the last guard of this
/// process for that directory drops (see the [module docs](self)). Cloning counts.
#[derive(Debug)]
pub struct PartitionLock {
    /// The canonical partition directory.
    key: PathBuf,
}

impl PartitionLock {
    /// Takes the writer lock of `partition_dir`, creating the directory and its lock file
    /// when missing; in a process that already holds it, counts one more guard.
    ///
    /// Another process holding it is [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)
    /// naming that process, its command line, since when it holds the lock, and the lock
    /// file; the directory is left as it is. I/O failures name the path.
    pub fn acquire(partition_dir: &Path) -> Result<Self> {
        for _ in 0..ATTEMPTS {
            let key = match prepare(partition_dir) {
                Ok(key) => key,
                // Removed while empty by another process just after it was created.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(Error::from(err).context(format!(
                        "creating the partition directory {}",
                        partition_dir.display()
                    )));
                }
            };
            let mut held = held();
            if let Some(entry) = held.get_mut(&key) {
                entry.count += 1;
                return Ok(Self { key });
            }
            let path = key.join(LOCK_FILE_NAME);
            if let Some(file) = take(&path, partition_dir)? {
                held.insert(
                    key.clone(),
                    Held {
                        count: 1,
                        file,
                        path,
                    },
                );
                return Ok(Self { key });
            }
        }
        Err(Error::unavailable(format!(
            "could not lock the partition directory {}: its lock file kept being removed \
             while it was being locked ({ATTEMPTS} tries)",
            partition_dir.display()
        )))
    }

    /// Whether another process holds `partition_dir`'s writer lock, found without creating
    /// or changing anything: `Ok` when nobody else does (no directory, no lock file, or a
    /// free one), [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) naming the
    /// holder otherwise. Read-only opens call it; they hold nothing afterwards.
    pub fn check(partition_dir: &Path) -> Result<()> {
        let Ok(key) = partition_dir.canonicalize() else {
            return Ok(());
        };
        if held().contains_key(&key) {
            // This process writes there; its stores' own locks decide.
            return Ok(());
        }
        let path = key.join(LOCK_FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => {
                return Err(Error::from(err).context(format!("opening {}", path.display())));
            }
        };
        match file.try_lock_shared() {
            // Dropping the file releases the shared lock.
            Ok(()) | Err(TryLockError::Error(_)) => Ok(()),
            // A holder that is just removing it is gone: nothing to report.
            Err(TryLockError::WouldBlock) if !same_file(&file, &path) => Ok(()),
            Err(TryLockError::WouldBlock) => Err(taken(partition_dir, &path, &file)),
        }
    }

    /// The lock file.
    pub fn file(&self) -> PathBuf {
        self.key.join(LOCK_FILE_NAME)
    }
}

impl Clone for PartitionLock {
    fn clone(&self) -> Self {
        if let Some(entry) = held().get_mut(&self.key) {
            entry.count += 1;
        }
        Self {
            key: self.key.clone(),
        }
    }
}

impl Drop for PartitionLock {
    fn drop(&mut self) {
        let mut held = held();
        let Some(entry) = held.get_mut(&self.key) else {
            return;
        };
        entry.count -= 1;
        if entry.count > 0 {
            return;
        }
        let Some(entry) = held.remove(&self.key) else {
            return;
        };
        // Removed while still locked, and under `HELD`: an acquirer in this process waits
        // for the mutex, one in another process finds the name gone or a new file.
        if let Err(err) = std::fs::remove_file(&entry.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            log::warn!(
                "could not remove the lock file {}: {err}",
                entry.path.display()
            );
        }
        drop(entry.file);
    }
}

/// Creates `dir` and returns its canonical path.
fn prepare(dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    dir.canonicalize()
}

/// Opens and locks the lock file at `path` and records this process in it; `None` when
/// the file was removed meanwhile (try again).
fn take(path: &Path, dir: &Path) -> Result<Option<File>> {
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(
                Error::from(err).context(format!("opening the lock file {}", path.display()))
            );
        }
    };
    match file.try_lock() {
        Ok(()) => {}
        // Released and removed between the open and the lock: not a holder, try again.
        Err(TryLockError::WouldBlock) if !same_file(&file, path) => return Ok(None),
        Err(TryLockError::WouldBlock) => return Err(taken(dir, path, &file)),
        Err(TryLockError::Error(err)) => {
            log::warn!(
                "no lock on {} ({err}): this filesystem cannot keep a second process from \
                 writing the stores of {}",
                path.display(),
                dir.display()
            );
        }
    }
    if !same_file(&file, path) {
        // Locked a file its holder removed on release: the lock is on a dead name.
        return Ok(None);
    }
    let record = Holder::this_process().record();
    (&file)
        .write_all(record.as_bytes())
        .and_then(|()| file.set_len(record.len() as u64))
        .map_err(|err| {
            Error::from(err).context(format!("writing the lock file {}", path.display()))
        })?;
    Ok(Some(file))
}

/// The error for a lock another process holds, naming it.
fn taken(dir: &Path, path: &Path, file: &File) -> Error {
    let mut text = String::new();
    // Unreadable or being written: the holder is then named as unknown.
    let _ = (&*file).take(4096).read_to_string(&mut text);
    let holder = Holder::parse(&text);
    Error::unavailable(format!(
        "the stores of partition directory {} are in use by another writer: {holder}; only \
         one process at a time may create, restore, write or remove them (lock file {})",
        dir.display(),
        path.display()
    ))
}

/// Whether `path` still names the file `file` has open.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Whether `path` still names the file `file` has open (assumed where it cannot be told).
#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

#[cfg(test)]
mod tests;
