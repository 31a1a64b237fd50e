//! An `ObjectStore` that SIGKILLs its own process at one chosen step of the snapshot
//! protocol, so a crash lands exactly between two requests (or inside one) instead of
//! wherever a timer from the parent happens to fall.
//!
//! It wraps the store a child hands to `ObjectSnapshotStore`, so it sees the requests
//! the snapshot code really makes. Objects are told apart by the directory the crate's
//! layout puts them in (`.../files/<hex>`, `.../manifests/m-...json`). Before dying it
//! appends `crash <point>` to the journal, so the parent can tell the crash point fired
//! from the child being killed some other way.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::Poll;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result as StoreResult,
};

/// Where the child kills itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Never.
    None,
    /// When the manifest PUT of the `n`-th upload begins: every file of that snapshot
    /// is in the store, its manifest is not (between the last file and the manifest).
    BeforeManifest(u32),
    /// Right after the manifest PUT of the `n`-th upload returned: the snapshot is
    /// published but the child never journaled it.
    AfterManifest(u32),
    /// Inside a file upload of the `upload`-th upload or a later one: once `bytes` bytes
    /// of files were sent from that upload on, the file being sent gets only its bytes
    /// up to there, as a multipart upload that is never completed.
    MidFileUpload {
        /// The upload, counted from 1.
        upload: u32,
        /// Bytes of file uploads before the kill.
        bytes: u64,
    },
    /// Once `n` bytes of file GETs were handed to the downloader (at its next read, so
    /// what it got is written to the partial download).
    MidDownload(u64),
    /// Right after the `n`-th deletion of a file object (retention).
    AfterFileDelete(u32),
    /// Right after the `n`-th deletion of a manifest (retention).
    AfterManifestDelete(u32),
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashPoint::None => f.write_str("none"),
            CrashPoint::BeforeManifest(n) => write!(f, "before-manifest:{n}"),
            CrashPoint::AfterManifest(n) => write!(f, "after-manifest:{n}"),
            CrashPoint::MidFileUpload { upload, bytes } => {
                write!(f, "mid-file-upload:{upload}:{bytes}")
            }
            CrashPoint::MidDownload(n) => write!(f, "mid-download:{n}"),
            CrashPoint::AfterFileDelete(n) => write!(f, "after-file-delete:{n}"),
            CrashPoint::AfterManifestDelete(n) => write!(f, "after-manifest-delete:{n}"),
        }
    }
}

impl FromStr for CrashPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default();
        let mut number = || -> Result<u64, String> {
            parts
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("crash point {s:?} needs a number"))
        };
        let small = |n: u64| u32::try_from(n).map_err(|_| format!("{n} is too large"));
        Ok(match name {
            "none" => CrashPoint::None,
            "before-manifest" => CrashPoint::BeforeManifest(small(number()?)?),
            "after-manifest" => CrashPoint::AfterManifest(small(number()?)?),
            "mid-file-upload" => CrashPoint::MidFileUpload {
                upload: small(number()?)?,
                bytes: number()?,
            },
            "mid-download" => CrashPoint::MidDownload(number()?),
            "after-file-delete" => CrashPoint::AfterFileDelete(small(number()?)?),
            "after-manifest-delete" => CrashPoint::AfterManifestDelete(small(number()?)?),
            other => return Err(format!("unknown crash point {other:?}")),
        })
    }
}

/// What the wrapper has seen so far.
#[derive(Default)]
struct Seen {
    manifest_puts: AtomicU32,
    /// File bytes sent since a `MidFileUpload` crash point became due.
    file_bytes: AtomicU64,
    get_bytes: AtomicU64,
    file_deletes: AtomicU32,
    manifest_deletes: AtomicU32,
}

/// The wrapper; see the module docs.
pub struct CrashingStore {
    inner: Arc<dyn ObjectStore>,
    point: CrashPoint,
    journal: PathBuf,
    seen: Arc<Seen>,
}

impl CrashingStore {
    /// `inner`, killing this process at `point` after noting it in `journal`.
    pub fn new(inner: Arc<dyn ObjectStore>, point: CrashPoint, journal: PathBuf) -> Self {
        Self {
            inner,
            point,
            journal,
            seen: Arc::new(Seen::default()),
        }
    }
}

/// Notes the crash point in the journal, then SIGKILLs this process.
fn die(journal: &std::path::Path, point: CrashPoint) -> ! {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(journal)
    {
        let _ = writeln!(file, "crash {point}");
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    // SIGKILL is neither caught nor ignored: nothing after it runs. Should it somehow
    // not arrive, abort rather than carry on past the crash point.
    std::process::abort()
}

/// Which directory of the layout `location` is in.
fn kind_of(location: &Path) -> &'static str {
    let text = location.as_ref();
    if text.contains("/files/") {
        "files"
    } else if text.contains("/manifests/") {
        "manifests"
    } else {
        "other"
    }
}

impl fmt::Display for CrashingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CrashingStore({}, {})", self.inner, self.point)
    }
}

impl fmt::Debug for CrashingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CrashingStore({})", self.point)
    }
}

#[async_trait]
impl ObjectStore for CrashingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreResult<PutResult> {
        match (kind_of(location), self.point) {
            ("manifests", CrashPoint::BeforeManifest(n))
                if self.seen.manifest_puts.load(Ordering::SeqCst) + 1 == n =>
            {
                die(&self.journal, self.point);
            }
            ("files", CrashPoint::MidFileUpload { upload, bytes }) => {
                let len = payload.content_length() as u64;
                let due = self.seen.manifest_puts.load(Ordering::SeqCst) + 1 >= upload;
                let sent = if due {
                    self.seen.file_bytes.fetch_add(len, Ordering::SeqCst)
                } else {
                    0
                };
                if due && len > 1 && sent + len > bytes {
                    // Part of this file: at least one byte, never all of it.
                    let cut = bytes.saturating_sub(sent).clamp(1, len - 1);
                    let prefix: Vec<u8> = payload
                        .iter()
                        .flat_map(|chunk| chunk.iter().copied())
                        .take(usize::try_from(cut).unwrap_or(usize::MAX))
                        .collect();
                    let mut partial = self
                        .inner
                        .put_multipart_opts(location, PutMultipartOptions::default())
                        .await?;
                    partial.put_part(PutPayload::from(prefix)).await?;
                    die(&self.journal, self.point);
                }
            }
            _ => {}
        }
        let manifest = kind_of(location) == "manifests";
        let put = self.inner.put_opts(location, payload, opts).await;
        if manifest && put.is_ok() {
            let published = self.seen.manifest_puts.fetch_add(1, Ordering::SeqCst) + 1;
            if self.point == CrashPoint::AfterManifest(published) {
                die(&self.journal, self.point);
            }
        }
        put
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        // Checkpoint files here stay far below the 5 MiB multipart threshold.
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        let watch = match self.point {
            CrashPoint::MidDownload(limit) if kind_of(location) == "files" && !options.head => {
                limit
            }
            _ => return self.inner.get_opts(location, options).await,
        };
        let got = self.inner.get_opts(location, options).await?;
        let (meta, range, attributes, extensions) = (
            got.meta.clone(),
            got.range.clone(),
            got.attributes.clone(),
            got.extensions.clone(),
        );
        let mut body = got.into_stream();
        let seen = self.seen.clone();
        let (journal, point) = (self.journal.clone(), self.point);
        let counted = futures::stream::poll_fn(move |cx| {
            // Checked before reading on: what was handed out is written by now.
            if seen.get_bytes.load(Ordering::SeqCst) >= watch {
                die(&journal, point);
            }
            let polled = body.poll_next_unpin(cx);
            if let Poll::Ready(Some(Ok(chunk))) = &polled {
                seen.get_bytes
                    .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            polled
        });
        Ok(GetResult {
            payload: GetResultPayload::Stream(counted.boxed()),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<Path>>,
    ) -> BoxStream<'static, StoreResult<Path>> {
        let seen = self.seen.clone();
        let (journal, point) = (self.journal.clone(), self.point);
        self.inner
            .delete_stream(locations)
            .inspect_ok(move |deleted| {
                let (count, limit) = match (kind_of(deleted), point) {
                    ("files", CrashPoint::AfterFileDelete(n)) => (&seen.file_deletes, n),
                    ("manifests", CrashPoint::AfterManifestDelete(n)) => {
                        (&seen.manifest_deletes, n)
                    }
                    _ => return,
                };
                if count.fetch_add(1, Ordering::SeqCst) + 1 == limit {
                    die(&journal, point);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_points_read_back_what_they_print() {
        for point in [
            CrashPoint::None,
            CrashPoint::BeforeManifest(3),
            CrashPoint::AfterManifest(2),
            CrashPoint::MidFileUpload {
                upload: 2,
                bytes: 700,
            },
            CrashPoint::MidDownload(5),
            CrashPoint::AfterFileDelete(1),
            CrashPoint::AfterManifestDelete(1),
        ] {
            assert_eq!(point.to_string().parse::<CrashPoint>(), Ok(point));
        }
        assert!("mid-download".parse::<CrashPoint>().is_err());
        assert!("sideways:1".parse::<CrashPoint>().is_err());
    }
}
