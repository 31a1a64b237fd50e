//! Checksums of local files: blake3, read in chunks on the blocking pool, so a file of
//! any size costs a buffer's worth of memory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use state_core::{Error, Result};

use crate::layout::CHECKSUM_PREFIX;

/// The read size: large enough that blake3's SIMD paths stay busy.
const CHUNK: usize = 1024 * 1024;

/// `blake3:<hex>` of `hash`.
pub(crate) fn checksum(hash: &blake3::Hash) -> String {
    format!("{CHECKSUM_PREFIX}{}", hash.to_hex())
}

/// The size and blake3 of the file at `path`.
pub(crate) async fn hash_file(path: PathBuf) -> Result<(u64, blake3::Hash)> {
    blocking(move || {
        let mut file = std::fs::File::open(&path).map_err(|err| io(err, "opening", &path))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0; CHUNK];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|err| io(err, "reading", &path))?;
            if n == 0 {
                return Ok((size, hasher.finalize()));
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
    })
    .await
}

/// Copies `from` to the new file `to` (it must not exist), returning the size and
/// blake3 of what was copied: one read for both. `to` is created before the copy goes to
/// the blocking pool, so a caller that drops this future never sees it appear later.
pub(crate) async fn copy_hashed(from: PathBuf, to: PathBuf) -> Result<(u64, blake3::Hash)> {
    let mut dst = create_new(&to)?;
    blocking(move || {
        let mut src = std::fs::File::open(&from).map_err(|err| io(err, "opening", &from))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0; CHUNK];
        let mut size = 0u64;
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|err| io(err, "reading", &from))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            dst.write_all(&buf[..n])
                .map_err(|err| io(err, "writing", &to))?;
            size += n as u64;
        }
        dst.sync_all().map_err(|err| io(err, "syncing", &to))?;
        Ok((size, hasher.finalize()))
    })
    .await
}

/// Creates the file `path`, refusing one that exists (a symlink included).
pub(crate) fn create_new(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| io(err, "creating", path))
}

/// Runs `work` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::internal(format!("a blocking file task failed: {err}")))?
}

/// An I/O error naming what was done to which file.
pub(crate) fn io(err: std::io::Error, doing: &str, path: &Path) -> Error {
    Error::from(err).context(format!("{doing} {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_copy_hashes_what_it_copies_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        std::fs::write(&from, vec![7u8; 3 * CHUNK + 5]).unwrap();
        let (size, hash) = hash_file(from.clone()).await.unwrap();
        assert_eq!(size, 3 * CHUNK as u64 + 5);
        assert_eq!(hash, blake3::hash(&std::fs::read(&from).unwrap()));
        let to = dir.path().join("b");
        assert_eq!(
            copy_hashed(from.clone(), to.clone()).await.unwrap(),
            (size, hash)
        );
        assert_eq!(std::fs::read(&to).unwrap(), std::fs::read(&from).unwrap());
        let err = copy_hashed(from, to).await.unwrap_err();
        assert!(err.to_string().contains("creating"), "{err}");
        assert!(checksum(&hash).starts_with("blake3:"));
    }
}
