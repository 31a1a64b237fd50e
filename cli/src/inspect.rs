//! `statestore inspect`: what a local store holds.

use state_core::{KeyRange, Partition, Result, SnapshotScope};

use crate::backend::Location;
use crate::serdes::KeyValueSerdes;

/// What `statestore inspect` was asked to show.
#[derive(Debug, Clone)]
pub struct InspectCommand {
    /// Where the store lives.
    pub location: Location,
    /// The partition.
    pub partition: Partition,
    /// A key to look up.
    pub get: Option<String>,
    /// An inclusive key range to list.
    pub range: Option<(String, String)>,
    /// How keys and values are encoded.
    pub serdes: KeyValueSerdes,
    /// List the partition's snapshots in this snapshot store too.
    pub snapshots: Option<String>,
}

/// Prints position, size, first and last keys, and the requested lookups. The store is
/// opened read-only: inspecting changes nothing on disk.
pub async fn run(command: &InspectCommand) -> Result<bool> {
    let location = &command.location;
    let serdes = &command.serdes;
    if let Some(url) = &command.snapshots {
        list_snapshots(location, command.partition, url).await?;
    }
    let store = location.open_read_only(command.partition)?;
    println!(
        "store {} ({}) at {}",
        location.store,
        location.backend.name(),
        location.store_dir(command.partition)?.display()
    );
    let position = store.position()?;
    if position.is_empty() {
        println!("position: none (nothing restored or committed)");
    }
    for (partition, offset) in position.iter() {
        println!("position: changelog partition {partition} applied up to offset {offset}");
    }
    // Counted, not the engine's estimate: RocksDB's counts overwritten and deleted keys
    // until compaction (1000 for a store holding 500).
    let mut entries = 0u64;
    for entry in store.all()? {
        entry?;
        entries += 1;
    }
    println!("entries: {entries}");
    let first = store.range(&KeyRange::all())?.next().transpose()?;
    let last = store.reverse_range(&KeyRange::all())?.next().transpose()?;
    match (first, last) {
        (Some((first, _)), Some((last, _))) => {
            println!("first key: {}", serdes.show_key(&first)?);
            println!("last key: {}", serdes.show_key(&last)?);
        }
        _ => println!("the store is empty"),
    }
    if let Some(key) = &command.get {
        let bytes = serdes.key.encode(key)?;
        match store.get(&bytes)? {
            Some(value) => println!("get {key}: {}", serdes.show_value(&bytes, &value)?),
            None => println!("get {key}: (absent)"),
        }
    }
    if let Some((from, to)) = &command.range {
        let range = KeyRange::inclusive(serdes.key.encode(from)?, serdes.key.encode(to)?);
        let mut count = 0;
        for entry in store.range(&range)? {
            let (key, value) = entry?;
            println!(
                "  {} = {}",
                serdes.show_key(&key)?,
                serdes.show_value(&key, &value)?
            );
            count += 1;
        }
        println!("range {from}..={to}: {count} entries");
    }
    store.close()?;
    Ok(true)
}

/// Prints the partition's snapshots, newest first; unreadable manifests with their error.
async fn list_snapshots(location: &Location, partition: Partition, url: &str) -> Result<()> {
    let snapshots = crate::snapshots::open(url)?;
    let scope = SnapshotScope::new(&location.application_id, &location.store, partition);
    let listed = snapshots.list(&scope).await?;
    println!(
        "snapshots of store {} partition {partition} in {}: {}",
        location.store,
        snapshots.location(),
        listed.len()
    );
    for snapshot in listed {
        match snapshot.manifest {
            Ok(manifest) => println!(
                "  {}: offset {}, {} format {}, {} files, {} bytes, written by {} at {} ms since the epoch",
                snapshot.id,
                manifest.position,
                manifest.backend,
                manifest.backend_format,
                manifest.files.len(),
                manifest.files.iter().map(|file| file.size).sum::<u64>(),
                manifest.writer,
                manifest.created_millis
            ),
            Err(err) => println!("  {}: unreadable: {err}", snapshot.id),
        }
    }
    Ok(())
}
