//! Uploading a checkpoint: hash every file, send the ones the newest snapshot does not
//! hold, then publish the manifest with `PutMode::Create` — unless the upload ran past
//! `max_upload` or a retention pass is deleting a file it names, in which case nothing
//! is published (see the crate's retention notes for why both matter).
//!
//! Files are content-named, so "does the store hold it" is a question about the newest
//! readable manifest: a file it names (same checksum and size) is confirmed with a HEAD
//! and not sent. RocksDB's SST files never change once written, so after the first
//! snapshot an upload sends the SSTs written since the last one. A file named only by an
//! older manifest, or by none, is sent again (it may be on its way out).
//!
//! What is sent is hashed again as it is read, and an upload whose bytes no longer
//! match the checksum taken first (the checkpoint changed underneath) fails before its
//! manifest exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{StreamExt, TryStreamExt};
use object_store::{MultipartUpload, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use state_core::snapshot::UploadSummary;
use state_core::{
    Checkpoint, Error, ErrorKind, Offset, Result, SnapshotManifest, SnapshotScope, SnapshotStore,
};
use tokio::io::AsyncReadExt;

use crate::ObjectSnapshotStore;
use crate::error::map_error;
use crate::hash::{checksum, hash_file};
use crate::layout::{ManifestKey, RecordKind, ScopeKeys, checksum_hex};
use crate::listing::Outcome;

/// One distinct file object of an upload.
#[derive(Debug, Clone)]
struct Object {
    /// Blake3 hex: its name.
    hex: String,
    size: u64,
    /// A checkpoint file holding these bytes.
    local: PathBuf,
}

/// The upload's clock: the configured one and real time, whichever says more.
struct Deadline {
    started: Instant,
    started_millis: u64,
    max: Duration,
}

impl Deadline {
    fn elapsed(&self, store: &ObjectSnapshotStore) -> Duration {
        let by_clock = store
            .config
            .clock
            .now_millis()
            .saturating_sub(self.started_millis);
        Duration::from_millis(by_clock).max(self.started.elapsed())
    }

    /// `Timeout` once the upload took longer than `max_upload`.
    fn check(&self, store: &ObjectSnapshotStore, scope: &SnapshotScope) -> Result<()> {
        let elapsed = self.elapsed(store);
        if elapsed > self.max {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "uploading a snapshot of {scope} to {} took {elapsed:?}, more than \
                     max_upload {:?}; no manifest was published (retention removes the \
                     files sent)",
                    store.location(),
                    self.max
                ),
            ));
        }
        Ok(())
    }
}

impl ObjectSnapshotStore {
    pub(crate) async fn upload_checkpoint(
        &self,
        scope: &SnapshotScope,
        checkpoint: &Checkpoint,
    ) -> Result<UploadSummary> {
        let deadline = Deadline {
            started: Instant::now(),
            started_millis: self.config.clock.now_millis(),
            max: self.config.max_upload,
        };
        let keys = self.keys(scope)?;
        let position = checkpoint.applied(scope.partition)?;
        if position < 0 {
            return Err(Error::invalid_input(format!(
                "checkpoint in {} of {scope} has the negative position {position}",
                checkpoint.dir.display()
            )));
        }

        let checksums = self.hash_checkpoint(checkpoint).await?;
        let mut objects: BTreeMap<String, Object> = BTreeMap::new();
        for (file, sum) in checkpoint.files.iter().zip(&checksums) {
            let hex = checksum_hex(sum, "a checkpoint file")?.to_owned();
            objects.entry(hex.clone()).or_insert_with(|| Object {
                hex,
                size: file.size,
                local: checkpoint.dir.join(&file.path),
            });
        }

        // The base: the newest readable manifest. Its files are the ones not sent again.
        let listed = self.list_manifests(scope, &keys).await?;
        let mut base = None;
        for entry in listed {
            match entry.outcome {
                // Skipping a manifest that failed to load could build on an older one
                // than the newest, which retention may already be removing.
                Outcome::Unfetched(err) => return Err(err),
                Outcome::Unreadable(_) => {}
                Outcome::Readable(manifest) => {
                    base = Some(manifest);
                    break;
                }
            }
        }
        let in_base: BTreeSet<(String, u64)> = base
            .as_ref()
            .map(|manifest| {
                manifest
                    .files
                    .iter()
                    .filter_map(|f| Some((checksum_hex(&f.checksum, "").ok()?.to_owned(), f.size)))
                    .collect()
            })
            .unwrap_or_default();
        let (to_check, mut to_send): (Vec<Object>, Vec<Object>) = objects
            .values()
            .cloned()
            .partition(|o| in_base.contains(&(o.hex.clone(), o.size)));
        let present = self.confirm_present(&keys, &to_check).await?;
        let reused: Vec<&Object> = to_check
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(o, _)| o)
            .collect();
        to_send.extend(
            to_check
                .iter()
                .zip(&present)
                .filter(|(_, p)| !**p)
                .map(|(o, _)| o.clone()),
        );
        deadline.check(self, scope)?;

        let remaining = self
            .config
            .max_upload
            .saturating_sub(deadline.elapsed(self));
        let keys = &keys;
        let sending = futures::stream::iter(to_send.clone())
            .map(|object| async move { self.send(keys, &object).await })
            .buffer_unordered(self.config.max_concurrent_transfers)
            .try_collect::<Vec<()>>();
        match tokio::time::timeout(remaining, sending).await {
            Ok(sent) => {
                sent?;
            }
            Err(_) => {
                deadline.check(self, scope)?;
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("uploading a snapshot of {scope}: transfers outlasted max_upload"),
                ));
            }
        }

        deadline.check(self, scope)?;
        let names: BTreeSet<String> = objects.keys().cloned().collect();
        self.check_no_deletion_of(scope, keys, &names).await?;
        deadline.check(self, scope)?;
        let id = self
            .publish(scope, keys, checkpoint, checksums, position)
            .await?;
        Ok(UploadSummary {
            id,
            position,
            files_uploaded: to_send.len(),
            bytes_uploaded: to_send.iter().map(|o| o.size).sum(),
            files_reused: reused.len(),
            bytes_reused: reused.iter().map(|o| o.size).sum(),
            elapsed: deadline.started.elapsed(),
        })
    }

    /// The checksum of every checkpoint file, in order; a file whose size differs from
    /// the checkpoint's is refused.
    async fn hash_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Vec<String>> {
        let files: Vec<(PathBuf, u64)> = checkpoint
            .files
            .iter()
            .map(|file| (checkpoint.dir.join(&file.path), file.size))
            .collect();
        futures::stream::iter(files)
            .map(|(path, expected)| async move {
                let (size, hash) = hash_file(path.clone()).await?;
                if size != expected {
                    return Err(Error::corruption(format!(
                        "checkpoint file {} is {size} bytes, but the checkpoint says {expected}",
                        path.display()
                    )));
                }
                Ok(checksum(&hash))
            })
            .buffered(self.config.max_concurrent_transfers)
            .try_collect()
            .await
    }

    /// For each object, whether the store holds it with its size.
    async fn confirm_present(&self, keys: &ScopeKeys, objects: &[Object]) -> Result<Vec<bool>> {
        futures::stream::iter(objects.to_vec())
            .map(|object| async move {
                let location = keys.file(&object.hex);
                let _permit = self.permit().await?;
                match self.store.head(&location).await {
                    Ok(meta) => Ok(meta.size == object.size),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(err) => Err(map_error(err, format!("checking {}", self.url(&location)))),
                }
            })
            .buffered(self.config.max_concurrent_transfers)
            .try_collect()
            .await
    }

    /// Sends one object: one request up to `part_size`, a multipart upload above.
    async fn send(&self, keys: &ScopeKeys, object: &Object) -> Result<()> {
        let location = keys.file(&object.hex);
        let doing = || {
            format!(
                "uploading {} to {}",
                object.local.display(),
                self.url(&location)
            )
        };
        if object.size <= self.config.part_size {
            let permit = self.permit().await?;
            self.throttle.take(object.size).await;
            let bytes = tokio::fs::read(&object.local)
                .await
                .map_err(|err| Error::from(err).context(doing()))?;
            check_sent(object, bytes.len() as u64, &blake3::hash(&bytes))?;
            self.store
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(|err| map_error(err, doing()))?;
            drop(permit);
            return Ok(());
        }
        let mut upload = self
            .store
            .put_multipart(&location)
            .await
            .map_err(|err| map_error(err, doing()))?;
        let sent = self.send_parts(upload.as_mut(), object).await;
        let done = match sent {
            Ok(()) => upload
                .complete()
                .await
                .map(|_| ())
                .map_err(|err| map_error(err, doing())),
            Err(err) => Err(err),
        };
        if done.is_err() {
            // Best effort: a multipart upload left open costs storage until the bucket's
            // lifecycle rule (or a later abort) removes it; the error that matters is
            // the one returned.
            let _ = upload.abort().await;
        }
        done.map_err(|err| err.context(doing()))
    }

    /// Sends `object` in parts of `part_size`, each a request of its own holding a
    /// transfer permit, hashing as it reads.
    async fn send_parts(&self, upload: &mut dyn MultipartUpload, object: &Object) -> Result<()> {
        let mut file = tokio::fs::File::open(&object.local).await.map_err(|err| {
            Error::from(err).context(format!("opening {}", object.local.display()))
        })?;
        let mut hasher = blake3::Hasher::new();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        while offset < object.size {
            let permit = self.permit_owned().await?;
            let len = self.config.part_size.min(object.size - offset);
            self.throttle.take(len).await;
            let mut buf = BytesMut::zeroed(usize::try_from(len).unwrap_or(usize::MAX));
            file.read_exact(&mut buf).await.map_err(|err| {
                Error::corruption(format!(
                    "checkpoint file {} changed while uploading (reading at {offset}: {err})",
                    object.local.display()
                ))
            })?;
            hasher.update(&buf);
            let part = upload.put_part(PutPayload::from(buf.freeze()));
            parts.push(tokio::spawn(async move {
                let _permit = permit;
                part.await
            }));
            offset += len;
        }
        let mut failed = None;
        for part in parts {
            let outcome = part
                .await
                .map_err(|err| Error::internal(format!("a part upload task failed: {err}")))
                .and_then(|sent| sent.map_err(|err| map_error(err, "sending a part")));
            if let Err(err) = outcome {
                failed.get_or_insert(err);
            }
        }
        if let Some(err) = failed {
            return Err(err);
        }
        check_sent(object, offset, &hasher.finalize())
    }

    /// Fails, as `Unavailable`, when a retention pass may be deleting one of `names`
    /// (its `deleting` record lists it and is younger than twice `max_upload`):
    /// publishing a manifest naming it could leave the manifest naming a missing file.
    /// See the crate's retention notes for why twice `max_upload` covers every such
    /// pass.
    async fn check_no_deletion_of(
        &self,
        scope: &SnapshotScope,
        keys: &ScopeKeys,
        names: &BTreeSet<String>,
    ) -> Result<()> {
        let now = self.config.clock.now_millis();
        let expiry = millis(self.config.max_upload).saturating_mul(2);
        for (record, location) in self.list_records(keys).await? {
            if record.kind != RecordKind::Deleting || record.millis.saturating_add(expiry) < now {
                continue;
            }
            let body = match self.read_record(&location).await {
                Ok(Some(body)) => body,
                Ok(None) => continue,
                Err(err) if err.kind() == ErrorKind::Corruption => {
                    return Err(Error::unavailable(format!(
                        "uploading a snapshot of {scope}: a retention pass by {} is deleting \
                         files and its record cannot be read ({err}); nothing was published, \
                         retry after it expires",
                        record.writer
                    )));
                }
                Err(err) => return Err(err),
            };
            if let Some(hex) = body.files.intersection(names).next() {
                return Err(Error::unavailable(format!(
                    "uploading a snapshot of {scope}: a retention pass by {} is deleting file \
                     {} that this snapshot names; nothing was published, retry",
                    record.writer,
                    self.url(&keys.file(hex))
                )));
            }
        }
        Ok(())
    }

    /// Publishes the manifest, never over another: a name taken (the same writer at
    /// the same position in the same millisecond) moves the time on by a millisecond.
    async fn publish(
        &self,
        scope: &SnapshotScope,
        keys: &ScopeKeys,
        checkpoint: &Checkpoint,
        checksums: Vec<String>,
        position: Offset,
    ) -> Result<String> {
        let mut created_millis = self.config.clock.now_millis();
        for _ in 0..3 {
            let manifest = SnapshotManifest::of(
                scope,
                checkpoint,
                checksums.clone(),
                &self.writer,
                created_millis,
            )?;
            let key = ManifestKey {
                position,
                created_millis,
                writer: self.writer.clone(),
            };
            let location = keys.manifest(&key);
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .store
                .put_opts(&location, manifest.to_json().into(), options)
                .await
            {
                Ok(_) => return Ok(location.to_string()),
                Err(
                    object_store::Error::AlreadyExists { .. }
                    | object_store::Error::Precondition { .. },
                ) => {
                    created_millis += 1;
                }
                Err(err) => {
                    return Err(map_error(
                        err,
                        format!("publishing snapshot manifest {}", self.url(&location)),
                    ));
                }
            }
        }
        Err(Error::internal(format!(
            "publishing a snapshot of {scope}: three manifest names of writer {} were taken",
            self.writer
        )))
    }

    pub(crate) async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.transfers
            .acquire()
            .await
            .map_err(|_| Error::internal("the transfer semaphore was closed"))
    }

    pub(crate) async fn permit_owned(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.transfers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the transfer semaphore was closed"))
    }
}

/// Refuses bytes that are not what was hashed before the upload started.
fn check_sent(object: &Object, size: u64, hash: &blake3::Hash) -> Result<()> {
    if size != object.size || hash.to_hex().as_str() != object.hex {
        return Err(Error::corruption(format!(
            "checkpoint file {} changed while uploading: {size} bytes hashing to {}, \
             expected {} bytes hashing to {}",
            object.local.display(),
            hash.to_hex(),
            object.size,
            object.hex
        )));
    }
    Ok(())
}

/// `duration` in whole milliseconds.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
