//! Opening a store directory: create a fresh database or validate an existing one.
//!
//! A directory is only ever *created* into when it is missing or empty. Anything else
//! must already be a statestore RocksDB (a CURRENT file, exactly our column families, our
//! format marker); otherwise opening fails naming the path, so a damaged database is
//! never silently replaced by an empty one.

use std::io;
use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DEFAULT_COLUMN_FAMILY_NAME, FlushOptions, Options, WriteOptions,
};
use state_core::{Error, Position, Result};

use crate::error::{map_rocksdb_error, not_a_store};
use crate::scan::Db;

/// The column family holding the changelog position and the format marker, apart from
/// the data so scans never see them.
pub(crate) const META_CF: &str = "statestore.meta";
/// Key of the encoded [`Position`] in [`META_CF`].
pub(crate) const POSITION_KEY: &[u8] = b"position";
const FORMAT_KEY: &[u8] = b"format";
const FORMAT_V1: &[u8] = b"statestore-rocksdb-v1";

/// Opens the database at `path` (creating it when the directory is missing or empty)
/// and returns it with its stored position.
pub(crate) fn open_db(path: &Path, options: &Options) -> Result<(Db, Position)> {
    if is_missing_or_empty(path)? {
        create(path, options).map(|db| (db, Position::empty()))
    } else {
        open_existing(path, options)
    }
}

fn is_missing_or_empty(path: &Path) -> Result<bool> {
    let io_error =
        |err: io::Error| Error::from(err).context(format!("inspecting {}", path.display()));
    match std::fs::metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(err) => return Err(io_error(err)),
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::invalid_input(format!(
                "rocksdb store path {} exists and is not a directory",
                path.display()
            )));
        }
        Ok(_) => {}
    }
    let mut entries = std::fs::read_dir(path).map_err(io_error)?;
    Ok(entries.next().is_none())
}

fn descriptors(options: &Options) -> [ColumnFamilyDescriptor; 2] {
    [
        ColumnFamilyDescriptor::new(DEFAULT_COLUMN_FAMILY_NAME, options.clone()),
        ColumnFamilyDescriptor::new(META_CF, options.clone()),
    ]
}

fn create(path: &Path, options: &Options) -> Result<Db> {
    std::fs::create_dir_all(path)
        .map_err(|err| Error::from(err).context(format!("creating {}", path.display())))?;
    let mut options = options.clone();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Never adopt a database that appeared since the emptiness check.
    options.set_error_if_exists(true);
    let rocks = |err| map_rocksdb_error(err, path).context("creating the database");
    let db = Db::open_cf_descriptors(&options, path, descriptors(&options)).map_err(rocks)?;
    let meta = meta_cf(&db, path)?;
    // The marker goes through the WAL and a flush so it is durable even with the WAL off.
    db.put_cf_opt(meta, FORMAT_KEY, FORMAT_V1, &WriteOptions::default())
        .map_err(rocks)?;
    let default = default_cf(&db, path)?;
    db.flush_cfs_opt(&[default, meta], &FlushOptions::default())
        .map_err(rocks)?;
    Ok(db)
}

fn open_existing(path: &Path, options: &Options) -> Result<(Db, Position)> {
    if !path.join("CURRENT").is_file() {
        return Err(not_a_store(
            path,
            "it holds files but no RocksDB CURRENT file",
        ));
    }
    let rocks = |err| map_rocksdb_error(err, path).context("opening the database");
    let mut families = Db::list_cf(&Options::default(), path).map_err(rocks)?;
    families.sort();
    let mut expected = vec![DEFAULT_COLUMN_FAMILY_NAME.to_owned(), META_CF.to_owned()];
    expected.sort();
    if families != expected {
        return Err(not_a_store(
            path,
            &format!("column families {families:?}, expected {expected:?}"),
        ));
    }
    let mut options = options.clone();
    options.create_if_missing(false);
    options.create_missing_column_families(false);
    let db = Db::open_cf_descriptors(&options, path, descriptors(&options)).map_err(rocks)?;
    let meta = meta_cf(&db, path)?;
    match db.get_cf(meta, FORMAT_KEY).map_err(rocks)? {
        Some(marker) if marker == FORMAT_V1 => {}
        Some(marker) => {
            return Err(Error::invalid_input(format!(
                "{} holds statestore rocksdb format {:?}, this version reads {:?}",
                path.display(),
                String::from_utf8_lossy(&marker),
                String::from_utf8_lossy(FORMAT_V1),
            )));
        }
        None => return Err(not_a_store(path, "the format marker is missing")),
    }
    let position = match db.get_cf(meta, POSITION_KEY).map_err(rocks)? {
        Some(bytes) => Position::decode(&bytes, &path.display().to_string())?,
        None => Position::empty(),
    };
    Ok((db, position))
}

/// The metadata column family handle.
pub(crate) fn meta_cf<'a>(db: &'a Db, path: &Path) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(META_CF).ok_or_else(|| {
        Error::internal(format!(
            "rocksdb at {}: column family {META_CF} not open",
            path.display()
        ))
    })
}

/// The data (default) column family handle.
pub(crate) fn default_cf<'a>(db: &'a Db, path: &Path) -> Result<&'a rocksdb::ColumnFamily> {
    db.cf_handle(DEFAULT_COLUMN_FAMILY_NAME).ok_or_else(|| {
        Error::internal(format!(
            "rocksdb at {}: default column family not open",
            path.display()
        ))
    })
}
