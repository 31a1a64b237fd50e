//! The directories a command is about to create for its stores, so a run that leaves no
//! store behind leaves no empty `<application>/<partition>/` directories either.
//!
//! Store directories themselves are not among them: only the holder of a partition's
//! writer lock may remove one (`restore` does, for a store it created and removed),
//! since another process may have just created it, empty, to build its store in. The
//! directories above are safe to remove when empty: a partition's directory holds its
//! lock file for as long as anyone works there, and a process creating it retries when
//! it vanishes before its lock file is in it.

use std::path::{Path, PathBuf};

use state_core::{Partition, Result};

use crate::backend::Location;

/// The state directory and the store directories of some partitions, with every directory
/// between them, that did not exist when this was made.
#[derive(Debug)]
pub struct NewDirs {
    /// Deepest first, each once.
    missing: Vec<PathBuf>,
}

impl NewDirs {
    /// Notes which directories above `partitions`' stores under `location` (from the
    /// partition directories up) are missing now.
    pub fn before(location: &Location, partitions: &[Partition]) -> Result<Self> {
        let mut missing = Vec::new();
        for &partition in partitions {
            let partition_dir = location.partition_dir(partition)?;
            for dir in partition_dir.ancestors() {
                if !missing.iter().any(|m: &PathBuf| m == dir) && !dir.exists() {
                    missing.push(dir.to_owned());
                }
                if dir == location.state_dir {
                    break;
                }
            }
        }
        // Children before parents: a path with more components is never an ancestor of
        // one with fewer.
        missing.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        Ok(Self { missing })
    }

    /// Removes those of them that are empty now, deepest first; a directory something was
    /// put into stays, and so do its parents.
    pub fn remove_empty(&self) {
        for dir in &self.missing {
            if is_empty_dir(dir) {
                // Only empty directories go: `remove_dir` refuses any other.
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    fn location(state_dir: &Path) -> Location {
        Location {
            state_dir: state_dir.to_owned(),
            backend: Backend::parse("memory").unwrap(),
            store: "rewards".to_owned(),
            application_id: "app".to_owned(),
        }
    }

    #[test]
    fn empty_new_directories_go_and_kept_stores_stay() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        let location = location(&state);
        let new = NewDirs::before(&location, &[0, 1, 2]).unwrap();
        for partition in [0, 1, 2] {
            let dir = location.store_dir(partition).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
        }
        let kept = location.store_dir(1).unwrap();
        std::fs::write(kept.join("store.redb"), b"kept").unwrap();
        // Partition 2's store directory was made by someone about to build a store in
        // it: only the lock's holder removes a store directory.
        let building = location.store_dir(2).unwrap();
        std::fs::remove_dir(location.store_dir(0).unwrap()).unwrap();
        new.remove_empty();
        assert!(kept.join("store.redb").exists());
        assert!(building.is_dir());
        let gone = location.partition_dir(0).unwrap();
        assert!(!gone.exists());

        // Nothing kept: nothing new stays, the root that existed before does.
        std::fs::remove_file(kept.join("store.redb")).unwrap();
        for dir in [kept, building] {
            std::fs::remove_dir(dir).unwrap();
        }
        new.remove_empty();
        assert!(!state.exists());
        assert!(root.path().exists());
    }
}
