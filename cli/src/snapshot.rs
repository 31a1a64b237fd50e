//! `statestore snapshot`: upload local stores to a snapshot store, so another machine
//! relocates them by downloading their files and replaying only the changelog after.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use state_core::snapshot::UploadSummary;
use state_core::{Error, ErrorKind, Partition, Result, SnapshotScope, SnapshotStore};

use crate::backend::Location;
use crate::errors;

/// What `statestore snapshot` was asked to do.
#[derive(Debug, Clone)]
pub struct SnapshotCommand {
    /// Where the stores live.
    pub location: Location,
    /// The partitions to snapshot.
    pub partitions: Vec<Partition>,
    /// Where snapshots go (`s3://bucket/prefix`, `file:///path`).
    pub snapshots: String,
    /// Snapshots kept per partition after the upload.
    pub keep: usize,
    /// Print one JSON object instead of text.
    pub json: bool,
}

/// What one partition's snapshot did.
struct Taken {
    partition: Partition,
    checkpoint: Duration,
    upload: UploadSummary,
}

/// Checkpoints and uploads every partition's store, one at a time; prints what each
/// upload sent and what it found already there.
pub async fn run(command: &SnapshotCommand) -> Result<bool> {
    let location = &command.location;
    if !location.backend.capability().snapshots {
        return Err(Error::unsupported(format!(
            "the {} backend takes no snapshots",
            location.backend.name()
        )));
    }
    errors::require_dir(&location.state_dir, "state directory")?;
    let store = crate::snapshots::open(&command.snapshots)?;
    let mut taken = Vec::with_capacity(command.partitions.len());
    for &partition in &command.partitions {
        let one = snapshot_one(location, partition, store.as_ref(), command.keep).await?;
        if !command.json {
            print(location, &one);
        }
        taken.push(one);
    }
    if command.json {
        println!("{}", json(location, store.as_ref(), &taken));
    }
    Ok(true)
}

async fn snapshot_one(
    location: &Location,
    partition: Partition,
    snapshots: &dyn SnapshotStore,
    keep: usize,
) -> Result<Taken> {
    let dir = location.store_dir(partition)?;
    if !dir.is_dir() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no {} store {} of application {} partition {partition} at {}",
                location.backend.name(),
                location.store,
                location.application_id,
                dir.display()
            ),
        ));
    }
    // The store is opened for writing (a checkpoint needs a writer's view): no other
    // writer may be at work on it meanwhile.
    let lock = location.lock(partition)?;
    let store = location.backend.supplier(&location.store).open(&dir)?;
    let scratch = scratch_beside(&dir)?;
    let started = Instant::now();
    let checkpoint = store.checkpoint(&scratch.path().join("checkpoint"));
    let closed = store.close();
    // The upload reads the checkpoint, not the store.
    drop(lock);
    let checkpoint = checkpoint?;
    closed?;
    let checkpoint_time = started.elapsed();
    let scope = SnapshotScope::new(&location.application_id, &location.store, partition);
    let upload = snapshots.upload(&scope, &checkpoint).await?;
    snapshots.retain(&scope, keep).await?;
    Ok(Taken {
        partition,
        checkpoint: checkpoint_time,
        upload,
    })
}

/// A temporary directory beside the store (a checkpoint may hard-link the store's
/// files, which needs the same filesystem), removed when dropped.
fn scratch_beside(dir: &Path) -> Result<tempfile::TempDir> {
    let parent = dir.parent().unwrap_or(dir);
    tempfile::Builder::new()
        .prefix(".snapshot-")
        .tempdir_in(parent)
        .map_err(|err| {
            Error::from(err).context(format!("creating a directory in {}", parent.display()))
        })
}

fn print(location: &Location, taken: &Taken) {
    let upload = &taken.upload;
    println!(
        "partition {}: snapshot {} of store {} at offset {}: checkpoint {:.2?}, upload {:.2?}: {} files ({} bytes) sent, {} files ({} bytes) already there",
        taken.partition,
        upload.id,
        location.store,
        upload.position,
        taken.checkpoint,
        upload.elapsed,
        upload.files_uploaded,
        upload.bytes_uploaded,
        upload.files_reused,
        upload.bytes_reused,
    );
}

fn json(location: &Location, snapshots: &dyn SnapshotStore, taken: &[Taken]) -> String {
    let partitions: Vec<String> = taken
        .iter()
        .map(|t| {
            format!(
                "{{\"partition\":{},\"id\":{:?},\"position\":{},\"checkpoint_millis\":{:.1},\"upload_millis\":{:.1},\"files_uploaded\":{},\"bytes_uploaded\":{},\"files_reused\":{},\"bytes_reused\":{}}}",
                t.partition,
                t.upload.id,
                t.upload.position,
                t.checkpoint.as_secs_f64() * 1000.0,
                t.upload.elapsed.as_secs_f64() * 1000.0,
                t.upload.files_uploaded,
                t.upload.bytes_uploaded,
                t.upload.files_reused,
                t.upload.bytes_reused,
            )
        })
        .collect();
    format!(
        "{{\"mode\":\"snapshot\",\"backend\":\"{}\",\"store\":{:?},\"snapshots\":{:?},\"per_partition\":[{}]}}",
        location.backend.name(),
        location.store,
        snapshots.location(),
        partitions.join(",")
    )
}

/// The snapshot store of `--snapshots`, when given.
pub fn store_of(url: Option<&String>) -> Result<Option<Arc<dyn SnapshotStore>>> {
    url.map(|url| crate::snapshots::open(url)).transpose()
}
