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
//! **The file exists only while held, and whole.** An acquirer writes its record into a
//! new file under a temporary name of its own, locks it, and only then links it as the
//! lock file: whoever finds the lock file held reads its holder's whole record. The last
//! guard removes the lock file before it unlocks it, so a state directory nobody uses
//! holds no lock files, and a run that leaves no store leaves no directory behind. A lock
//! file a killed holder left (there, not held) is replaced by a rename while its lock is
//! held, so only one acquirer replaces it. Whoever finds a held file checks that the
//! path still names it (it may have been released and removed in between) and starts
//! over if not.
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
use std::fs::{File, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Takes the lock file at `path` for this process; `None` when the directory changed
/// under it (try again).
///
/// The file is made complete before it gets its name: written with this process's record
/// and locked under a temporary name of its own, then hard-linked as the lock file, so
/// whoever finds the lock file held reads its holder's whole record. A lock file that is
/// there but not held (its holder was killed before it could remove it) is replaced with
/// a rename while its lock is held, so two processes never both replace it.
fn take(path: &Path, dir: &Path) -> Result<Option<File>> {
    let temp = temp_name(path);
    let io = |err: io::Error, at: &Path, what: &str| {
        Error::from(err).context(format!("{what} {}", at.display()))
    };
    let file = match File::create_new(&temp) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io(err, &temp, "creating the lock file")),
    };
    let taken = claim(&file, &temp, path, dir);
    if !matches!(taken, Ok(Some(()))) {
        // Not given the lock file's name: the temporary name goes (it may be gone already,
        // taken for a dead process's leftover).
        let _ = std::fs::remove_file(&temp);
    }
    Ok(taken?.map(|()| file))
}

/// Locks the new file `file` at `temp`, records this process in it, and gives it the name
/// `path`; `None` to start over.
fn claim(file: &File, temp: &Path, path: &Path, dir: &Path) -> Result<Option<()>> {
    match file.try_lock() {
        Ok(()) => {}
        // Another acquirer took it for a dead process's leftover and will remove it.
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(err)) => {
            log::warn!(
                "no lock on {} ({err}): this filesystem cannot keep a second process from \
                 writing the stores of {}",
                path.display(),
                dir.display()
            );
        }
    }
    let record = Holder::this_process().record();
    (&*file)
        .write_all(record.as_bytes())
        .map_err(|err| Error::from(err).context(format!("writing {}", temp.display())))?;
    match std::fs::hard_link(temp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(temp);
            remove_dead_temporaries(path);
            return Ok(Some(()));
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        // The temporary file or the directory went meanwhile.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(
                Error::from(err).context(format!("creating the lock file {}", path.display()))
            );
        }
    }
    let existing = match File::open(path) {
        Ok(existing) => existing,
        // Released meanwhile.
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(
                Error::from(err).context(format!("opening the lock file {}", path.display()))
            );
        }
    };
    match existing.try_lock() {
        Err(TryLockError::WouldBlock) if same_file(&existing, path) => {
            Err(taken(dir, path, &existing))
        }
        // Released and removed between the link and the lock.
        Err(TryLockError::WouldBlock) => Ok(None),
        // Not held: left by a holder that was killed. Replaced while its lock is held
        // here, so no other acquirer replaces it at the same time.
        Ok(()) | Err(TryLockError::Error(_)) if same_file(&existing, path) => {
            std::fs::rename(temp, path).map_err(|err| {
                Error::from(err).context(format!("replacing the lock file {}", path.display()))
            })?;
            log::info!(
                "replaced {}, left by a process that was killed",
                path.display()
            );
            remove_dead_temporaries(path);
            Ok(Some(()))
        }
        Ok(()) | Err(TryLockError::Error(_)) => Ok(None),
    }
}

/// A temporary name beside `path` that no other acquirer uses: `<name>.<pid>-<n>`.
fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(
        ".{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

/// Removes temporary lock files beside `path` that nobody holds: left by acquirers that
/// were killed before naming theirs. (One just created and not locked yet may go too; its
/// acquirer then finds its name gone and starts over.)
fn remove_dead_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let leftover = entry.path();
        if let Ok(file) = File::open(&leftover)
            && file.try_lock().is_ok()
        {
            let _ = std::fs::remove_file(&leftover);
        }
    }
}

/// The error for a lock another process holds, naming it.
fn taken(dir: &Path, path: &Path, file: &File) -> Error {
    let mut text = String::new();
    // Unreadable or being written: the holder is then named as unknown.
    let _ = file.take(4096).read_to_string(&mut text);
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
