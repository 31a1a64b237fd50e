//! `statestore verify`: a local store against a replay of its changelog partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use state_core::{ChangelogReader, Error, ErrorKind, KeyValueStore, Partition, Result};

use crate::backend::Location;
use crate::kafka;
use crate::serdes::KeyValueSerdes;

/// Differences listed at most.
const SHOWN: usize = 10;
/// Records read per replay batch.
const BATCH: usize = 1000;
/// How long the replay may read nothing before giving up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What `statestore verify` was asked to check.
#[derive(Debug, Clone)]
pub struct VerifyCommand {
    /// Where the store lives.
    pub location: Location,
    /// The partition.
    pub partition: Partition,
    /// The cluster.
    pub bootstrap_servers: String,
    /// How keys and values are shown.
    pub serdes: KeyValueSerdes,
    /// Replay committed records only.
    pub exactly_once: bool,
    /// Kafka metadata timeout.
    pub timeout: Duration,
}

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Replays the changelog up to the store's position into a fresh in-memory map and
/// compares; `Ok(false)` on divergence.
pub async fn run(command: &VerifyCommand) -> Result<bool> {
    let (location, partition) = (&command.location, command.partition);
    // Read-only: verifying changes nothing on disk and can run beside other readers.
    let store = location.open_read_only(partition)?;
    let (reader, offsets) = kafka::existing_reader(
        &command.bootstrap_servers,
        command.timeout,
        location,
        &[partition],
        command.exactly_once,
    )
    .await?;
    let log_end = offsets.first().map_or(0, |o| o.end);
    // Compare with what the store claims to have applied, not the changelog's end:
    // records after the store's position are not the store's yet.
    let until = store.position()?.next_offset(partition);
    if until > log_end {
        return Err(Error::corruption(format!(
            "store {} partition {partition} is at offset {} but changelog {} ends at {log_end} (recreated topic?)",
            location.store,
            until - 1,
            reader.topic()
        )));
    }
    let local = entries(store.as_ref())?;
    store.close()?;
    let replayed = replay(&reader, partition, until).await?;
    let diffs = differences(&local, &replayed);
    println!(
        "store {} partition {partition}: {} local entries, {} from replaying offsets ..{until} of {}",
        location.store,
        local.len(),
        replayed.len(),
        reader.topic()
    );
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

async fn replay(reader: &dyn ChangelogReader, partition: Partition, until: i64) -> Result<Entries> {
    let mut replayed = Entries::new();
    let start = reader.offsets(partition).await?.start;
    if start >= until {
        return Ok(replayed);
    }
    let mut cursor = reader.open(partition, start).await?;
    let mut last_progress = Instant::now();
    while cursor.position() < until {
        let before = cursor.position();
        let batch = cursor.next_batch(BATCH).await?;
        if batch.is_empty() && cursor.position() <= before {
            if last_progress.elapsed() > STALL_TIMEOUT {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "replaying {} partition {partition} made no progress for {STALL_TIMEOUT:?} at offset {before} (target {until})",
                        reader.topic()
                    ),
                ));
            }
            continue;
        }
        last_progress = Instant::now();
        for consumed in batch {
            if consumed.offset >= until {
                break;
            }
            let record = consumed.record;
            match record.value {
                Some(value) => replayed.insert(record.key, value),
                None => replayed.remove(&record.key),
            };
        }
    }
    Ok(replayed)
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
