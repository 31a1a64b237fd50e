//! What a statestore redb file holds, and the check that a file holds it.
//!
//! Two tables: `statestore_data` (raw key -> raw value) and `statestore_meta` (a format
//! marker and the changelog position). Keeping the position in its own table means no
//! key of the data table is reserved and scans never see it.

use std::path::Path;

use redb::{
    Database, MultimapTableHandle, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
};
use state_core::{Error, Position, Result};

use crate::error::map_redb_error;
use crate::probe::foreign;

/// Raw key to raw value; keys compare as unsigned bytes (redb's `&[u8]` order).
pub(crate) const DATA: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("statestore_data");

/// `FORMAT_KEY`, `POSITION_KEY` and `RUNS_KEY`.
pub(crate) const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("statestore_meta");

/// Holds `FORMAT_V1`.
pub(crate) const FORMAT_KEY: &str = "format";

/// Holds `Position::encode()`; absent means the empty position.
pub(crate) const POSITION_KEY: &str = "position";

/// Holds the manifest of the runs a bulk load made durable and has not merged yet
/// (`src/runs.rs`); absent when there are none. `POSITION_KEY` stays at the last merge.
pub(crate) const RUNS_KEY: &str = "bulk_runs";

/// Changes whenever the layout above changes incompatibly.
pub(crate) const FORMAT_V1: &[u8] = b"statestore-redb/1";

/// Checks that `db` holds a statestore store, reading only. Another program's redb
/// file (no tables, or no meta table) is `Foreign`; a missing marker, data table or a
/// damaged position is `Corruption`; another format version is `InvalidInput`.
pub(crate) fn check(db: &impl ReadableDatabase, path: &Path) -> Result<()> {
    let txn = db
        .begin_read()
        .map_err(|err| map_redb_error(path, "open", err))?;
    let mut tables: Vec<String> = txn
        .list_tables()
        .map_err(|err| map_redb_error(path, "list tables", err))?
        .map(|table| table.name().to_owned())
        .collect();
    tables.extend(
        txn.list_multimap_tables()
            .map_err(|err| map_redb_error(path, "list tables", err))?
            .map(|table| table.name().to_owned()),
    );
    let has = |name: &str| tables.iter().any(|table| table == name);
    if !has(META.name()) {
        // New files get their tables before they appear under the store's name, so a
        // redb file without them was written by someone else.
        return Err(foreign(
            path,
            &format!(
                "it is a redb database with tables {tables:?} but no {:?}",
                META.name()
            ),
        ));
    }
    let meta = txn
        .open_table(META)
        .map_err(|err| map_redb_error(path, "open meta table", err))?;
    match meta
        .get(FORMAT_KEY)
        .map_err(|err| map_redb_error(path, "read format marker", err))?
    {
        None => {
            return Err(Error::corruption(format!(
                "redb file {} has no statestore format marker",
                path.display()
            )));
        }
        Some(marker) if marker.value() != FORMAT_V1 => {
            return Err(Error::invalid_input(format!(
                "redb file {} has format marker {:?}, expected {:?} (written by another \
                 program or another statestore version)",
                path.display(),
                String::from_utf8_lossy(marker.value()),
                String::from_utf8_lossy(FORMAT_V1)
            )));
        }
        Some(_) => {}
    }
    if !has(DATA.name()) {
        return Err(Error::corruption(format!(
            "redb file {} lacks the statestore data table {:?}",
            path.display(),
            DATA.name()
        )));
    }
    // Fails on damage now rather than when restore first asks.
    read_position(&meta, path)?;
    Ok(())
}

/// Gives a new, empty database the statestore tables and format marker.
pub(crate) fn initialize(db: &Database, path: &Path) -> Result<()> {
    let map = |err: redb::Error| map_redb_error(path, "initialise", err);
    // Default durability is Immediate: the marker is on disk before the file is linked
    // under the store's name.
    let txn = db.begin_write().map_err(|err| map(err.into()))?;
    {
        txn.open_table(DATA).map_err(|err| map(err.into()))?;
        let mut meta = txn.open_table(META).map_err(|err| map(err.into()))?;
        meta.insert(FORMAT_KEY, FORMAT_V1)
            .map_err(|err| map(err.into()))?;
    }
    txn.commit().map_err(|err| map(err.into()))
}

/// Reads the changelog position from the meta table, in a read or a write transaction.
pub(crate) fn read_position(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<Position> {
    let bytes = meta
        .get(POSITION_KEY)
        .map_err(|err| map_redb_error(path, "read changelog position", err))?;
    match bytes {
        None => Ok(Position::empty()),
        Some(bytes) => Position::decode(bytes.value(), &path.display().to_string()),
    }
}
