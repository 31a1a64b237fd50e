//! The RocksDB [`KeyValueStore`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocksdb::{FlushOptions, WriteOptions};
use state_core::{
    Capability, Checkpoint, Error, KeyRange, KeyValueStore, KvIter, Position, Result, WriteBatch,
    WriteOp,
};

use crate::checkpoint;
use crate::config::RocksDbConfig;
use crate::error::{closed, map_rocksdb_error, read_only};
use crate::lock::Registration;
use crate::open::{Opened, POSITION_KEY, default_cf, meta_cf, open_db, open_db_read_only};
use crate::scan::{Db, last_key, scan};

/// A durable [`KeyValueStore`] on a RocksDB database in one directory.
///
/// Data lives in the default column family; the changelog position lives in the
/// `statestore.meta` column family and is written in the same RocksDB `WriteBatch` as the
/// data it describes. Every write goes through one mutex (which also caches the
/// position), so read-modify-write operations such as
/// [`put_if_absent`](KeyValueStore::put_if_absent) are atomic; reads and scans take no
/// lock. Writes outside a commit (`put`, `put_if_absent`, `delete`, `write`) also take a
/// second mutex first, which a [checkpoint](KeyValueStore::checkpoint) holds for its
/// whole run: commits go on beside a checkpoint, those writes wait for it.
///
/// Dropping the store without [`close`](KeyValueStore::close) has crash semantics: with
/// the WAL off, unflushed writes may be lost, always together with their position.
pub struct RocksDbStore {
    name: String,
    path: PathBuf,
    db: Db,
    /// Set for a read-write open; dropped after `db` (fields drop in order), so the
    /// directory stays registered until RocksDB has released its lock.
    _registration: Option<Registration>,
    read_only: bool,
    /// Held by every write outside a commit, before `writer`, and by a checkpoint for
    /// its whole run, so none of those writes lands in a checkpoint.
    direct_writes: Mutex<()>,
    /// Serialises writes and holds the position last written.
    writer: Mutex<Writer>,
    config: RocksDbConfig,
    wal_enabled: bool,
    capability: Capability,
    with_wal: WriteOptions,
    without_wal: WriteOptions,
    bulk_loading: AtomicBool,
    closed: AtomicBool,
}

/// What the write lock guards.
#[derive(Debug)]
struct Writer {
    /// The position last written.
    position: Position,
    /// Whether the data holds writes made outside a commit (`put`, `put_if_absent`,
    /// `delete`, `write` since the last `write_with_position` or `wipe`): they went
    /// straight into the database, so a checkpoint would hold them without their
    /// changelog position, and is refused.
    uncommitted: bool,
}

impl RocksDbStore {
    /// Opens the store `name` kept in `dir`, creating it when `dir` is missing or empty.
    ///
    /// Errors name `dir`, which is never overwritten: a damaged store of this backend
    /// (a damaged CURRENT, MANIFEST or table file) is `Corruption`; anything this backend
    /// did not write (another backend's files, unknown files, another program's RocksDB)
    /// is `Foreign`; a store of another format version is `InvalidInput`.
    pub fn open(name: impl Into<String>, dir: &Path, config: &RocksDbConfig) -> Result<Self> {
        let name = name.into();
        let options = config.to_options(dir)?;
        let opened = open_db(dir, &options)
            .map_err(|err| err.context(format!("opening rocksdb store {name}")))?;
        Ok(Self::new(name, dir, config, opened, false))
    }

    /// Opens the existing store `name` in `dir` read-only: RocksDB's read-only mode, no
    /// lock taken, nothing created or written (see
    /// [`KeyValueBytesStoreSupplier::open_read_only`](state_core::KeyValueBytesStoreSupplier::open_read_only)).
    /// A missing or empty `dir` is `NotFound`; a store a writer holds is `Unavailable`.
    pub fn open_read_only(
        name: impl Into<String>,
        dir: &Path,
        config: &RocksDbConfig,
    ) -> Result<Self> {
        let name = name.into();
        let options = config.to_options(dir)?;
        let opened = open_db_read_only(dir, &options)
            .map_err(|err| err.context(format!("opening rocksdb store {name} read-only")))?;
        Ok(Self::new(name, dir, config, opened, true))
    }

    fn new(
        name: String,
        dir: &Path,
        config: &RocksDbConfig,
        opened: Opened,
        read_only: bool,
    ) -> Self {
        let Opened {
            db,
            position,
            registration,
        } = opened;
        log::debug!(
            "opened rocksdb store {name} at {} at position {position:?}{}",
            dir.display(),
            if read_only { " (read-only)" } else { "" }
        );
        let mut without_wal = WriteOptions::default();
        without_wal.disable_wal(true);
        Self {
            name,
            path: dir.to_path_buf(),
            db,
            _registration: registration,
            read_only,
            direct_writes: Mutex::new(()),
            writer: Mutex::new(Writer {
                position,
                uncommitted: false,
            }),
            config: config.clone(),
            wal_enabled: config.wal_enabled(),
            capability: config.capability(),
            with_wal: WriteOptions::default(),
            without_wal,
            bulk_loading: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rocks(&self, action: &'static str) -> impl Fn(rocksdb::Error) -> Error + '_ {
        move |err| {
            map_rocksdb_error(err, &self.path).context(format!("{action} in store {}", self.name))
        }
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(closed(&self.name, &self.path))
        } else {
            Ok(())
        }
    }

    /// Takes the write lock. A panic under the lock cannot leave the cached position
    /// ahead of the database (it is updated after a successful write), so a poisoned
    /// lock is still usable.
    fn lock_writer(&self) -> Result<MutexGuard<'_, Writer>> {
        self.ensure_open()?;
        if self.read_only {
            return Err(read_only(&self.name, &self.path));
        }
        Ok(self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes the lock of writes outside a commit, then the write lock. The first guards
    /// nothing but its own exclusion, so a poisoned one is still usable.
    fn lock_direct(&self) -> Result<(MutexGuard<'_, ()>, MutexGuard<'_, Writer>)> {
        let direct = self
            .direct_writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok((direct, self.lock_writer()?))
    }

    fn write_options(&self) -> &WriteOptions {
        // Restore batches skip the WAL even when it is on: their position is lost with
        // them in a crash, and restore simply replays them again.
        if self.wal_enabled && !self.bulk_loading.load(Ordering::Acquire) {
            &self.with_wal
        } else {
            &self.without_wal
        }
    }

    fn write_raw(&self, batch: rocksdb::WriteBatch, action: &'static str) -> Result<()> {
        self.db
            .write_opt(batch, self.write_options())
            .map_err(self.rocks(action))
    }

    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get(key).map_err(self.rocks("reading a key"))
    }

    fn flush_all(&self) -> Result<()> {
        let default = default_cf(&self.db, &self.path)?;
        let meta = meta_cf(&self.db, &self.path)?;
        self.db
            .flush_cfs_opt(&[default, meta], &FlushOptions::default())
            .map_err(self.rocks("flushing"))
    }

    fn set_auto_compactions(&self, enabled: bool) -> Result<()> {
        let disabled = if enabled { "false" } else { "true" };
        self.db
            .set_options(&[("disable_auto_compactions", disabled)])
            .map_err(self.rocks("switching auto compactions"))
    }
}

impl KeyValueStore for RocksDbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        self.capability
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.ensure_open()?;
        self.read(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let (_direct, mut writer) = self.lock_direct()?;
        // Before the write: should it fail half-way, a checkpoint errs on the side of
        // refusing.
        writer.uncommitted = true;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put(key, value);
        self.write_raw(batch, "putting a key")
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let (_direct, mut writer) = self.lock_direct()?;
        if let Some(existing) = self.read(key)? {
            return Ok(Some(existing));
        }
        writer.uncommitted = true;
        let mut batch = rocksdb::WriteBatch::default();
        batch.put(key, value);
        self.write_raw(batch, "putting a key if absent")?;
        Ok(None)
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (_direct, mut writer) = self.lock_direct()?;
        let old = self.read(key)?;
        if old.is_some() {
            writer.uncommitted = true;
            let mut batch = rocksdb::WriteBatch::default();
            batch.delete(key);
            self.write_raw(batch, "deleting a key")?;
        }
        Ok(old)
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        let (_direct, mut writer) = self.lock_direct()?;
        if !batch.is_empty() {
            writer.uncommitted = true;
        }
        self.write_raw(to_rocksdb_batch(batch), "writing a batch")
    }

    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        let mut writer = self.lock_writer()?;
        let mut rocks_batch = to_rocksdb_batch(batch);
        let mut next = writer.position.clone();
        for (partition, offset) in position.iter() {
            next.set(partition, offset);
        }
        if next != writer.position {
            // Same WriteBatch as the data: both or neither survive a crash.
            rocks_batch.put_cf(meta_cf(&self.db, &self.path)?, POSITION_KEY, next.encode());
        }
        self.write_raw(rocks_batch, "writing a batch with its position")?;
        writer.position = next;
        // Everything the data holds is committed now, at this position.
        writer.uncommitted = false;
        Ok(())
    }

    fn position(&self) -> Result<Position> {
        self.ensure_open()?;
        Ok(self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .position
            .clone())
    }

    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.ensure_open()?;
        Ok(scan(&self.db, range, false, &self.path))
    }

    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.ensure_open()?;
        Ok(scan(&self.db, range, true, &self.path))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.ensure_open()?;
        let count = self
            .db
            .property_int_value("rocksdb.estimate-num-keys")
            .map_err(self.rocks("estimating the number of keys"))?;
        Ok(count.unwrap_or(0))
    }

    fn flush(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) || self.read_only {
            // Close already flushed everything, or nothing can have been written.
            return Ok(());
        }
        self.flush_all()
    }

    fn wipe(&self) -> Result<()> {
        let mut writer = self.lock_writer()?;
        let mut batch = rocksdb::WriteBatch::default();
        // Keys are unbounded byte strings, so "everything" is [empty key, last key ++ 0);
        // no writer can add a greater key while we hold the lock.
        if let Some(mut last) = last_key(&self.db, &self.path)? {
            last.push(0);
            batch.delete_range(Vec::new(), last);
        }
        batch.delete_cf(meta_cf(&self.db, &self.path)?, POSITION_KEY);
        self.write_raw(batch, "wiping")?;
        // No data at no position: nothing uncovered is left.
        *writer = Writer {
            position: Position::empty(),
            uncommitted: false,
        };
        drop(writer);
        self.flush_all()
    }

    /// Takes a RocksDB checkpoint into the new directory `dir` (`src/checkpoint.rs` says why it is
    /// consistent): memtables are flushed (atomically across the data and the meta column family),
    /// SST files are hard-linked under their own names, and the position is read back from the
    /// checkpoint itself. Commits go on meanwhile. Refused with
    /// [`Unavailable`](state_core::ErrorKind::Unavailable) while the store holds writes made
    /// outside a commit (`put`, `delete`, `write` since the last `write_with_position`), which went
    /// straight into the database; such writes wait while a checkpoint runs. A read-only store
    /// refuses with [`Unsupported`](state_core::ErrorKind::Unsupported): RocksDB flushes nothing in
    /// read-only mode.
    ///
    /// The checkpoint's SST files are hard links to the store's own (RocksDB never changes an SST
    /// once written): read them, move or delete them, never write into them, or the store changes
    /// with them.
    fn checkpoint(&self, dir: &Path) -> Result<Checkpoint> {
        self.ensure_open()?;
        if self.read_only {
            return Err(Error::unsupported(format!(
                "rocksdb store {} at {} is open read-only; RocksDB takes checkpoints of \
                 stores open for writing only",
                self.name,
                self.path.display()
            )));
        }
        let (_direct, writer) = self.lock_direct()?;
        if writer.uncommitted {
            return Err(checkpoint::uncommitted(&self.name, &self.path));
        }
        // Commits may go on; writes outside a commit wait for `_direct`.
        drop(writer);
        let options = self.config.to_options(&self.path)?;
        checkpoint::write(&self.db, &self.path, &options, dir)
    }

    fn set_bulk_loading(&self, bulk_loading: bool) -> Result<()> {
        drop(self.lock_writer()?);
        if self.bulk_loading.swap(bulk_loading, Ordering::AcqRel) == bulk_loading {
            return Ok(());
        }
        // Like Kafka Streams' bulk-load mode: compacting while restore is still writing
        // rewrites the same data again and again.
        if !bulk_loading {
            // Flushed while compactions are still off: with them on, a flush first waits
            // until the level-0 files a bulk load leaves are compacted below the write
            // slowdown trigger (RocksDB's `WaitUntilFlushWouldNotStallWrites`), which was
            // a third of a 10M-record restore. That compaction now runs in the background.
            self.flush_all()?;
        }
        if let Err(err) = self.set_auto_compactions(!bulk_loading) {
            self.bulk_loading.store(!bulk_loading, Ordering::Release);
            return Err(err);
        }
        Ok(())
    }

    fn close(&self) -> Result<()> {
        // Under the write lock so no write slips in between the flush and the flag.
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if !self.read_only {
            self.flush_all()?;
        }
        self.closed.store(true, Ordering::Release);
        log::debug!(
            "closed rocksdb store {} at {}",
            self.name,
            self.path.display()
        );
        Ok(())
    }
}

fn to_rocksdb_batch(batch: &WriteBatch) -> rocksdb::WriteBatch {
    let mut out = rocksdb::WriteBatch::default();
    for op in batch.iter() {
        match op {
            WriteOp::Put { key, value } => out.put(key, value),
            WriteOp::Delete { key } => out.delete(key),
        }
    }
    out
}

impl fmt::Debug for RocksDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
