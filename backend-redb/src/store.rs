//! [`RedbStore`]: a [`KeyValueStore`] on one redb file.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use redb::{
    Builder, Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTableMetadata, Table,
    WriteTransaction,
};
use state_core::{
    Capability, Error, KeyRange, KeyValueStore, KvIter, Position, Result, WriteBatch, WriteOp,
};

use crate::commit::CommitPolicy;
use crate::config::RedbConfig;
use crate::error::map_redb_error;
use crate::layout::{self, DATA, META, POSITION_KEY};
use crate::scan::Scan;

type DataTable<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

/// A durable, ordered [`KeyValueStore`] kept in one redb file, `dir/store.redb` by default.
///
/// Every write is one redb write transaction; the changelog position lives in a separate
/// meta table of the same file and is written in the same transaction as the data it
/// describes. Dropping the store without [`close`](KeyValueStore::close) flushes nothing
/// itself; redb's own drop still closes the file (and in redb 4.6 makes pending `None`
/// commits durable), while a killed process loses them, data and position together.
pub struct RedbStore {
    name: String,
    path: Arc<Path>,
    /// `None` once closed. Operations hold the read lock; `close` takes the write lock.
    db: RwLock<Option<Database>>,
    policy: CommitPolicy,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store file in `dir` (which must exist), creating the file if it is
    /// absent or empty.
    ///
    /// A damaged file, a file that is not redb, or a redb file statestore did not write
    /// gives an [`ErrorKind::Corruption`](state_core::ErrorKind::Corruption) or
    /// [`ErrorKind::InvalidInput`](state_core::ErrorKind::InvalidInput) error naming the
    /// path; the file is left untouched. A file already open (in this process or another)
    /// gives [`ErrorKind::Unavailable`](state_core::ErrorKind::Unavailable).
    pub fn open(name: impl Into<String>, dir: &Path, config: &RedbConfig) -> Result<Self> {
        config.validate()?;
        let path: Arc<Path> = Arc::from(dir.join(config.file_name()));
        let db = Builder::new()
            .set_cache_size(config.cache_size())
            .set_check_integrity_on_open(config.check_integrity_on_open())
            .create(&path)
            .map_err(|err| map_redb_error(&path, "open", err))?;
        layout::prepare(&db, &path)?;
        Ok(Self {
            name: name.into(),
            path,
            db: RwLock::new(Some(db)),
            policy: CommitPolicy::new(config.durability(), config.bulk_immediate_every()),
        })
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        // A panic elsewhere cannot leave the `Option` half-written, so poison is harmless.
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(Error::new(
                state_core::ErrorKind::Closed,
                format!(
                    "redb store {:?} at {} is closed",
                    self.name,
                    self.path.display()
                ),
            )),
        }
    }

    fn map<'a>(&'a self, action: &'a str) -> impl Fn(redb::Error) -> Error + 'a {
        move |err| map_redb_error(&self.path, action, err)
    }

    /// Runs `f` on the data table of a fresh read snapshot.
    fn read_data<T>(
        &self,
        action: &str,
        f: impl FnOnce(ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        self.with_db(|db| {
            let map = self.map(action);
            let txn = db.begin_read().map_err(|e| map(e.into()))?;
            let table = txn.open_table(DATA).map_err(|e| map(e.into()))?;
            f(table)
        })
    }

    /// Runs `f` in a write transaction with the policy's durability; commits when `f`
    /// returns `(_, true)` and aborts when it returns `(_, false)` or an error.
    fn update<T>(
        &self,
        action: &str,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.with_db(|db| {
            let map = self.map(action);
            let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
            let durability = self.policy.next();
            txn.set_durability(durability).map_err(|e| map(e.into()))?;
            let (out, commit) = f(&txn)?;
            if commit {
                txn.commit().map_err(|e| map(e.into()))?;
                self.policy.committed(durability);
            } else {
                txn.abort().map_err(|e| map(e.into()))?;
            }
            Ok(out)
        })
    }

    fn open_data<'txn>(
        &self,
        txn: &'txn WriteTransaction,
        action: &str,
    ) -> Result<DataTable<'txn>> {
        txn.open_table(DATA).map_err(|e| self.map(action)(e.into()))
    }

    fn apply(&self, table: &mut DataTable<'_>, batch: &WriteBatch) -> Result<()> {
        let map = self.map("apply write batch");
        for op in batch.iter() {
            match op {
                WriteOp::Put { key, value } => {
                    table.insert(key, value).map_err(|e| map(e.into()))?;
                }
                WriteOp::Delete { key } => {
                    table.remove(key).map_err(|e| map(e.into()))?;
                }
            }
        }
        Ok(())
    }

    fn scan(&self, range: &KeyRange, reverse: bool) -> Result<KvIter<'_>> {
        self.read_data("range scan", |table| {
            let scan = Scan::new(&table, range, reverse, Arc::clone(&self.path))?;
            Ok(Box::new(scan) as KvIter<'_>)
        })
    }
}

impl KeyValueStore for RedbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        // Restore batches of 4,000: each is a write transaction and a commit (and every
        // 256th commit an fsync, see RedbConfig::with_bulk_immediate_every); beyond that
        // redb's B-tree insert is all that is left (BENCHMARKS.md, restore/apply).
        Capability::new("redb")
            .durable(true)
            .ordered_index(true)
            .restore_batch(4000)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read_data("get", |table| {
            let value = table.get(key).map_err(|e| self.map("get")(e.into()))?;
            Ok(value.map(|value| value.value().to_vec()))
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.update("put", |txn| {
            let mut table = self.open_data(txn, "put")?;
            table
                .insert(key, value)
                .map_err(|e| self.map("put")(e.into()))?;
            Ok(((), true))
        })
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let map = self.map("put_if_absent");
        self.update("put_if_absent", |txn| {
            let mut table = self.open_data(txn, "put_if_absent")?;
            let existing = redb::ReadableTable::get(&table, key)
                .map_err(|e| map(e.into()))?
                .map(|value| value.value().to_vec());
            if existing.is_some() {
                return Ok((existing, false));
            }
            table.insert(key, value).map_err(|e| map(e.into()))?;
            Ok((None, true))
        })
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.update("delete", |txn| {
            let mut table = self.open_data(txn, "delete")?;
            let old = table
                .remove(key)
                .map_err(|e| self.map("delete")(e.into()))?
                .map(|value| value.value().to_vec());
            // Nothing changed for an absent key, so there is nothing to commit.
            let changed = old.is_some();
            Ok((old, changed))
        })
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.update("write batch", |txn| {
            let mut table = self.open_data(txn, "write batch")?;
            self.apply(&mut table, batch)?;
            Ok(((), true))
        })
    }

    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        let map = self.map("write batch with position");
        self.update("write batch with position", |txn| {
            let mut table = self.open_data(txn, "write batch with position")?;
            self.apply(&mut table, batch)?;
            let mut meta = txn.open_table(META).map_err(|e| map(e.into()))?;
            let mut stored = layout::read_position(&meta, &self.path)?;
            for (partition, offset) in position.iter() {
                stored.set(partition, offset);
            }
            meta.insert(POSITION_KEY, stored.encode().as_slice())
                .map_err(|e| map(e.into()))?;
            Ok(((), true))
        })
    }

    fn position(&self) -> Result<Position> {
        self.with_db(|db| {
            let map = self.map("read changelog position");
            let txn = db.begin_read().map_err(|e| map(e.into()))?;
            let meta = txn.open_table(META).map_err(|e| map(e.into()))?;
            layout::read_position(&meta, &self.path)
        })
    }

    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.scan(range, false)
    }

    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        self.scan(range, true)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.read_data("count entries", |table| {
            table.len().map_err(|e| self.map("count entries")(e.into()))
        })
    }

    fn flush(&self) -> Result<()> {
        self.with_db(|db| flush_db(db, &self.policy, &self.path))
    }

    fn wipe(&self) -> Result<()> {
        let map = self.map("wipe");
        self.update("wipe", |txn| {
            txn.delete_table(DATA).map_err(|e| map(e.into()))?;
            txn.open_table(DATA).map_err(|e| map(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| map(e.into()))?;
            meta.remove(POSITION_KEY).map_err(|e| map(e.into()))?;
            Ok(((), true))
        })?;
        log::info!(
            "wiped redb store {:?} at {}",
            self.name,
            self.path.display()
        );
        Ok(())
    }

    fn set_bulk_loading(&self, bulk_loading: bool) -> Result<()> {
        self.policy.set_bulk_loading(bulk_loading);
        if bulk_loading { Ok(()) } else { self.flush() }
    }

    fn close(&self) -> Result<()> {
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        let Some(db) = guard.take() else {
            return Ok(());
        };
        // Put the database back if the flush fails so the caller can retry or drop.
        if let Err(err) = flush_db(&db, &self.policy, &self.path) {
            *guard = Some(db);
            return Err(err);
        }
        db.close()
            .map_err(|err| map_redb_error(&self.path, "close", err))
    }
}

/// Makes every `None` commit so far durable with one empty `Immediate` commit (none
/// when nothing is pending). The check runs inside the write transaction so no
/// concurrent commit slips between it and the flush.
fn flush_db(db: &Database, policy: &CommitPolicy, path: &Path) -> Result<()> {
    let map = |err: redb::Error| map_redb_error(path, "flush", err);
    let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
    if !policy.has_non_durable() {
        return txn.abort().map_err(|e| map(e.into()));
    }
    txn.set_durability(Durability::Immediate)
        .map_err(|e| map(e.into()))?;
    txn.commit().map_err(|e| map(e.into()))?;
    policy.committed(Durability::Immediate);
    Ok(())
}
