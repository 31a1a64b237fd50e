//! `statestore restore`: pre-warm local stores from their changelog topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use state_core::{Partition, RestoreOptions, Result, open_or_rebuild, restore};

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
}

/// Restores every partition; prints what each restore did.
pub async fn run(command: &RestoreCommand) -> Result<bool> {
    let location = &command.location;
    let (reader, _offsets) = kafka::existing_reader(
        &command.bootstrap_servers,
        command.timeout,
        location,
        &command.partitions,
        command.exactly_once,
    )
    .await?;
    std::fs::create_dir_all(&location.state_dir)?;
    let supplier = location.backend.supplier(&location.store);
    let listener = Arc::new(BarListener::new());
    let options = RestoreOptions {
        validator: Some(Arc::new(command.serdes)),
        ..RestoreOptions::default()
    };
    let started = Instant::now();
    let mut total = 0;
    for &partition in &command.partitions {
        let dir = location.store_dir(partition);
        let (store, rebuilt) = open_or_rebuild(supplier.as_ref(), &dir)?;
        let summary = restore(
            store.as_ref(),
            &reader,
            partition,
            &options,
            listener.as_ref(),
        )
        .await?;
        store.close()?;
        total += summary.restored;
        println!(
            "partition {partition}: restored {} records (offsets {}..{}) in {:.2?} into {}",
            summary.restored,
            summary.from,
            summary.end,
            summary.elapsed,
            dir.display()
        );
        if let Some(reason) = summary.wiped.or(rebuilt) {
            println!("partition {partition}: local state was wiped first: {reason}");
        }
    }
    listener.finish();
    println!(
        "restored {total} records in total into store {} ({}) in {:.2?}",
        location.store,
        location.backend.name(),
        started.elapsed()
    );
    Ok(true)
}
