//! Scratch directories for checkpoints and downloads: hidden, named after the process
//! that made them, so two processes never share one and what a crashed process left is
//! recognised and removed.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A new directory path in `parent` (created) named `<prefix><pid>-<nanos>`; directories
/// with `prefix` whose process no longer runs are removed first.
pub(crate) fn scratch_dir(parent: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .map_err(|err| Error::from(err).context(format!("creating {}", parent.display())))?;
    remove_abandoned(parent, prefix);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    Ok(parent.join(format!("{prefix}{}-{nanos}", std::process::id())))
}

/// Removes directories with `prefix` whose process no longer runs. Only where `/proc`
/// tells which processes run; elsewhere they stay (hidden, named after their process).
fn remove_abandoned(parent: &Path, prefix: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !proc.join(pid).exists() {
            log::info!(
                "removing {}, which a stopped process left",
                entry.path().display()
            );
            remove_quietly(&entry.path());
        }
    }
}

/// Removes `dir` and what it holds; a failure is logged, a missing directory is fine.
pub(crate) fn remove_quietly(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        log::warn!("could not remove {}: {err}", dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_directories_are_unique_and_abandoned_ones_go() {
        let root = std::env::temp_dir().join(format!("ss-scratch-{}", std::process::id()));
        let first = scratch_dir(&root, ".counts.x-").unwrap();
        assert_eq!(first.parent(), Some(root.as_path()));
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".counts.x-"), "{name}");
        // One of a process that cannot exist is removed; one of this process is not.
        let abandoned = root.join(".counts.x-4294967295-1");
        let running = root.join(format!(".counts.x-{}-1", std::process::id()));
        let other = root.join(".other-4294967295-1");
        for dir in [&abandoned, &running, &other] {
            std::fs::create_dir_all(dir).unwrap();
        }
        scratch_dir(&root, ".counts.x-").unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!abandoned.exists());
        }
        assert!(running.exists());
        assert!(other.exists(), "another prefix is not touched");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
