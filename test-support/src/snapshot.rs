//! Every file under a directory with its bytes: two equal snapshots of a directory mean
//! not a byte, not a name changed, which is how tests show that a read-only open, a
//! refused restore or an `inspect` left a store alone.
//!
//! A missing directory has an empty snapshot, so "nothing was created" is
//! `snapshot(dir).is_empty()`. Anything else that cannot be read fails the test naming the
//! path: a snapshot that skipped an unreadable file would call a changed directory
//! unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// What a path under the snapshot's directory was.
#[derive(Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    /// A symbolic link, by its target: followed, a link could lead out of the directory
    /// or round in a cycle.
    Link(PathBuf),
}

impl fmt::Debug for Entry {
    /// Sizes, not bytes: a failed comparison must stay readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Dir => f.write_str("dir"),
            Entry::File(bytes) => write!(f, "{} bytes", bytes.len()),
            Entry::Link(target) => write!(f, "link to {}", target.display()),
        }
    }
}

/// Every file, directory and link under a directory (recursively, the directory itself
/// left out), by path relative to it, with each file's bytes.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    entries: BTreeMap<PathBuf, Entry>,
}

impl Snapshot {
    /// Whether the directory held nothing (or did not exist).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many files, directories and links the directory held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The paths held, relative to the directory, in order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.keys().map(PathBuf::as_path)
    }

    /// One line per difference from `earlier`: a path that appeared, vanished or changed
    /// (naming sizes, never dumping bytes). Empty when the two are equal.
    pub fn changes_since(&self, earlier: &Snapshot) -> Vec<String> {
        let mut changes = Vec::new();
        for (path, was) in &earlier.entries {
            match self.entries.get(path) {
                None => changes.push(format!("vanished: {} ({was:?})", path.display())),
                Some(now) if now != was => {
                    changes.push(format!("changed: {} ({was:?} -> {now:?})", path.display()));
                }
                Some(_) => {}
            }
        }
        for (path, now) in &self.entries {
            if !earlier.entries.contains_key(path) {
                changes.push(format!("appeared: {} ({now:?})", path.display()));
            }
        }
        changes
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|(path, entry)| (path.display(), entry)),
            )
            .finish()
    }
}

/// A [`Snapshot`] of `dir`: empty when `dir` does not exist; any other error reading it
/// fails the test, naming the path.
pub fn snapshot(dir: &Path) -> Snapshot {
    let mut entries = BTreeMap::new();
    match std::fs::symlink_metadata(dir) {
        Err(err) if err.kind() == ErrorKind::NotFound => return Snapshot { entries },
        Err(err) => panic!("snapshot of {}: {err}", dir.display()),
        Ok(_) => {}
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let listing = std::fs::read_dir(&next)
            .unwrap_or_else(|err| panic!("snapshot: listing {}: {err}", next.display()));
        for entry in listing {
            let entry =
                entry.unwrap_or_else(|err| panic!("snapshot: listing {}: {err}", next.display()));
            let path = entry.path();
            let kind = entry
                .file_type()
                .unwrap_or_else(|err| panic!("snapshot: the type of {}: {err}", path.display()));
            let read =
                if kind.is_dir() {
                    pending.push(path.clone());
                    Entry::Dir
                } else if kind.is_symlink() {
                    Entry::Link(std::fs::read_link(&path).unwrap_or_else(|err| {
                        panic!("snapshot: reading link {}: {err}", path.display())
                    }))
                } else {
                    Entry::File(std::fs::read(&path).unwrap_or_else(|err| {
                        panic!("snapshot: reading {}: {err}", path.display())
                    }))
                };
            let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
            entries.insert(relative, read);
        }
    }
    Snapshot { entries }
}

/// Asserts that `dir` holds exactly what `before` (a [`snapshot`] of it) held, naming each
/// path that appeared, vanished or changed.
#[track_caller]
pub fn assert_unchanged(dir: &Path, before: &Snapshot) {
    let changes = snapshot(dir).changes_since(before);
    assert!(
        changes.is_empty(),
        "{} changed:\n  {}",
        dir.display(),
        changes.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with `sub/data`, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(crate::unique_name(name));
            std::fs::create_dir_all(dir.join("sub")).unwrap_or_else(|err| panic!("{err}"));
            std::fs::write(dir.join("sub/data"), b"bytes").unwrap_or_else(|err| panic!("{err}"));
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_missing_directory_is_empty() {
        let dir = std::env::temp_dir().join(crate::unique_name("absent"));
        assert!(snapshot(&dir).is_empty());
    }

    #[test]
    fn a_changed_byte_an_added_and_a_removed_file_are_named() {
        let scratch = Scratch::new("snapshot-changes");
        let dir = &scratch.0;
        let before = snapshot(dir);
        assert_eq!(before.len(), 2, "{before:?}");
        assert_eq!(snapshot(dir), before);
        std::fs::write(dir.join("sub/data"), b"bytez").unwrap_or_else(|err| panic!("{err}"));
        std::fs::write(dir.join("new"), b"").unwrap_or_else(|err| panic!("{err}"));
        let after = snapshot(dir);
        assert_ne!(after, before);
        assert_eq!(
            after.changes_since(&before),
            [
                "changed: sub/data (5 bytes -> 5 bytes)",
                "appeared: new (0 bytes)"
            ]
        );
        std::fs::remove_dir_all(dir.join("sub")).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            snapshot(dir).changes_since(&before),
            [
                "vanished: sub (dir)",
                "vanished: sub/data (5 bytes)",
                "appeared: new (0 bytes)"
            ]
        );
    }

    #[test]
    fn an_empty_file_and_an_empty_directory_differ() {
        let scratch = Scratch::new("snapshot-kinds");
        let dir = &scratch.0;
        std::fs::write(dir.join("thing"), b"").unwrap_or_else(|err| panic!("{err}"));
        let before = snapshot(dir);
        std::fs::remove_file(dir.join("thing")).unwrap_or_else(|err| panic!("{err}"));
        std::fs::create_dir(dir.join("thing")).unwrap_or_else(|err| panic!("{err}"));
        assert_ne!(snapshot(dir), before);
    }

    #[test]
    fn a_link_is_kept_by_its_target_not_followed() {
        let scratch = Scratch::new("snapshot-link");
        let dir = &scratch.0;
        std::os::unix::fs::symlink(dir, dir.join("loop")).unwrap_or_else(|err| panic!("{err}"));
        let before = snapshot(dir);
        assert_eq!(before.len(), 3, "{before:?}");
    }

    #[test]
    #[should_panic(expected = "changed:\n  appeared: late (1 bytes)")]
    fn assert_unchanged_names_what_changed() {
        let scratch = Scratch::new("snapshot-assert");
        let before = snapshot(&scratch.0);
        std::fs::write(scratch.0.join("late"), b"x").unwrap_or_else(|err| panic!("{err}"));
        assert_unchanged(&scratch.0, &before);
    }
}
