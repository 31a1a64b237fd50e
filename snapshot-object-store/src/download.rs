//! Downloading a snapshot into a new directory, every file checked.
//!
//! A file up to `part_size` is one GET; a larger one is read as `part_size` ranges, in
//! parallel, each written at its offset as soon as it arrives and hashed in order (one
//! thread writing a large file in order was half its download's time: the kernel's copy
//! into the page cache runs at a few hundred MB/s here). Each request holds a transfer
//! permit until its bytes are hashed, so at most `max_concurrent_transfers` parts are in
//! memory. A
//! file waits for a permit only when it holds none (otherwise it takes what is free
//! and writes what it has), so files reading at once can never hold every permit while
//! each waits for one more. Every file's size and blake3 are checked against the manifest; any
//! difference, and any missing object, fails the download as `Corruption` naming the
//! file and its object. A file of the local store (`reuse_from`) with the same path,
//! size and checksum is copied instead, hashed as it is copied.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path as LocalPath, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, ObjectStoreExt};
use state_core::snapshot::{DownloadSummary, SnapshotFile};
use state_core::{Error, ErrorKind, Result, SnapshotManifest};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::ObjectSnapshotStore;
use crate::error::map_error;
use crate::hash::{copy_hashed, create_new, io};
use crate::layout::checksum_hex;

/// One file to bring in.
struct Wanted {
    file: SnapshotFile,
    /// Where it goes under `into`.
    dest: PathBuf,
    /// Its relative path, to look for it in `reuse_from`.
    relative: PathBuf,
    hex: String,
    object: Path,
}

/// How one file came.
enum Came {
    Downloaded(u64),
    Reused(u64),
}

impl ObjectSnapshotStore {
    pub(crate) async fn download_manifest(
        &self,
        manifest: &SnapshotManifest,
        into: &LocalPath,
        reuse_from: Option<&LocalPath>,
    ) -> Result<DownloadSummary> {
        let started = Instant::now();
        let keys = self.keys(&manifest.scope())?;
        let mut wanted = Vec::with_capacity(manifest.files.len());
        for file in &manifest.files {
            let relative = relative_path(&file.path)?;
            let hex = checksum_hex(&file.checksum, &format!("snapshot file {}", file.path))?;
            wanted.push(Wanted {
                file: file.clone(),
                dest: into.join(&relative),
                relative,
                hex: hex.to_owned(),
                object: keys.file(hex),
            });
        }
        create_target(into)?;
        let came: Vec<Came> = futures::stream::iter(wanted)
            .map(|want| async move { self.bring(&want, reuse_from).await })
            .buffer_unordered(self.config.max_concurrent_transfers)
            .try_collect()
            .await?;
        sync_dir(into)?;
        let mut summary = DownloadSummary {
            files_downloaded: 0,
            bytes_downloaded: 0,
            files_reused: 0,
            bytes_reused: 0,
            elapsed: started.elapsed(),
        };
        for came in came {
            match came {
                Came::Downloaded(bytes) => {
                    summary.files_downloaded += 1;
                    summary.bytes_downloaded += bytes;
                }
                Came::Reused(bytes) => {
                    summary.files_reused += 1;
                    summary.bytes_reused += bytes;
                }
            }
        }
        Ok(summary)
    }

    /// Copies `want` from `reuse_from` when it is there with the same bytes, else
    /// downloads it.
    async fn bring(&self, want: &Wanted, reuse_from: Option<&LocalPath>) -> Result<Came> {
        // Directories and files are created inline, never on the blocking pool: a
        // download dropped mid-way (a cancelled restore) would leave such a task running,
        // and it could create an entry in the download directory after its owner removed
        // it. Only writes into files already open go to the pool.
        if let Some(parent) = want.dest.parent() {
            std::fs::create_dir_all(parent).map_err(|err| io(err, "creating", parent))?;
        }
        if let Some(local) = reuse_from.map(|dir| dir.join(&want.relative)) {
            let same_size = tokio::fs::metadata(&local)
                .await
                .is_ok_and(|meta| meta.is_file() && meta.len() == want.file.size);
            if same_size {
                let (size, hash) = copy_hashed(local, want.dest.clone()).await?;
                if size == want.file.size && hash.to_hex().as_str() == want.hex {
                    return Ok(Came::Reused(size));
                }
                tokio::fs::remove_file(&want.dest)
                    .await
                    .map_err(|err| io(err, "removing", &want.dest))?;
            }
        }
        self.download_file(want).await?;
        Ok(Came::Downloaded(want.file.size))
    }

    /// Downloads one file into its new `dest`, checking size and checksum.
    async fn download_file(&self, want: &Wanted) -> Result<()> {
        let mut out = tokio::fs::File::from_std(create_new(&want.dest)?);
        let mut hasher = blake3::Hasher::new();
        let written = if want.file.size <= self.config.part_size {
            self.get_whole(want, &mut out, &mut hasher).await?
        } else {
            let parts = out
                .try_clone()
                .await
                .map_err(|err| io(err, "opening", &want.dest))?
                .into_std()
                .await;
            self.get_ranges(want, Arc::new(parts), &mut hasher).await?
        };
        out.sync_all()
            .await
            .map_err(|err| io(err, "syncing", &want.dest))?;
        if written != want.file.size {
            return Err(self.corrupt(
                want,
                format!("is {written} bytes, the manifest says {}", want.file.size),
            ));
        }
        let hash = hasher.finalize();
        if hash.to_hex().as_str() != want.hex {
            return Err(self.corrupt(
                want,
                format!(
                    "has checksum blake3:{}, the manifest says {}",
                    hash.to_hex(),
                    want.file.checksum
                ),
            ));
        }
        Ok(())
    }

    /// One GET, streamed to the file; returns the bytes written.
    async fn get_whole(
        &self,
        want: &Wanted,
        out: &mut tokio::fs::File,
        hasher: &mut blake3::Hasher,
    ) -> Result<u64> {
        let _permit = self.permit().await?;
        self.throttle.take(want.file.size).await;
        let got = self
            .store
            .get_opts(&want.object, GetOptions::default())
            .await
            .map_err(|err| self.fetch_error(want, err))?;
        if got.meta.size != want.file.size {
            return Err(self.corrupt(
                want,
                format!(
                    "is {} bytes in the store, the manifest says {}",
                    got.meta.size, want.file.size
                ),
            ));
        }
        let mut body = got.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|err| self.fetch_error(want, err))?
        {
            written += chunk.len() as u64;
            if written > want.file.size {
                return Err(self.corrupt(
                    want,
                    format!(
                        "is longer than the {} bytes the manifest says",
                        want.file.size
                    ),
                ));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|err| io(err, "writing", &want.dest))?;
        }
        Ok(written)
    }

    /// Ranged reads of `part_size` in parallel, each written at its offset in `out` as it
    /// arrives and hashed in order; returns the bytes written.
    async fn get_ranges(
        &self,
        want: &Wanted,
        out: Arc<std::fs::File>,
        hasher: &mut blake3::Hasher,
    ) -> Result<u64> {
        let meta = {
            let _permit = self.permit().await?;
            self.store
                .head(&want.object)
                .await
                .map_err(|err| self.fetch_error(want, err))?
        };
        if meta.size != want.file.size {
            return Err(self.corrupt(
                want,
                format!(
                    "is {} bytes in the store, the manifest says {}",
                    meta.size, want.file.size
                ),
            ));
        }
        let size = want.file.size;
        let part = self.config.part_size;
        let mut ranges = (0..size.div_ceil(part))
            .map(|i| i * part..((i + 1) * part).min(size))
            .peekable();
        let mut in_flight = InFlight(VecDeque::new());
        let mut written = 0u64;
        loop {
            // Fill the window; wait for a permit only with nothing in flight, so a file
            // never waits for a permit while holding one (see the module docs).
            while in_flight.0.len() < self.config.max_concurrent_transfers
                && ranges.peek().is_some()
            {
                let permit = if in_flight.0.is_empty() {
                    self.permit_owned().await?
                } else if let Ok(permit) = self.transfers.clone().try_acquire_owned() {
                    permit
                } else {
                    break;
                };
                let Some(range) = ranges.next() else { break };
                self.throttle.take(range.end - range.start).await;
                let store = self.store.clone();
                let object = want.object.clone();
                let out = Arc::clone(&out);
                let expected = range.end - range.start;
                in_flight.0.push_back((
                    expected,
                    tokio::spawn(async move {
                        let offset = range.start;
                        let got = store.get_range(&object, range).await;
                        let stored = match &got {
                            Ok(bytes) if bytes.len() as u64 == expected => {
                                let bytes = bytes.clone();
                                Some(
                                    tokio::task::spawn_blocking(move || {
                                        out.write_all_at(&bytes, offset)
                                    })
                                    .await,
                                )
                            }
                            _ => None,
                        };
                        (got, stored, permit)
                    }),
                ));
            }
            let Some((expected, task)) = in_flight.0.pop_front() else {
                break;
            };
            let (got, stored, permit) = task
                .await
                .map_err(|err| Error::internal(format!("a ranged read task failed: {err}")))?;
            let bytes = got.map_err(|err| self.fetch_error(want, err))?;
            if bytes.len() as u64 != expected {
                return Err(self.corrupt(
                    want,
                    format!(
                        "returned {} bytes at offset {written} where {expected} were asked for",
                        bytes.len()
                    ),
                ));
            }
            match stored {
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(err))) => return Err(io(err, "writing", &want.dest)),
                Some(Err(err)) => {
                    return Err(Error::internal(format!(
                        "writing a ranged read into {} failed: {err}",
                        want.dest.display()
                    )));
                }
                None => {
                    return Err(Error::internal(format!(
                        "a ranged read of {} was not written",
                        want.dest.display()
                    )));
                }
            }
            hasher.update(&bytes);
            written += expected;
            drop(permit);
        }
        Ok(written)
    }

    /// A fetch error: a missing object is the snapshot's corruption, anything else the
    /// store's failure.
    fn fetch_error(&self, want: &Wanted, err: object_store::Error) -> Error {
        let err = map_error(
            err,
            format!(
                "downloading snapshot file {} from {}",
                want.file.path,
                self.url(&want.object)
            ),
        );
        if err.kind() == ErrorKind::NotFound {
            return self.corrupt(want, format!("is missing ({err})"));
        }
        err
    }

    /// `Corruption` naming the file and its object.
    fn corrupt(&self, want: &Wanted, what: String) -> Error {
        Error::corruption(format!(
            "snapshot file {} (object {}) {what}",
            want.file.path,
            self.url(&want.object)
        ))
    }
}

/// The ranged reads of one file still running, each with the bytes it asked for; a
/// download that fails stops those it leaves behind instead of letting them hold their
/// transfer permits to the end.
struct InFlight<T>(VecDeque<(u64, JoinHandle<T>)>);

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        for (_, task) in &self.0 {
            task.abort();
        }
    }
}

/// The manifest's `/`-separated `path` as a relative path of plain names only, so
/// joining it to the target never leaves it (`from_json` checked this already; a
/// manifest built in memory did not pass through it).
fn relative_path(path: &str) -> Result<PathBuf> {
    let relative: PathBuf = path.split('/').collect();
    let plain = !path.is_empty()
        && !path.contains('\\')
        && relative.components().count() == path.split('/').count()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(Error::corruption(format!(
            "snapshot manifest names a file outside its store directory: {path:?}"
        )));
    }
    Ok(relative)
}

/// Creates `into`, which must not exist (its parents may not exist either).
fn create_target(into: &LocalPath) -> Result<()> {
    if let Some(parent) = into.parent() {
        std::fs::create_dir_all(parent).map_err(|err| io(err, "creating", parent))?;
    }
    std::fs::create_dir(into).map_err(|err| {
        if err.kind() == std::io::ErrorKind::AlreadyExists {
            Error::invalid_input(format!(
                "downloading a snapshot into {}: it exists; the target must be a new directory",
                into.display()
            ))
        } else {
            io(err, "creating", into)
        }
    })
}

/// Makes the directory entries durable (the files synced themselves).
fn sync_dir(dir: &LocalPath) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| io(err, "syncing", dir))?;
    let mut dirs = Vec::new();
    collect_dirs(dir, &mut dirs)?;
    for sub in dirs {
        std::fs::File::open(&sub)
            .and_then(|d| d.sync_all())
            .map_err(|err| io(err, "syncing", &sub))?;
    }
    Ok(())
}

fn collect_dirs(dir: &LocalPath, dirs: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|err| io(err, "listing", dir))? {
        let entry = entry.map_err(|err| io(err, "listing", dir))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.push(entry.path());
            collect_dirs(&entry.path(), dirs)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(
            relative_path("a/b.sst").unwrap(),
            PathBuf::from("a").join("b.sst")
        );
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }
}
