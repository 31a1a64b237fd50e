//! A checkpoint whose consistent cut is taken but whose files may still have to be
//! written, so the part that must hold the store still stays on the commit path and the
//! rest (writing and syncing files) runs with the upload.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Checkpoint;
use crate::Result;

/// The work left to turn a begun checkpoint into files.
type Finish = Box<dyn FnOnce() -> Result<Checkpoint> + Send>;

/// A checkpoint begun by
/// [`KeyValueStore::begin_checkpoint`](crate::KeyValueStore::begin_checkpoint): what it
/// holds is decided (one commit's data and position), but its files may not be written
/// yet. [`finish`](Self::finish) writes them; it blocks on file I/O, so callers run it off
/// any async executor. Dropped unfinished, its directory is removed.
pub struct PendingCheckpoint {
    dir: PathBuf,
    state: State,
}

enum State {
    Ready(Checkpoint),
    Deferred(Finish),
    Taken,
}

impl PendingCheckpoint {
    /// A checkpoint whose files are already written.
    pub fn ready(checkpoint: Checkpoint) -> Self {
        Self {
            dir: checkpoint.dir.clone(),
            state: State::Ready(checkpoint),
        }
    }

    /// A checkpoint into the claimed directory `dir` whose files `finish` writes. On
    /// failure `finish` leaves nothing of it in `dir`'s place, as
    /// [`Checkpoint::write_into`] does.
    pub fn deferred(
        dir: PathBuf,
        finish: impl FnOnce() -> Result<Checkpoint> + Send + 'static,
    ) -> Self {
        Self {
            dir,
            state: State::Deferred(Box::new(finish)),
        }
    }

    /// The directory the checkpoint is (or will be) in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the files still have to be written.
    pub fn is_deferred(&self) -> bool {
        matches!(self.state, State::Deferred(_))
    }

    /// Writes the files if they are not yet, and returns the checkpoint. Blocks on file
    /// I/O.
    pub fn finish(mut self) -> Result<Checkpoint> {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Ready(checkpoint) => Ok(checkpoint),
            State::Deferred(finish) => finish(),
            State::Taken => unreachable!("a pending checkpoint is finished once, by value"),
        }
    }
}

impl From<Checkpoint> for PendingCheckpoint {
    fn from(checkpoint: Checkpoint) -> Self {
        Self::ready(checkpoint)
    }
}

impl Drop for PendingCheckpoint {
    fn drop(&mut self) {
        if matches!(self.state, State::Taken) {
            return;
        }
        // Never finished: what it holds is the checkpoint's alone and nobody will read it.
        if let Err(err) = std::fs::remove_dir_all(&self.dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!(
                "could not remove the unused checkpoint {}: {err}",
                self.dir.display()
            );
        }
    }
}

impl fmt::Debug for PendingCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Deferred(_) => "deferred",
            State::Taken => "taken",
        };
        f.debug_struct("PendingCheckpoint")
            .field("dir", &self.dir)
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Position;

    /// A fresh directory of this test, removed when dropped.
    struct Root(PathBuf);

    impl Root {
        fn new(test: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("ss-pending-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            Self(root)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn checkpoint(dir: &Path) -> Checkpoint {
        Checkpoint {
            dir: dir.to_path_buf(),
            backend: "test".into(),
            backend_format: 1,
            position: Position::empty(),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_deferred_checkpoint_is_written_by_finish() {
        let root = Root::new("a_deferred_c");
        let dir = root.path().join("c");
        Checkpoint::claim_dir(&dir).unwrap();
        let written = dir.join("data");
        let pending = PendingCheckpoint::deferred(dir.clone(), {
            let dir = dir.clone();
            move || {
                std::fs::write(dir.join("data"), b"x")?;
                Ok(checkpoint(&dir))
            }
        });
        assert!(pending.is_deferred());
        assert!(!written.exists(), "nothing is written before finish");
        let done = pending.finish().unwrap();
        assert_eq!(done.dir, dir);
        assert!(written.exists());
    }

    #[test]
    fn dropped_unfinished_its_directory_is_removed() {
        let root = Root::new("dropped_unfi");
        let dir = root.path().join("c");
        Checkpoint::claim_dir(&dir).unwrap();
        drop(PendingCheckpoint::deferred(dir.clone(), {
            let dir = dir.clone();
            move || Ok(checkpoint(&dir))
        }));
        assert!(!dir.exists());
        let ready = root.path().join("r");
        Checkpoint::claim_dir(&ready).unwrap();
        drop(PendingCheckpoint::ready(checkpoint(&ready)));
        assert!(!ready.exists());
    }

    #[test]
    fn a_finished_checkpoint_keeps_its_directory() {
        let root = Root::new("a_finished_c");
        let dir = root.path().join("c");
        Checkpoint::claim_dir(&dir).unwrap();
        let done = PendingCheckpoint::ready(checkpoint(&dir)).finish().unwrap();
        assert!(done.dir.exists());
    }
}
