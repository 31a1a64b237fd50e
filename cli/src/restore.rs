//! `statestore restore`: pre-warm local stores from their changelog topic.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use state_core::{
    Error, KeyValueBytesStoreSupplier, Partition, RestoreOptions, RestoreSummary, Result,
    StoreHome, catch_up, open_or_rebuild,
};
use tokio::sync::Semaphore;

use crate::backend::Location;
use crate::kafka;
use crate::progress::BarListener;
use crate::serdes::KeyValueSerdes;

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
    /// Read committed records only (the writer used exactly-once).
    pub exactly_once: bool,
    /// Kafka metadata timeout.
    pub timeout: Duration,
    /// Partitions restored at the same time.
    pub parallel: usize,
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
}

/// Restores every partition, up to `parallel` at a time; prints what each restore did.
pub async fn run(command: &RestoreCommand) -> Result<bool> {
    let location = &command.location;
    let started = Instant::now();
    let (reader, _offsets) = kafka::existing_reader(
        &command.bootstrap_servers,
        command.timeout,
        location,
        &command.partitions,
        command.exactly_once,
    )
    .await?;
    let metadata = started.elapsed();
    std::fs::create_dir_all(&location.state_dir)?;
    let reader = Arc::new(reader);
    let supplier = location.backend.supplier(&location.store);
    let listener = Arc::new(BarListener::new());
    let options = RestoreOptions {
        validator: Some(Arc::new(command.serdes)),
        snapshots: crate::snapshot::store_of(command.snapshots.as_ref())?,
        ..RestoreOptions::default()
    };
    let slots = Arc::new(Semaphore::new(command.parallel.max(1)));
    let restoring = Instant::now();
    let mut tasks = Vec::with_capacity(command.partitions.len());
    for &partition in &command.partitions {
        let (reader, supplier, listener, options, slots) = (
            reader.clone(),
            supplier.clone(),
            listener.clone(),
            options.clone(),
            slots.clone(),
        );
        let dir = location.store_dir(partition)?;
        let application = location.application_id.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .map_err(|_| Error::internal("the restore slots were closed"))?;
            restore_one(
                supplier.as_ref(),
                &application,
                reader.as_ref(),
                partition,
                dir,
                &options,
                &listener,
            )
            .await
        }));
    }
    let mut restored = Vec::with_capacity(tasks.len());
    for task in tasks {
        let outcome = task
            .await
            .map_err(|err| Error::internal(format!("a restore task failed: {err}")))?;
        restored.push(outcome?);
    }
    let elapsed = restoring.elapsed();
    listener.finish();
    for line in listener.fallbacks() {
        eprintln!("{line}");
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
    Ok(true)
}

async fn restore_one(
    supplier: &dyn KeyValueBytesStoreSupplier,
    application: &str,
    reader: &changelog_kafka::KafkaReader,
    partition: Partition,
    dir: PathBuf,
    options: &RestoreOptions,
    listener: &BarListener,
) -> Result<Restored> {
    // A store this run creates and then fails to fill must not stay behind: inspect would
    // show it as a valid empty store.
    let existed = dir.exists();
    let opened = open_or_rebuild(supplier, &dir)?;
    let home = StoreHome {
        application,
        supplier,
        dir: &dir,
    };
    let restored = catch_up(opened, Some(home), reader, partition, options, listener).await;
    let (store, summary) = match restored {
        Ok(restored) => restored,
        Err(err) => {
            if !existed {
                let _ = supplier.destroy(&dir);
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(err);
        }
    };
    store.close()?;
    Ok(Restored {
        partition,
        dir,
        summary,
    })
}

/// The figures of one `statestore restore` run.
struct Report<'a> {
    command: &'a RestoreCommand,
    restored: &'a [Restored],
    /// Time to reach the cluster and check the topic and its partitions.
    metadata: Duration,
    /// Wall time of the restores, from the first start to the last end.
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
        for r in self.restored {
            println!(
                "partition {}: restored {} records (offsets {}..{}) in {:.2?} into {}",
                r.partition,
                r.summary.restored,
                r.summary.from,
                r.summary.end,
                r.summary.elapsed,
                r.dir.display()
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
                    "{{\"partition\":{},\"records\":{},\"from\":{},\"end\":{},\"millis\":{:.1},\"wiped\":{},\"snapshot\":{}}}",
                    r.partition,
                    r.summary.restored,
                    r.summary.from,
                    r.summary.end,
                    r.summary.elapsed.as_secs_f64() * 1000.0,
                    r.summary.wiped.is_some(),
                    snapshot_json(r.summary.snapshot.as_ref()),
                )
            })
            .collect();
        format!(
            "{{\"mode\":\"restore\",\"backend\":\"{}\",\"records\":{},\"millis\":{:.1},\"metadata_millis\":{:.1},\"parallel\":{},\"per_partition\":[{}]}}",
            self.command.location.backend.name(),
            self.total(),
            self.elapsed.as_secs_f64() * 1000.0,
            self.metadata.as_secs_f64() * 1000.0,
            self.command.parallel.max(1),
            partitions.join(",")
        )
    }
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
