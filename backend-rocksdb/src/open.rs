//! Opening a store directory: create a fresh database, open our own, or refuse.
//!
//! A database is only ever *created* where nothing is (a missing or empty directory).
//! What is there otherwise is classified by [`probe`] first: a stamped directory is ours
//! (damage there is `Corruption`, which restore may wipe); a RocksDB database without the
//! stamp is adopted only if it has exactly our column families and format marker;
//! anything else is `Foreign` and left untouched. A read-only open follows the same
//! rules but never creates, stamps, locks or writes anything.

use std::path::Path;

use rocksdb::{
    ColumnFamilyDescriptor, DEFAULT_COLUMN_FAMILY_NAME, FlushOptions, Options, WriteOptions,
};
use state_core::{Error, ErrorKind, Position, Result};

use crate::error::map_rocksdb_error;
use crate::lock::{self, Registration};
use crate::probe::{Contents, STAMP, foreign, probe};
use crate::scan::Db;
use crate::turn::{self, Turn};

/// The column family holding the changelog position and the format marker, apart from
/// the data so scans never see them.
pub(crate) const META_CF: &str = "statestore.meta";
/// Key of the encoded [`Position`] in [`META_CF`].
pub(crate) const POSITION_KEY: &[u8] = b"position";
const FORMAT_KEY: &[u8] = b"format";
const FORMAT_V1: &[u8] = b"statestore-rocksdb-v1";

/// An open database with its stored position.
pub(crate) struct Opened {
    pub(crate) db: Db,
    pub(crate) position: Position,
    /// Marks the directory open for writing in this process (see [`lock`]); `None` for
    /// a read-only open.
    pub(crate) registration: Option<Registration>,
}

/// Whether an open may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// Opens the database at `path` for writing, creating it when the directory is missing
/// or empty.
pub(crate) fn open_db(path: &Path, options: &Options) -> Result<Opened> {
    // A file in the way, or someone else's directory, is refused before anything is made.
    probe(path)?;
    std::fs::create_dir_all(path)
        .map_err(|err| Error::from(err).context(format!("creating {}", path.display())))?;
    // Looked at again on this opener's turn: another may have been creating it.
    let _turn = turn::take(path, Turn::Exclusive)?;
    match probe(path)? {
        Contents::Nothing => create(path, options),
        Contents::Stamped => open_existing(path, options, Access::ReadWrite, true),
        Contents::Unstamped => {
            let opened = open_existing(path, options, Access::ReadWrite, false)?;
            // A store from before stamps existed, proven ours by its column families and
            // format marker: stamp it so later damage is recognised as ours.
            write_stamp(path)?;
            Ok(opened)
        }
    }
}

/// Opens the existing database at `path` without writing anything; see
/// [`KeyValueBytesStoreSupplier::open_read_only`](state_core::KeyValueBytesStoreSupplier::open_read_only).
pub(crate) fn open_db_read_only(path: &Path, options: &Options) -> Result<Opened> {
    if probe(path)? == Contents::Nothing {
        return Err(not_found(path));
    }
    // Looked at again on this reader's turn: a creation under way has finished by then.
    let _turn = turn::take(path, Turn::Shared)?;
    let stamped = match probe(path)? {
        Contents::Nothing => return Err(not_found(path)),
        Contents::Stamped => true,
        Contents::Unstamped => false,
    };
    if let Some(holder) = lock::holder(path) {
        return Err(Error::unavailable(format!(
            "rocksdb store at {} is open for writing by {holder} (it holds the LOCK file); \
             a read-only open would see only what that writer has flushed, so it waits \
             until the writer closes the store",
            path.display()
        )));
    }
    open_existing(path, options, Access::ReadOnly, stamped)
}

fn not_found(path: &Path) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "no rocksdb store at {}: the directory is missing or empty",
            path.display()
        ),
    )
}

fn descriptors(options: &Options) -> [ColumnFamilyDescriptor; 2] {
    [
        ColumnFamilyDescriptor::new(DEFAULT_COLUMN_FAMILY_NAME, options.clone()),
        ColumnFamilyDescriptor::new(META_CF, options.clone()),
    ]
}

fn create(path: &Path, options: &Options) -> Result<Opened> {
    // The stamp goes first: a crash from here on leaves a directory that is ours.
    write_stamp(path)?;
    let registration = lock::register(path);
    let mut creating = options.clone();
    creating.create_if_missing(true);
    creating.create_missing_column_families(true);
    // Never adopt a database that appeared since the emptiness check unseen.
    creating.set_error_if_exists(true);
    let rocks = |err| map_rocksdb_error(err, path).context("creating the database");
    let db = match Db::open_cf_descriptors(&creating, path, descriptors(&creating)) {
        Ok(db) => db,
        // Another creator made it since the emptiness check and has closed it (one that
        // still has it open holds the LOCK file: `Unavailable`): use theirs, as a
        // creator of a redb store does.
        Err(err)
            if err.kind() == rocksdb::ErrorKind::InvalidArgument
                && err.as_ref().contains("error_if_exists") =>
        {
            drop(registration);
            return open_existing(path, options, Access::ReadWrite, true);
        }
        Err(err) => return Err(rocks(err)),
    };
    let meta = meta_cf(&db, path)?;
    // The marker goes through the WAL and a flush so it is durable even with the WAL off.
    db.put_cf_opt(meta, FORMAT_KEY, FORMAT_V1, &WriteOptions::default())
        .map_err(rocks)?;
    let default = default_cf(&db, path)?;
    db.flush_cfs_opt(&[default, meta], &FlushOptions::default())
        .map_err(rocks)?;
    Ok(Opened {
        db,
        position: Position::empty(),
        registration: Some(registration),
    })
}

/// Creates the empty stamp file and makes it durable with its directory entry.
pub(crate) fn write_stamp(path: &Path) -> Result<()> {
    let io_error = |err: std::io::Error| {
        Error::from(err).context(format!("writing {}", path.join(STAMP).display()))
    };
    std::fs::File::create(path.join(STAMP))
        .and_then(|file| file.sync_all())
        .map_err(io_error)?;
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error)
}

/// Opens a database that is there: ours if `stamped`, to be proven ours otherwise.
fn open_existing(path: &Path, options: &Options, access: Access, stamped: bool) -> Result<Opened> {
    // What is wrong with the directory: damage when it is ours, foreign otherwise.
    let refuse = |found: String| {
        if stamped {
            Error::corruption(format!(
                "{} is a damaged statestore rocksdb store: {found} \
                 (restore rebuilds it from the changelog)",
                path.display()
            ))
        } else {
            foreign(path, &found)
        }
    };
    if !path.join("CURRENT").is_file() {
        return Err(refuse("it has no RocksDB CURRENT file".to_owned()));
    }
    // Named before opening: a read-write open of a damaged database already writes a
    // new MANIFEST, and the message must name the one that was damaged.
    let manifest = manifest(path);
    let rocks = |err| map_rocksdb_error(err, path).context("opening the database");
    let mut families = match Db::list_cf(&Options::default(), path) {
        Ok(families) => families,
        Err(err) => {
            let err = rocks(err);
            return Err(match err.kind() {
                ErrorKind::Corruption if !stamped => refuse(format!(
                    "a RocksDB database without statestore's {STAMP} file whose {manifest} \
                     cannot be read ({err})"
                )),
                _ => err,
            });
        }
    };
    families.sort();
    let mut expected = vec![DEFAULT_COLUMN_FAMILY_NAME.to_owned(), META_CF.to_owned()];
    expected.sort();
    if families != expected {
        return Err(refuse(format!(
            "{manifest} lists column families {families:?}, expected {expected:?}"
        )));
    }
    let mut options = options.clone();
    options.create_if_missing(false);
    options.create_missing_column_families(false);
    if access == Access::ReadWrite && !stamped {
        // Proven ours before anything is written: a read-write open already writes.
        drop(open_existing(path, &options, Access::ReadOnly, false)?);
    }
    let (db, registration) = match access {
        Access::ReadWrite => {
            let registration = lock::register(path);
            let db =
                Db::open_cf_descriptors(&options, path, descriptors(&options)).map_err(rocks)?;
            (db, Some(registration))
        }
        Access::ReadOnly => {
            let db =
                Db::open_cf_descriptors_read_only(&options, path, descriptors(&options), false)
                    .map_err(rocks)?;
            (db, None)
        }
    };
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
        None => {
            return Err(refuse(format!(
                "the database {manifest} describes has no format marker"
            )));
        }
    }
    let position = match db.get_cf(meta, POSITION_KEY).map_err(rocks)? {
        Some(bytes) => Position::decode(&bytes, &path.display().to_string())?,
        None => Position::empty(),
    };
    Ok(Opened {
        db,
        position,
        registration,
    })
}

/// The MANIFEST that `CURRENT` names, for messages.
fn manifest(path: &Path) -> String {
    match std::fs::read_to_string(path.join("CURRENT")) {
        Ok(current) if current.trim().starts_with("MANIFEST-") => {
            format!("{} (named by CURRENT)", current.trim())
        }
        _ => "the MANIFEST (CURRENT names none)".to_owned(),
    }
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
