//! A store file opened for reading whose writes stay in memory: redb's integrity check
//! for read-only opens.
//!
//! redb's own read-only access trusts the file: it skips the checksum check, and reading
//! a garbled page panics inside redb's B-tree cursor (measured: every one of five damaged
//! copies panicked on a full scan). The check runs only in a writable open, because it
//! ends with a commit. Opening the database over this backend gives it the writable open
//! it wants while the file itself is opened read-only: the check reads every page from
//! disk, and the header and allocator pages its commit writes land in memory (a few
//! pages), so a damaged file is reported as damaged and nothing on disk changes. It
//! implements none of redb's range locks; [`ReadOnlyOverlay::try_lock_shared`] takes the
//! whole-file lock that keeps writers out.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use redb::StorageBackend;

/// Overlay granularity: redb's page size.
const BLOCK: u64 = 4096;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ReadOnlyOverlay {
    file: Mutex<File>,
    file_len: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The length redb sees.
    len: u64,
    /// File bytes at or above this offset are gone (the storage was shrunk below it):
    /// they read as zero unless written since.
    file_valid: u64,
    /// Written blocks, by block index.
    blocks: HashMap<u64, Vec<u8>>,
}

impl ReadOnlyOverlay {
    /// Opens `path` for reading only.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        Ok(Self {
            file: Mutex::new(file),
            file_len,
            state: Mutex::new(State {
                len: file_len,
                file_valid: file_len,
                blocks: HashMap::new(),
            }),
        })
    }

    /// Takes a shared `flock` on the file, held until the overlay is dropped; fails with
    /// `WouldBlock` while a redb writer holds the file.
    pub(crate) fn try_lock_shared(&self) -> Result<(), TryLockError> {
        self.file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_lock_shared()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below completes or returns before touching the state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Block `index` as the file (within `file_valid`) and zeros make it.
    fn file_block(&self, index: u64, file_valid: u64) -> io::Result<Vec<u8>> {
        let mut block = vec![0u8; BLOCK as usize];
        let start = index * BLOCK;
        let end = (start + BLOCK).min(file_valid.min(self.file_len));
        if end > start {
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(&mut block[..usize::try_from(end - start).unwrap_or(0)])?;
        }
        Ok(block)
    }
}

impl Drop for ReadOnlyOverlay {
    /// Releases the shared lock before the file closes. A `flock` belongs to the open
    /// file description, which a child that another thread forks at that moment shares
    /// until it execs: closing our descriptor alone leaves the lock held there, and a
    /// writer opening the file right after (a checkpoint just moved into place) is
    /// refused as "already open". Unlocking releases it for every descriptor at once.
    fn drop(&mut self) {
        let file = self.file.get_mut().unwrap_or_else(PoisonError::into_inner);
        // Nothing to release when no lock was taken (a filesystem without flock).
        let _ = file.unlock();
    }
}

impl StorageBackend for ReadOnlyOverlay {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.state();
        let end = offset.saturating_add(out.len() as u64);
        if end > state.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {offset}..{end} past the end {}", state.len),
            ));
        }
        let (first, last) = (offset / BLOCK, end.saturating_sub(1) / BLOCK);
        let untouched = !state.blocks.keys().any(|i| (first..=last).contains(i));
        if untouched && end <= state.file_valid.min(self.file_len) {
            // The common case (the overlay holds a few pages): one read from the file.
            let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.seek(SeekFrom::Start(offset))?;
            return file.read_exact(out);
        }
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK, (at % BLOCK) as usize);
            let take = (BLOCK as usize - within).min(out.len() - done);
            let dest = &mut out[done..done + take];
            match state.blocks.get(&index) {
                Some(block) => dest.copy_from_slice(&block[within..within + take]),
                None => {
                    let block = self.file_block(index, state.file_valid)?;
                    dest.copy_from_slice(&block[within..within + take]);
                }
            }
            done += take;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state();
        if len < state.len {
            state.blocks.retain(|index, _| index * BLOCK < len);
            // The part of the last kept block past the new end must read as zero again.
            if let Some(block) = state.blocks.get_mut(&(len / BLOCK)) {
                block[(len % BLOCK) as usize..].fill(0);
            }
            state.file_valid = state.file_valid.min(len);
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let end = offset.saturating_add(data.len() as u64);
        if end > state.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write of {offset}..{end} past the end {}", state.len),
            ));
        }
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let (index, within) = (at / BLOCK, (at % BLOCK) as usize);
            let take = (BLOCK as usize - within).min(data.len() - done);
            if !state.blocks.contains_key(&index) {
                let block = self.file_block(index, state.file_valid)?;
                state.blocks.insert(index, block);
            }
            if let Some(block) = state.blocks.get_mut(&index) {
                block[within..within + take].copy_from_slice(&data[done..done + take]);
            }
            done += take;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared lock goes with the overlay even where another descriptor of the same
    /// open file description outlives it: a child forked while the lock was held holds
    /// one until it execs (`try_clone` makes one the same way, with `dup`). Found by the
    /// snapshot kill tests, whose restores failed as "already open" while other test
    /// threads started child processes.
    #[test]
    fn the_shared_lock_is_released_for_every_descriptor_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let overlay = ReadOnlyOverlay::open(&path).unwrap();
        if overlay.try_lock_shared().is_err() {
            return; // a filesystem without flock: nothing to release
        }
        let inherited = overlay.file.lock().unwrap().try_clone().unwrap();
        let writer = File::options().read(true).write(true).open(&path).unwrap();
        assert!(
            matches!(writer.try_lock(), Err(TryLockError::WouldBlock)),
            "the overlay's lock keeps a writer out"
        );
        drop(overlay);
        writer
            .try_lock()
            .expect("a writer gets the file once the overlay is gone");
        drop(inherited);
    }

    #[test]
    fn writes_stay_in_memory_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let original: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let overlay = ReadOnlyOverlay::open(&path).unwrap();

        overlay.write(4090, &[9; 20]).unwrap();
        let mut out = vec![0; 30];
        overlay.read(4085, &mut out).unwrap();
        assert_eq!(&out[..5], &original[4085..4090]);
        assert_eq!(&out[5..25], &[9; 20]);
        assert_eq!(&out[25..], &original[4110..4115]);

        overlay.set_len(5000).unwrap();
        overlay.set_len(12_000).unwrap();
        let mut tail = vec![1; 100];
        overlay.read(4990, &mut tail).unwrap();
        assert_eq!(&tail[..10], &original[4990..5000]);
        assert!(
            tail[10..].iter().all(|&b| b == 0),
            "shrunk bytes come back as zeros"
        );
        assert!(overlay.read(11_990, &mut [0; 20]).is_err());

        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "the file is untouched"
        );
    }
}
