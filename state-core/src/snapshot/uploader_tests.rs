use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures::executor::block_on;

use super::*;
use crate::snapshot::{DownloadSummary, ListedSnapshot, RetentionSummary, SnapshotManifest};
use crate::{Offset, Position};

/// Records what it was asked to upload; fails checkpoints at position 13.
#[derive(Default)]
struct Recording {
    uploads: Mutex<Vec<(SnapshotScope, Offset)>>,
    retained: Mutex<Vec<(SnapshotScope, usize)>>,
}

#[async_trait]
impl SnapshotStore for Recording {
    fn location(&self) -> String {
        "memory://recording".to_owned()
    }

    async fn upload(
        &self,
        scope: &SnapshotScope,
        checkpoint: &Checkpoint,
    ) -> Result<UploadSummary> {
        let position = checkpoint.applied(scope.partition)?;
        assert!(
            checkpoint.dir.is_dir(),
            "the checkpoint is removed only after its upload"
        );
        if position == 13 {
            return Err(Error::corruption("refused"));
        }
        self.uploads.lock().unwrap().push((scope.clone(), position));
        Ok(UploadSummary {
            id: format!("m-{position}"),
            position,
            files_uploaded: 0,
            bytes_uploaded: 0,
            files_reused: 0,
            bytes_reused: 0,
            elapsed: Duration::ZERO,
        })
    }

    async fn list(&self, _: &SnapshotScope) -> Result<Vec<ListedSnapshot>> {
        Ok(Vec::new())
    }

    async fn download(
        &self,
        _: &SnapshotManifest,
        _: &Path,
        _: Option<&Path>,
    ) -> Result<DownloadSummary> {
        Err(Error::unsupported("recording only"))
    }

    async fn retain(&self, scope: &SnapshotScope, keep: usize) -> Result<RetentionSummary> {
        self.retained.lock().unwrap().push((scope.clone(), keep));
        Ok(RetentionSummary::default())
    }
}

struct Dirs(PathBuf);

impl Dirs {
    fn new(test: &str) -> Self {
        let root = std::env::temp_dir().join(format!("ss-uploader-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        Self(root)
    }

    fn checkpoint(&self, partition: crate::Partition, position: Offset) -> Checkpoint {
        let dir = self.0.join(format!("{partition}-{position}"));
        std::fs::create_dir_all(&dir).unwrap();
        Checkpoint {
            dir,
            backend: "test".to_owned(),
            backend_format: 1,
            position: Position::from_iter([(partition, position)]),
            files: Vec::new(),
        }
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scope(partition: crate::Partition) -> SnapshotScope {
    SnapshotScope::new("app", "counts", partition)
}

#[test]
fn a_queued_checkpoint_is_replaced_by_a_newer_one_of_its_scope() {
    let dirs = Dirs::new("replace");
    let store = Arc::new(Recording::default());
    let uploader = SnapshotUploader::new(store.clone(), UploaderConfig::default());
    let older = dirs.checkpoint(0, 5);
    let older_dir = older.dir.clone();
    assert!(uploader.submit(scope(0), older));
    assert!(uploader.submit(scope(1), dirs.checkpoint(1, 7)));
    let newer = dirs.checkpoint(0, 9);
    let newer_dir = newer.dir.clone();
    assert!(uploader.submit(scope(0), newer));
    assert!(
        !older_dir.exists(),
        "the replaced checkpoint is removed at once"
    );
    block_on(async {
        let run = uploader.run();
        futures::pin_mut!(run);
        let flushed = async {
            uploader.flush().await.unwrap();
            uploader.close();
        };
        futures::join!(run, flushed);
    });
    let mut uploads = store.uploads.lock().unwrap().clone();
    uploads.sort();
    assert_eq!(uploads, vec![(scope(0), 9), (scope(1), 7)]);
    assert!(!newer_dir.exists(), "an uploaded checkpoint is removed");
    assert_eq!(store.retained.lock().unwrap().len(), 2);
    assert!(matches!(
        uploader.last_outcome(&scope(0)),
        Some(UploadOutcome::Uploaded(summary)) if summary.position == 9
    ));
}

#[test]
fn a_failed_upload_is_recorded_and_its_checkpoint_removed() {
    let dirs = Dirs::new("failed");
    let store = Arc::new(Recording::default());
    let uploader = SnapshotUploader::new(store.clone(), UploaderConfig::default());
    let failing = dirs.checkpoint(3, 13);
    let failing_dir = failing.dir.clone();
    uploader.submit(scope(3), failing);
    uploader.close();
    block_on(uploader.run());
    assert!(!failing_dir.exists());
    assert!(matches!(
        uploader.last_outcome(&scope(3)),
        Some(UploadOutcome::Failed(error)) if error.contains("refused")
    ));
    assert!(
        store.retained.lock().unwrap().is_empty(),
        "no retention after a failure"
    );
}

#[test]
fn flushing_an_uploader_nobody_runs_is_an_error_not_a_hang() {
    let dirs = Dirs::new("not-running");
    let uploader = SnapshotUploader::new(Arc::new(Recording::default()), UploaderConfig::default());
    uploader.submit(scope(0), dirs.checkpoint(0, 1));
    let err = block_on(uploader.flush()).unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
}

#[test]
fn a_closed_uploader_refuses_checkpoints_and_removes_them() {
    let dirs = Dirs::new("closed");
    let uploader = SnapshotUploader::new(Arc::new(Recording::default()), UploaderConfig::default());
    uploader.close();
    let checkpoint = dirs.checkpoint(0, 1);
    let dir = checkpoint.dir.clone();
    assert!(!uploader.submit(scope(0), checkpoint));
    assert!(!dir.exists());
    block_on(uploader.run());
}

#[test]
fn a_begun_checkpoint_is_written_off_the_caller_then_uploaded() {
    let dirs = Dirs::new("deferred");
    let store = Arc::new(Recording::default());
    let uploader = SnapshotUploader::new(store.clone(), UploaderConfig::default());
    let written = dirs.checkpoint(2, 21);
    let dir = written.dir.clone();
    let caller = std::thread::current().id();
    let writer = Arc::new(Mutex::new(None));
    let pending = PendingCheckpoint::deferred(dir.clone(), {
        let writer = writer.clone();
        move || {
            *writer.lock().unwrap() = Some(std::thread::current().id());
            Ok(written)
        }
    });
    assert!(uploader.submit(scope(2), pending));
    uploader.close();
    block_on(uploader.run());
    assert_eq!(store.uploads.lock().unwrap().clone(), vec![(scope(2), 21)]);
    let wrote_on = writer
        .lock()
        .unwrap()
        .expect("the checkpoint was never written");
    assert_ne!(
        wrote_on, caller,
        "a begun checkpoint's files are written on a thread of their own"
    );
    assert!(!dir.exists(), "an uploaded checkpoint is removed");
}

#[test]
fn a_begun_checkpoint_that_fails_to_write_is_recorded_and_removed() {
    let dirs = Dirs::new("deferred-fails");
    let store = Arc::new(Recording::default());
    let uploader = SnapshotUploader::new(store.clone(), UploaderConfig::default());
    let dir = dirs.checkpoint(4, 1).dir;
    let pending = PendingCheckpoint::deferred(dir.clone(), || Err(Error::internal("disk full")));
    assert!(uploader.submit(scope(4), pending));
    uploader.close();
    block_on(uploader.run());
    assert!(store.uploads.lock().unwrap().is_empty());
    assert!(!dir.exists(), "a checkpoint that failed is removed");
    assert!(matches!(
        uploader.last_outcome(&scope(4)),
        Some(UploadOutcome::Failed(error)) if error.contains("disk full")
    ));
}
