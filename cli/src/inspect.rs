//! `statestore inspect`: what a local store holds.

use state_core::{KeyRange, Partition, Result};

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
}

/// Prints position, size, first and last keys, and the requested lookups. The store is
/// opened read-only: inspecting changes nothing on disk.
pub fn run(command: &InspectCommand) -> Result<bool> {
    let location = &command.location;
    let serdes = &command.serdes;
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
