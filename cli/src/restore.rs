//! `statestore restore`: pre-warm local stores from their changelog topic.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use state_core::{
    Error, ErrorKind, FanOutRestoreListener, KeyValueBytesStoreSupplier, LogOffsets, Partition,
    RestoreListener, RestoreOptions, RestoreSummary, Result, StoreHome, catch_up, open_or_rebuild,
};
use tokio::sync::Semaphore;

use crate::backend::Location;
use crate::kafka;
use crate::new_dirs::NewDirs;
use crate::progress::BarListener;
use crate::restore_watch::{Reached, RestoreWatch};
use crate::serdes::KeyValueSerdes;
use crate::stop;

/// What `statestore restore` was asked to do.
#[derive(Debug, Clone)]
pub struct RestoreCommand {
    /// Where the stores live.
    pub location: Location,
    /// The cluster.
    pub bootstrap_servers: String,
    /// The partitions to restore.
    pub partitions: Vec<Partition>,
    /// Serdes that every restored record must fit.
    pub serdes: KeyValueSerdes,
    /// Read records of aborted and open transactions too (`--read-uncommitted`).
    pub read_uncommitted: bool,
    /// Kafka metadata timeout.
    pub timeout: Duration,
    /// How long a restore may read nothing before it gives up (`--stall-timeout`).
    pub stall_timeout: Duration,
    /// Partitions restored at the same time.
    pub parallel: usize,
    /// Records per restore batch (`--batch-size`); `None`: the backend's.
    pub batch_size: Option<usize>,
    /// Print one JSON object instead of text.
    pub json: bool,
    /// Start each store from its newest usable snapshot here, replaying only the tail.
    pub snapshots: Option<String>,
}

/// What one partition's restore did.
struct Restored {
    partition: Partition,
    dir: PathBuf,
    summary: RestoreSummary,
    /// When the restore ended, before the store was closed: closing is the command's
    /// teardown (for RocksDB it waits for the compaction a bulk load deferred), which an
    /// application serving the store never waits for.
    ended: Instant,
}

/// A partition whose restore failed or was interrupted.
struct Failed {
    partition: Partition,
    dir: PathBuf,
    error: Error,
    /// Where this run got to; the store keeps it when it applied anything.
    reached: Reached,
    /// The store was removed: this run created it and applied nothing.
    removed: bool,
}

/// Restores every partition, up to `parallel` at a time; prints what each restore did.
///
/// A restore that fails (a lost broker past `--stall-timeout`, a bad record) or is
/// interrupted (SIGINT, SIGTERM: it stops after its current batch) keeps what it applied,
/// durable and with its position, and says so; the next run resumes there. Only a store
/// this run created and put nothing into is removed, with the directories created for it.
pub async fn run(command: &RestoreCommand) -> Result<bool> {
    let location = &command.location;
    let started = Instant::now();
    let (reader, offsets) = kafka::existing_reader(
        &command.bootstrap_servers,
        command.timeout,
        location,
        &command.partitions,
        kafka::isolation(command.read_uncommitted),
    )
    .await?;
    let metadata = started.elapsed();
    // From here on a signal stops the restores at a batch boundary instead of ending the
    // process mid-batch.
    let Some(_stoppable) = stop::stoppable() else {
        return Err(interrupted());
    };
    let created = NewDirs::before(location, &command.partitions)?;
    std::fs::create_dir_all(&location.state_dir).map_err(|err| {
        Error::from(err).context(format!(
            "creating the state directory {}",
            location.state_dir.display()
        ))
    })?;
    let reader = Arc::new(reader);
    let supplier = location.backend.supplier(&location.store);
    let bar = Arc::new(BarListener::new());
    let watch = Arc::new(RestoreWatch::new(bar.progress_bar(), "stall-timeout"));
    let listener = Arc::new(FanOutRestoreListener::new(vec![
        bar.clone() as Arc<dyn RestoreListener>,
        watch.clone(),
    ]));
    let options = RestoreOptions {
        validator: Some(Arc::new(command.serdes)),
        snapshots: crate::snapshot::store_of(command.snapshots.as_ref())?,
        stall_timeout: command.stall_timeout,
        cancel: Some(stop::cancel_flag()),
        batch_size: command.batch_size,
        ..RestoreOptions::default()
    };
    let slots = Arc::new(Semaphore::new(command.parallel.max(1)));
    let restoring = Instant::now();
    let mut tasks = Vec::with_capacity(command.partitions.len());
    for (&partition, &log) in command.partitions.iter().zip(&offsets) {
        let (reader, supplier, listener, watch, options, slots) = (
            reader.clone(),
            supplier.clone(),
            listener.clone(),
            watch.clone(),
            options.clone(),
            slots.clone(),
        );
        let dir = location.store_dir(partition)?;
        let location = location.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return Ok(None);
            };
            if options.cancelled() {
                // Interrupted while waiting for a slot: nothing to keep, nothing to create.
                eprintln!("partition {partition}: not started: interrupted");
                return Ok(None);
            }
            let home = StoreHome {
                application: &location.application_id,
                supplier: supplier.as_ref(),
                dir: &dir,
            };
            restore_one(
                &location,
                home,
                reader.as_ref(),
                (partition, log),
                &options,
                listener.as_ref(),
                &watch,
            )
            .await
            .map(Some)
        }));
    }
    let mut restored = Vec::with_capacity(tasks.len());
    let mut failed = Vec::new();
    for task in tasks {
        match task
            .await
            .map_err(|err| Error::internal(format!("a restore task failed: {err}")))?
        {
            Ok(Some(done)) => restored.push(done),
            Ok(None) => {}
            Err(failure) => failed.push(failure),
        }
    }
    let elapsed = restoring.elapsed();
    bar.finish();
    for line in bar.fallbacks() {
        eprintln!("{line}");
    }
    created.remove_empty();
    if !failed.is_empty() {
        let durable = location.backend.capability().durable;
        return Err(report_failures(failed, &restored, durable));
    }
    let report = Report {
        command,
        restored: &restored,
        metadata,
        elapsed,
    };
    if command.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    if stop::signalled().is_some() {
        // Every restore had finished when the signal came: nothing was cut short.
        return Err(interrupted());
    }
    Ok(true)
}

fn interrupted() -> Error {
    Error::new(ErrorKind::Closed, "interrupted")
}

async fn restore_one(
    location: &Location,
    home: StoreHome<'_>,
    reader: &changelog_kafka::KafkaReader,
    (partition, log): (Partition, LogOffsets),
    options: &RestoreOptions,
    listener: &dyn RestoreListener,
    watch: &RestoreWatch,
) -> std::result::Result<Restored, Failed> {
    let dir = home.dir.to_owned();
    let supplier = home.supplier;
    let failed = |error: Error, removed: bool| Failed {
        partition,
        dir: dir.clone(),
        error,
        reached: watch.reached(partition),
        removed,
    };
    // One writer per partition, across processes: held from before the store is looked
    // at until it is closed or removed, so what `existed` says stays true throughout and
    // the removal below never takes a store another process made meanwhile.
    let _lock = location.lock(partition).map_err(|err| failed(err, false))?;
    let made_dir = !dir.exists();
    let existed = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some());
    // Still under the lock: nobody else is building a store in a directory this run
    // made. Only an empty one goes (`remove_dir` refuses any other).
    let remove_made_dir = || {
        if made_dir {
            let _ = std::fs::remove_dir(&dir);
        }
    };
    if existed && let Some(summary) = caught_up(supplier, &dir, partition, log) {
        return Ok(Restored {
            partition,
            dir,
            summary,
            ended: Instant::now(),
        });
    }
    let opened = open_or_rebuild(supplier, &dir).map_err(|err| {
        remove_made_dir();
        failed(err, false)
    })?;
    // On an error `catch_up` has left bulk loading, which makes what it applied durable
    // with its position, and dropped the store, which closes it.
    match catch_up(opened, Some(home), reader, partition, options, listener).await {
        Ok((store, summary)) => {
            let ended = Instant::now();
            store.close().map_err(|err| failed(err, false))?;
            Ok(Restored {
                partition,
                dir: dir.clone(),
                summary,
                ended,
            })
        }
        Err(err) => {
            // A store this run created and put nothing into would pass for a valid empty
            // store: remove it. Anything applied stays, to be resumed.
            let remove = !existed && !watch.reached(partition).applied_any();
            let removed = remove
                && supplier
                    .destroy(&dir)
                    .inspect_err(|destroy| {
                        eprintln!("removing the empty store {}: {destroy}", dir.display());
                    })
                    .is_ok();
            if removed {
                remove_made_dir();
            }
            Err(failed(err, removed))
        }
    }
}

/// The summary of a restore with nothing to do, when the store at `dir` is already at
/// the changelog's end: told from a read-only open, so such a run writes no byte (a
/// writable open of a redb file rewrites its header). Anything else (no store, no
/// position, a position the restore must look at) is `None`: the restore decides.
fn caught_up(
    supplier: &dyn KeyValueBytesStoreSupplier,
    dir: &Path,
    partition: Partition,
    log: LogOffsets,
) -> Option<RestoreSummary> {
    if !supplier.durable() {
        return None;
    }
    let store = supplier.open_read_only(dir).ok()?;
    let position = store.position();
    // Nothing was written: a failed close of a read-only handle loses nothing.
    let _ = store.close();
    let next = position.ok()?.applied(partition)? + 1;
    (next == log.end && next >= log.start).then_some(RestoreSummary {
        restored: 0,
        from: next,
        end: log.end,
        wiped: None,
        elapsed: Duration::ZERO,
        snapshot: None,
    })
}

/// Says what each failed partition kept; returns the error to report (the first one, or
/// the interruption).
fn report_failures(failed: Vec<Failed>, restored: &[Restored], durable: bool) -> Error {
    let signalled = stop::signalled().is_some();
    for done in restored {
        eprintln!(
            "partition {}: restored, {} records (offsets {}..{}) into {}",
            done.partition,
            done.summary.restored,
            done.summary.from,
            done.summary.end,
            done.dir.display()
        );
    }
    let mut first = None;
    for failure in failed {
        let Failed {
            partition,
            dir,
            error,
            reached,
            removed,
        } = failure;
        match reached.applied_to {
            Some(_) if !durable => eprintln!(
                "partition {partition}: {} records restored by this run are lost with the process: this backend keeps nothing on disk",
                reached.restored
            ),
            Some(applied) => eprintln!(
                "partition {partition}: kept {} records restored by this run, durable up to offset {applied} of {} in {}; running restore again resumes at offset {}",
                reached.restored,
                reached.end,
                dir.display(),
                applied + 1
            ),
            None if removed => eprintln!(
                "partition {partition}: nothing was restored; removed the empty store this run created at {}",
                dir.display()
            ),
            None => eprintln!(
                "partition {partition}: nothing was restored by this run; the store at {} is as it was",
                dir.display()
            ),
        }
        let cancelled = error.kind() == ErrorKind::Closed && signalled;
        if first.is_none() && !cancelled {
            first = Some(error);
        } else if !cancelled {
            eprintln!("partition {partition}: error: {error}");
        }
    }
    first.unwrap_or_else(interrupted)
}

/// The figures of one `statestore restore` run.
struct Report<'a> {
    command: &'a RestoreCommand,
    restored: &'a [Restored],
    /// Time to reach the cluster and check the topic and its partitions.
    metadata: Duration,
    /// Wall time of the restores, from the first start to the last end, opening and
    /// closing the stores included.
    elapsed: Duration,
}

impl Report<'_> {
    fn total(&self) -> u64 {
        self.restored.iter().map(|r| r.summary.restored).sum()
    }

    fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.total() as f64 / secs
        } else {
            0.0
        }
    }

    fn print(&self) {
        let durable = self.command.location.backend.capability().durable;
        for r in self.restored {
            let into = if durable {
                format!("into {}", r.dir.display())
            } else {
                "into memory, kept by nothing: the memory backend's store ends with the command (a measure of restore alone)".to_owned()
            };
            println!(
                "partition {}: restored {} records (offsets {}..{}) in {:.2?} {into}",
                r.partition, r.summary.restored, r.summary.from, r.summary.end, r.summary.elapsed,
            );
            if let Some(snapshot) = &r.summary.snapshot {
                let download = &snapshot.download;
                println!(
                    "partition {}: started from snapshot {} at offset {}: {} files ({} bytes) downloaded and {} files ({} bytes) reused from the local directory in {:.2?}, opened in {:.2?}; the tail took {:.2?}",
                    r.partition,
                    snapshot.id,
                    snapshot.position,
                    download.files_downloaded,
                    download.bytes_downloaded,
                    download.files_reused,
                    download.bytes_reused,
                    download.elapsed,
                    snapshot.open,
                    r.summary
                        .elapsed
                        .saturating_sub(download.elapsed + snapshot.open),
                );
            }
            if let Some(reason) = &r.summary.wiped {
                println!(
                    "partition {}: local state was wiped first: {reason}",
                    r.partition
                );
            }
            if let Some(line) = kafka::offsets_without_records(
                r.partition,
                &r.summary,
                self.command.read_uncommitted,
            ) {
                println!("{line}");
            }
        }
        let location = &self.command.location;
        println!(
            "restored {} records in total into store {} ({}) in {:.2?}: {:.0} records/s, {} partition(s), up to {} at a time",
            self.total(),
            location.store,
            location.backend.name(),
            self.elapsed,
            self.rate(),
            self.restored.len(),
            self.command.parallel.max(1),
        );
        println!(
            "reaching the cluster and checking the topic took {:.2?} before that",
            self.metadata
        );
    }

    fn json(&self) -> String {
        let partitions: Vec<String> = self
            .restored
            .iter()
            .map(|r| {
                format!(
                    "{{\"partition\":{},\"records\":{},\"from\":{},\"end\":{},\"offsets_without_records\":{},\"millis\":{:.1},\"wiped\":{},\"snapshot\":{}}}",
                    r.partition,
                    r.summary.restored,
                    r.summary.from,
                    r.summary.end,
                    kafka::skipped_offsets(&r.summary),
                    r.summary.elapsed.as_secs_f64() * 1000.0,
                    r.summary.wiped.is_some(),
                    snapshot_json(r.summary.snapshot.as_ref()),
                )
            })
            .collect();
        format!(
            "{{\"mode\":\"restore\",\"backend\":\"{}\",\"isolation\":\"{}\",\"records\":{},\"millis\":{:.1},\"restoring_millis\":{:.1},\"metadata_millis\":{:.1},\"parallel\":{},\"per_partition\":[{}]}}",
            self.command.location.backend.name(),
            kafka::isolation(self.command.read_uncommitted).as_str(),
            self.total(),
            self.elapsed.as_secs_f64() * 1000.0,
            restoring(self.restored).as_secs_f64() * 1000.0,
            self.metadata.as_secs_f64() * 1000.0,
            self.command.parallel.max(1),
            partitions.join(",")
        )
    }
}

/// From the first partition's restore start to the last one's end, leaving out
/// reaching the cluster, opening and closing the stores, and partitions that were
/// already caught up: the span Kafka Streams' restore listener reports, from the
/// first `onRestoreStart` to the last `onRestoreEnd`, so the two compare like with
/// like.
fn restoring(restored: &[Restored]) -> Duration {
    let restores = restored.iter().filter(|r| !r.summary.elapsed.is_zero());
    let first = restores
        .clone()
        .map(|r| r.ended.checked_sub(r.summary.elapsed).unwrap_or(r.ended))
        .min();
    let last = restores.map(|r| r.ended).max();
    first
        .zip(last)
        .map_or(Duration::ZERO, |(first, last)| last.duration_since(first))
}

/// The snapshot a restore started from, as JSON (`null` for none).
fn snapshot_json(snapshot: Option<&state_core::SnapshotRestore>) -> String {
    let Some(snapshot) = snapshot else {
        return "null".to_owned();
    };
    let download = &snapshot.download;
    format!(
        "{{\"id\":{:?},\"position\":{},\"files_downloaded\":{},\"bytes_downloaded\":{},\"files_reused\":{},\"bytes_reused\":{},\"download_millis\":{:.1},\"open_millis\":{:.1}}}",
        snapshot.id,
        snapshot.position,
        download.files_downloaded,
        download.bytes_downloaded,
        download.files_reused,
        download.bytes_reused,
        download.elapsed.as_secs_f64() * 1000.0,
        snapshot.open.as_secs_f64() * 1000.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(partition: Partition, ended: Instant, elapsed_ms: u64) -> Restored {
        Restored {
            partition,
            dir: PathBuf::new(),
            summary: RestoreSummary {
                restored: elapsed_ms,
                from: 0,
                end: 0,
                wiped: None,
                elapsed: Duration::from_millis(elapsed_ms),
                snapshot: None,
            },
            ended,
        }
    }

    /// Overlapping restores span from the earliest start to the latest end; a partition
    /// already caught up (nothing restored, checked later) does not stretch the span.
    #[test]
    fn restoring_spans_the_first_start_to_the_last_end() {
        let base = Instant::now();
        let at = |ms| base + Duration::from_millis(ms);
        let restored = [
            done(0, at(1_000), 600),
            done(1, at(1_300), 500),
            done(2, at(5_000), 0),
        ];
        assert_eq!(restoring(&restored), Duration::from_millis(900));
        assert_eq!(restoring(&restored[2..]), Duration::ZERO);
        assert_eq!(restoring(&[]), Duration::ZERO);
    }
}
