//! The snapshot step of a restore: replace a store that is behind its newest usable
//! snapshot with that snapshot, so only the changelog's tail is replayed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::cancel::unless_cancelled;
use super::{RestoreListener, RestoreTarget};
use crate::snapshot::scratch::{remove_quietly, scratch_dir};
use crate::snapshot::{
    DownloadSummary, ListedSnapshot, SnapshotFallback, SnapshotManifest, SnapshotScope,
    SnapshotStore,
};
use crate::{
    ChangelogReader, Error, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, LogOffsets,
    Offset, Partition, Result,
};

/// Where a store lives, so restore can replace it with a snapshot: the application it
/// belongs to (the snapshots' scope), the backend that opens it and its directory.
///
/// Replacing a store closes it, destroys its files and puts the snapshot's in their
/// place: safe against other processes only while the caller holds the partition's
/// [`PartitionLock`](crate::PartitionLock), as the store builder, the store manager and
/// `statestore restore` do.
#[derive(Clone, Copy)]
pub struct StoreHome<'a> {
    /// The application id.
    pub application: &'a str,
    /// The store's backend.
    pub supplier: &'a dyn KeyValueBytesStoreSupplier,
    /// The store's directory.
    pub dir: &'a Path,
}

/// What restoring from a snapshot did, reported in the
/// [`RestoreSummary`](super::RestoreSummary) and to the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRestore {
    /// The manifest's name in the snapshot store.
    pub id: String,
    /// The changelog offset the snapshot holds; the tail is replayed after it.
    pub position: Offset,
    /// What the download fetched and what it reused from the local directory.
    pub download: DownloadSummary,
    /// Time to open the downloaded files as the store.
    pub open: Duration,
}

/// The store to go on with: the snapshot's when one was usable, else the one given.
/// Never fails for the snapshot's sake: whatever makes a snapshot unusable is reported to
/// `listener` and logged, and restore replays instead. Errors are the local store's
/// (closing or destroying it) or the changelog's.
pub(super) async fn replace_from_snapshot(
    store: Arc<dyn KeyValueStore>,
    snapshots: &dyn SnapshotStore,
    home: StoreHome<'_>,
    reader: &dyn ChangelogReader,
    partition: Partition,
    cancel: Option<&Arc<AtomicBool>>,
    listener: &dyn RestoreListener,
) -> Result<(Arc<dyn KeyValueStore>, Option<SnapshotRestore>)> {
    let name = store.name().to_owned();
    let target = RestoreTarget {
        topic: reader.topic(),
        store: &name,
        partition,
    };
    let capability = store.capability();
    if !capability.snapshots {
        let reason = SnapshotFallback::Unsupported(capability.backend.to_owned());
        report(snapshots, target, &reason, listener);
        return Ok((store, None));
    }
    let scope = SnapshotScope::new(home.application, name.as_str(), partition);
    let offsets = reader.offsets(partition).await?;
    // A local position outside the log is wiped by the replay anyway: it counts as none.
    let local = store
        .position()?
        .applied(partition)
        .filter(|&applied| applied + 1 >= offsets.start && applied < offsets.log_end);
    let listed = match snapshots.list(&scope).await {
        Ok(listed) => listed,
        Err(err) => {
            report(
                snapshots,
                target,
                &SnapshotFallback::ListFailed(err.to_string()),
                listener,
            );
            return Ok((store, None));
        }
    };
    let usable = usable(listed, &scope, capability, offsets, |reason| {
        report(snapshots, target, &reason, listener)
    });
    let mut store = Some(store);
    for (id, manifest) in usable {
        if local.is_some_and(|applied| applied >= manifest.position) {
            // The local store is as far as the newest usable snapshot: nothing to fetch.
            break;
        }
        let current = store.take().ok_or_else(|| {
            Error::internal(format!("store {} closed before its snapshot", target.store))
        })?;
        match install(
            current,
            snapshots,
            &id,
            &manifest,
            home,
            (partition, cancel),
        )
        .await
        {
            Installed::Replaced(replaced, restored) => {
                log::info!(
                    "store {} partition {partition} restored from snapshot {id} in {} at offset {}: {} files ({} bytes) downloaded, {} files ({} bytes) reused from {}",
                    target.store,
                    snapshots.location(),
                    manifest.position,
                    restored.download.files_downloaded,
                    restored.download.bytes_downloaded,
                    restored.download.files_reused,
                    restored.download.bytes_reused,
                    home.dir.display()
                );
                listener.on_snapshot_restored(target, &restored);
                return Ok((replaced, Some(restored)));
            }
            Installed::Cancelled => {
                return Err(Error::new(
                    ErrorKind::Closed,
                    format!(
                        "restore of store {} cancelled while downloading snapshot {id} from {}",
                        target.store,
                        snapshots.location()
                    ),
                ));
            }
            Installed::Kept(kept, error) => {
                let reason = SnapshotFallback::Failed { id, error };
                report(snapshots, target, &reason, listener);
                store = Some(kept);
            }
            Installed::Lost(error) => {
                // The local store was closed and destroyed for the snapshot that then
                // failed to open: what is left is an empty store, replayed from the start.
                let reason = SnapshotFallback::Failed {
                    id,
                    error: error.to_string(),
                };
                report(snapshots, target, &reason, listener);
                home.supplier.destroy(home.dir)?;
                return Ok((home.supplier.open(home.dir)?, None));
            }
        }
    }
    let store = store.ok_or_else(|| {
        Error::internal(format!(
            "store {} lost during snapshot restore",
            target.store
        ))
    })?;
    Ok((store, None))
}

/// The snapshots worth trying, newest first; every one passed over is reported through
/// `skipped` (and no snapshot at all as [`SnapshotFallback::NoSnapshot`]).
fn usable(
    listed: Vec<ListedSnapshot>,
    scope: &SnapshotScope,
    capability: crate::Capability,
    offsets: LogOffsets,
    mut skipped: impl FnMut(SnapshotFallback),
) -> Vec<(String, SnapshotManifest)> {
    if listed.is_empty() {
        skipped(SnapshotFallback::NoSnapshot);
    }
    let mut usable = Vec::new();
    for ListedSnapshot { id, manifest } in listed {
        let manifest = match manifest {
            Ok(manifest) => manifest,
            Err(err) => {
                skipped(SnapshotFallback::Unreadable {
                    id,
                    error: err.to_string(),
                });
                continue;
            }
        };
        if let Err(err) =
            manifest.check_belongs(scope, capability.backend, capability.snapshot_format)
        {
            skipped(SnapshotFallback::Foreign {
                id,
                error: err.to_string(),
            });
            continue;
        }
        if manifest.position + 1 < offsets.start {
            skipped(SnapshotFallback::BelowLogStart {
                position: manifest.position,
                log_start: offsets.start,
            });
            continue;
        }
        if manifest.position >= offsets.log_end {
            skipped(SnapshotFallback::AboveLogEnd {
                position: manifest.position,
                log_end: offsets.log_end,
            });
            continue;
        }
        usable.push((id, manifest));
    }
    usable
}

/// How installing one snapshot ended.
enum Installed {
    /// The snapshot is the store now.
    Replaced(Arc<dyn KeyValueStore>, SnapshotRestore),
    /// The snapshot was unusable before the local store was touched.
    Kept(Arc<dyn KeyValueStore>, String),
    /// The local store was given up for a snapshot that then failed to open.
    Lost(Error),
    /// The download was cancelled; the local store, untouched, was closed.
    Cancelled,
}

async fn install(
    store: Arc<dyn KeyValueStore>,
    snapshots: &dyn SnapshotStore,
    id: &str,
    manifest: &SnapshotManifest,
    home: StoreHome<'_>,
    (partition, cancel): (Partition, Option<&Arc<AtomicBool>>),
) -> Installed {
    if Arc::strong_count(&store) > 1 {
        return Installed::Kept(
            store,
            format!(
                "the local store at {} is still in use elsewhere, so it cannot be replaced",
                home.dir.display()
            ),
        );
    }
    let download_dir = match download_dir(home.dir) {
        Ok(dir) => dir,
        Err(err) => return Installed::Kept(store, err.to_string()),
    };
    // The local files are only read (a file with the manifest's checksum is copied
    // instead of downloaded), so the store keeps serving until the download is whole.
    let reuse = home.dir.is_dir().then_some(home.dir);
    let download = snapshots.download(manifest, &download_dir, reuse);
    let download = match unless_cancelled(download, cancel).await {
        Some(Ok(download)) => download,
        None => {
            // Dropped mid-transfer: what it wrote goes, and the store closes as it drops.
            remove_quietly(&download_dir);
            return Installed::Cancelled;
        }
        Some(Err(err)) => {
            remove_quietly(&download_dir);
            return Installed::Kept(store, err.to_string());
        }
    };
    let opened = Instant::now();
    if let Err(err) = store.close() {
        remove_quietly(&download_dir);
        return Installed::Lost(err.context("closing the local store before its snapshot"));
    }
    drop(store);
    let replaced = home
        .supplier
        .destroy(home.dir)
        .and_then(|()| home.supplier.open_checkpoint(&download_dir, home.dir))
        .and_then(|replaced| {
            let position = replaced.position()?.applied(partition);
            if position == Some(manifest.position) {
                Ok(replaced)
            } else {
                Err(Error::corruption(format!(
                    "snapshot {id} opened at position {position:?}, its manifest says {}",
                    manifest.position
                )))
            }
        });
    remove_quietly(&download_dir);
    match replaced {
        Ok(replaced) => Installed::Replaced(
            replaced,
            SnapshotRestore {
                id: id.to_owned(),
                position: manifest.position,
                download,
                open: opened.elapsed(),
            },
        ),
        Err(err) => Installed::Lost(err),
    }
}

/// A new directory beside the store's for one download.
fn download_dir(store_dir: &Path) -> Result<PathBuf> {
    let parent = store_dir.parent().ok_or_else(|| {
        Error::invalid_input(format!(
            "store directory {} has no parent",
            store_dir.display()
        ))
    })?;
    let name = store_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    scratch_dir(parent, &format!(".{name}.snapshot-"))
}

fn report(
    snapshots: &dyn SnapshotStore,
    target: RestoreTarget<'_>,
    reason: &SnapshotFallback,
    listener: &dyn RestoreListener,
) {
    let level = match reason {
        SnapshotFallback::NoSnapshot => log::Level::Info,
        _ => log::Level::Warn,
    };
    log::log!(
        level,
        "store {} partition {}: not restoring from a snapshot in {}: {reason}",
        target.store,
        target.partition,
        snapshots.location()
    );
    listener.on_snapshot_fallback(target, reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Capability;

    const CAPABILITY: Capability = Capability::new("test").snapshots(3);

    fn scope() -> SnapshotScope {
        SnapshotScope::new("app", "counts", 2)
    }

    fn listed(
        id: &str,
        scope: &SnapshotScope,
        backend_format: u32,
        position: Offset,
    ) -> ListedSnapshot {
        ListedSnapshot {
            id: id.to_owned(),
            manifest: Ok(SnapshotManifest {
                format: crate::snapshot::MANIFEST_FORMAT,
                application: scope.application.clone(),
                store: scope.store.clone(),
                partition: scope.partition,
                backend: "test".to_owned(),
                backend_format,
                position,
                writer: "w".to_owned(),
                created_millis: 0,
                files: Vec::new(),
            }),
        }
    }

    fn offsets(start: Offset, end: Offset) -> LogOffsets {
        LogOffsets {
            start,
            end,
            log_end: end,
        }
    }

    fn ids(usable: &[(String, SnapshotManifest)]) -> Vec<&str> {
        usable.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn no_snapshot_is_reported() {
        let mut reasons = Vec::new();
        let usable = usable(Vec::new(), &scope(), CAPABILITY, offsets(0, 10), |r| {
            reasons.push(r)
        });
        assert!(usable.is_empty());
        assert_eq!(reasons, vec![SnapshotFallback::NoSnapshot]);
    }

    #[test]
    fn every_passed_over_snapshot_is_reported_and_the_rest_kept_in_order() {
        let own = scope();
        let other = SnapshotScope::new("app", "other", 2);
        let listed = vec![
            listed("above", &own, 3, 100),
            listed("foreign-store", &other, 3, 60),
            listed("old-format", &own, 2, 55),
            ListedSnapshot {
                id: "garbled".to_owned(),
                manifest: Err(crate::Error::corruption("not json")),
            },
            listed("newest-usable", &own, 3, 50),
            listed("older-usable", &own, 3, 9),
            listed("below", &own, 3, 3),
        ];
        let mut reasons = Vec::new();
        let usable = usable(listed, &own, CAPABILITY, offsets(5, 100), |r| {
            reasons.push(r)
        });
        assert_eq!(ids(&usable), vec!["newest-usable", "older-usable"]);
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert_eq!(
            reasons[0],
            SnapshotFallback::AboveLogEnd {
                position: 100,
                log_end: 100
            }
        );
        assert!(
            matches!(&reasons[1], SnapshotFallback::Foreign { id, .. } if id == "foreign-store")
        );
        assert!(matches!(&reasons[2], SnapshotFallback::Foreign { id, .. } if id == "old-format"));
        assert!(matches!(&reasons[3], SnapshotFallback::Unreadable { id, .. } if id == "garbled"));
        assert_eq!(
            reasons[4],
            SnapshotFallback::BelowLogStart {
                position: 3,
                log_start: 5
            }
        );
    }

    #[test]
    fn a_snapshot_just_before_the_log_start_is_usable() {
        let own = scope();
        // Position 4 with log start 5: the tail starts exactly at the log start.
        let usable = usable(
            vec![listed("edge", &own, 3, 4)],
            &own,
            CAPABILITY,
            offsets(5, 9),
            |r| panic!("passed over: {r}"),
        );
        assert_eq!(ids(&usable), vec!["edge"]);
    }
}
