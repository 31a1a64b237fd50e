//! `statestore verify`: a local store against a replay of its changelog partition.
//!
//! The replay is a restore into a fresh in-memory store, stopped at the local store's
//! position: the same reads, record checks (the serdes), stall reports and limit as
//! `statestore restore`, so a record `restore` refuses is refused here too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use state_core::{
    ChangelogReader, Error, KeyValueStore, LogOffsets, Offset, Partition, RestoreOptions,
    RestoreSummary, Result, restore,
};
use statestore::memory::MemoryStore;

use crate::backend::Location;
use crate::kafka;
use crate::restore_watch::RestoreWatch;
use crate::serdes::KeyValueSerdes;

/// Differences listed at most.
const SHOWN: usize = 10;

/// What `statestore verify` was asked to check.
#[derive(Debug, Clone)]
pub struct VerifyCommand {
    /// Where the store lives.
    pub location: Location,
    /// The partition.
    pub partition: Partition,
    /// The cluster.
    pub bootstrap_servers: String,
    /// How keys and values are shown and checked.
    pub serdes: KeyValueSerdes,
    /// Replay records of aborted and open transactions too (`--read-uncommitted`).
    pub read_uncommitted: bool,
    /// Kafka metadata timeout.
    pub timeout: Duration,
    /// How long the replay may read nothing before giving up (`--stall-timeout`).
    pub stall_timeout: Duration,
}

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Replays the changelog up to the store's position into a fresh in-memory store and
/// compares; `Ok(false)` on divergence, and when there is nothing to compare although the
/// changelog holds records (a store without a position, or one whose records are no
/// longer in the log).
pub async fn run(command: &VerifyCommand) -> Result<bool> {
    let (location, partition) = (&command.location, command.partition);
    // Read-only: verifying changes nothing on disk and can run beside other readers.
    let store = location.open_read_only(partition)?;
    let (reader, offsets) = kafka::existing_reader(
        &command.bootstrap_servers,
        command.timeout,
        location,
        &[partition],
        kafka::isolation(command.read_uncommitted),
    )
    .await?;
    let log = offsets.first().copied().unwrap_or(LogOffsets {
        start: 0,
        end: 0,
        log_end: 0,
    });
    let applied = store.position()?.applied(partition);
    // Compare with what the store claims to have applied, not the changelog's end:
    // records after the store's position are not the store's yet.
    let until = applied.map_or(0, |offset| offset + 1);
    if until > log.log_end {
        return Err(Error::corruption(format!(
            "store {} partition {partition} is at offset {} but changelog {} ends at {} (recreated topic?)",
            location.store,
            until - 1,
            reader.topic(),
            log.log_end
        )));
    }
    if let Some(reason) = nothing_to_compare(applied, log, command.read_uncommitted) {
        println!(
            "NOT VERIFIED: store {} partition {partition} ({}): {reason}",
            location.store,
            location.store_dir(partition)?.display()
        );
        return Ok(false);
    }
    let local = entries(store.as_ref())?;
    store.close()?;
    let replica = MemoryStore::new(location.store.clone());
    let options = RestoreOptions {
        validator: Some(Arc::new(command.serdes)),
        stall_timeout: command.stall_timeout,
        durability_points: None,
        until: Some(until),
        ..RestoreOptions::default()
    };
    let watch = RestoreWatch::new(ProgressBar::hidden(), "stall-timeout");
    let summary = restore(&replica, &reader, partition, &options, &watch).await?;
    let replayed = entries(&replica)?;
    report(command, &summary, &local, &replayed, reader.topic())
}

/// Why a store and its changelog cannot be compared, when they cannot: a store without a
/// position, or one whose records the log no longer holds, against a log with records.
fn nothing_to_compare(
    applied: Option<Offset>,
    log: LogOffsets,
    read_uncommitted: bool,
) -> Option<String> {
    if log.end <= log.start && log.log_end <= log.start {
        // An empty log: an empty store without a position is what it replays to.
        return None;
    }
    match applied {
        None => Some(format!(
            "the store has no position while its changelog holds offsets {}..{}: it was never restored or written through the changelog (a restore that applied nothing leaves no store); run statestore restore",
            log.start, log.log_end
        )),
        Some(offset) if offset < log.start => Some(format!(
            "the store is at offset {offset} but its changelog starts at {}: the records it was built from were deleted (retention or delete-records), so there is nothing to replay; statestore restore rebuilds it from the log",
            log.start
        )),
        Some(offset) if offset >= log.end && !read_uncommitted => Some(format!(
            "the store is at offset {offset}, past the changelog's last committed offset {} (the log ends at {}): it holds records of a transaction still open, or was restored with --read-uncommitted",
            log.end - 1,
            log.log_end
        )),
        Some(_) => None,
    }
}

fn report(
    command: &VerifyCommand,
    summary: &RestoreSummary,
    local: &Entries,
    replayed: &Entries,
    topic: &str,
) -> Result<bool> {
    let partition = command.partition;
    let diffs = differences(local, replayed);
    println!(
        "store {} partition {partition}: {} local entries, {} from replaying offsets {}..{} of {topic}",
        command.location.store,
        local.len(),
        replayed.len(),
        summary.from,
        summary.end,
    );
    if let Some(line) = kafka::offsets_without_records(partition, summary, command.read_uncommitted)
    {
        println!("{line}");
    }
    if diffs.is_empty() {
        println!("verified: the local store equals the replay of its changelog partition");
        return Ok(true);
    }
    println!(
        "DIVERGED: {} keys differ; the first {}:",
        diffs.len(),
        diffs.len().min(SHOWN)
    );
    let show = |v: Option<&Vec<u8>>, key: &[u8]| match v {
        Some(v) => command.serdes.show_value(key, v),
        None => Ok("(absent)".to_owned()),
    };
    for key in diffs.iter().take(SHOWN) {
        println!(
            "  {}: local {}, changelog {}",
            command.serdes.show_key(key)?,
            show(local.get(*key), key)?,
            show(replayed.get(*key), key)?
        );
    }
    Ok(false)
}

fn entries(store: &dyn KeyValueStore) -> Result<Entries> {
    store.all()?.collect()
}

fn differences<'a>(local: &'a Entries, replayed: &'a Entries) -> Vec<&'a Vec<u8>> {
    let mut keys: Vec<&Vec<u8>> = local
        .iter()
        .filter(|(k, v)| replayed.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(replayed.keys().filter(|k| !local.contains_key(*k)))
        .collect();
    keys.sort();
    keys
}
