//! [`RedbStore`]: a [`KeyValueStore`] on one redb file.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTableMetadata,
    Table, TransactionError, WriteTransaction,
};
use state_core::{
    Capability, Checkpoint, Error, KeyRange, KeyValueStore, KvIter, PendingCheckpoint, Position,
    Result, WriteBatch, WriteOp,
};

use crate::bulk::{self, BulkLoad};
use crate::checkpoint;
use crate::commit::CommitPolicy;
use crate::config::RedbConfig;
use crate::copies::{Copies, Parked};
use crate::error::map_redb_error;
use crate::layout::{self, DATA, META, POSITION_KEY, RUNS_KEY};
use crate::open::{open_read_only, open_writable};
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
    /// The records a bulk load holds back from the tree (`src/bulk.rs`); every other
    /// operation merges them first. If the store is dropped without `close`, the runs a
    /// durability point made durable stay for the next open to merge; the rest is lost.
    bulk: BulkLoad,
    /// `None` once closed. Operations hold the read lock; `close` takes the write lock.
    db: RwLock<Option<Handle>>,
    /// Held for the whole of every write transaction of [`RedbStore::update`], and by a
    /// checkpoint while it begins its read transaction, so the flag it guards always
    /// describes the last commit: whether the data holds writes made outside a commit
    /// (`put`, `put_if_absent`, `delete`, `write` since the last `write_with_position` or
    /// `wipe`), which a checkpoint refuses.
    uncommitted: Mutex<bool>,
    /// Checkpoint copies begun and not done.
    copies: Arc<Copies>,
    policy: CommitPolicy,
    config: RedbConfig,
    capability: Capability,
}

/// What a write transaction is, for the uncommitted flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// A write outside a commit: the data gets changes the position does not cover.
    Outside,
    /// `write_with_position` or `wipe`: data and position agree afterwards.
    Commit,
}

/// The open file: writable, or read-only ([`RedbStore::open_read_only`]: a database
/// whose writes stay in memory, never exposed to a write).
enum Handle {
    Writable(Database),
    ReadOnly(Database),
}

impl Handle {
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        match self {
            Handle::Writable(db) | Handle::ReadOnly(db) => db.begin_read(),
        }
    }
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
    /// Opens the store file in `dir`, creating `dir` and the file when nothing is there.
    ///
    /// Errors name the path and leave the file untouched: a damaged statestore file is
    /// [`ErrorKind::Corruption`](state_core::ErrorKind::Corruption); anything this
    /// backend did not write (an empty file, a file that is not redb, another program's
    /// redb file, other files without ours) is
    /// [`ErrorKind::Foreign`](state_core::ErrorKind::Foreign); another format version is
    /// [`ErrorKind::InvalidInput`](state_core::ErrorKind::InvalidInput). A file already
    /// open (in this process or another) gives
    /// [`ErrorKind::Unavailable`](state_core::ErrorKind::Unavailable).
    pub fn open(name: impl Into<String>, dir: &Path, config: &RedbConfig) -> Result<Self> {
        config.validate()?;
        let db = open_writable(dir, config)?;
        Ok(Self::new(name.into(), dir, config, Handle::Writable(db)))
    }

    /// Opens the existing store file in `dir` read-only: the file is opened for reading
    /// only, integrity-checked, and nothing is created, repaired or written on disk (a
    /// file a crashed writer left is recovered in memory); any number of read-only opens
    /// may run at once
    /// (see [`KeyValueBytesStoreSupplier::open_read_only`](state_core::KeyValueBytesStoreSupplier::open_read_only)).
    /// Nothing there is `NotFound`; a file open for writing is `Unavailable`.
    pub fn open_read_only(
        name: impl Into<String>,
        dir: &Path,
        config: &RedbConfig,
    ) -> Result<Self> {
        config.validate()?;
        let db = open_read_only(dir, config)?;
        Ok(Self::new(name.into(), dir, config, Handle::ReadOnly(db)))
    }

    /// A store around `db`, the store file in `dir` opened for writing.
    pub(crate) fn opened(name: String, dir: &Path, config: &RedbConfig, db: Database) -> Self {
        Self::new(name, dir, config, Handle::Writable(db))
    }

    fn new(name: String, dir: &Path, config: &RedbConfig, handle: Handle) -> Self {
        Self {
            name,
            path: Arc::from(dir.join(config.file_name())),
            bulk: BulkLoad::new(
                bulk::runs_dir(&dir.join(config.file_name())),
                config.bulk_run_bytes(),
                config.bulk_spill_bytes(),
            ),
            db: RwLock::new(Some(handle)),
            uncommitted: Mutex::new(false),
            copies: Arc::default(),
            policy: CommitPolicy::new(config.durability(), config.bulk_immediate_every()),
            config: config.clone(),
            capability: config.capability(),
        }
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the open database after merging what the bulk load holds back, so `f`
    /// sees every write that returned and can begin its own write transaction.
    fn with_db<T>(&self, f: impl FnOnce(&Handle) -> Result<T>) -> Result<T> {
        self.with_db_unsettled(|db| {
            self.settle_bulk(db)?;
            f(db)
        })
    }

    /// Merges what the bulk load holds back, if anything: its last write is a
    /// `write_with_position`, so the data and the position agree afterwards.
    fn settle_bulk(&self, handle: &Handle) -> Result<()> {
        // A read-only store never held anything back: its bulk writes are refused.
        let Handle::Writable(db) = handle else {
            return Ok(());
        };
        let mut uncommitted = self
            .uncommitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.bulk.settle(db, &self.policy, &self.path)? {
            *uncommitted = false;
        }
        Ok(())
    }

    /// Runs `f` on the open database as it is, what the bulk load holds back left there.
    fn with_db_unsettled<T>(&self, f: impl FnOnce(&Handle) -> Result<T>) -> Result<T> {
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

    /// Runs `f` on the writable database; a read-only store refuses.
    fn with_writable<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        self.with_db(|handle| match handle {
            Handle::Writable(db) => f(db),
            Handle::ReadOnly(_) => Err(self.read_only()),
        })
    }

    /// The error for a write asked of a store opened read-only.
    fn read_only(&self) -> Error {
        Error::unsupported(format!(
            "redb store {:?} at {} is open read-only; it cannot be written",
            self.name,
            self.path.display()
        ))
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
    /// returns `(_, true)` and aborts when it returns `(_, false)` or an error. `write`
    /// says what a commit does to the uncommitted flag.
    fn update<T>(
        &self,
        action: &str,
        write: Write,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.with_writable(|db| {
            let map = self.map(action);
            // Only the flag is guarded; a panic cannot leave it half-written.
            let mut uncommitted = self
                .uncommitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
            let durability = self.policy.next();
            txn.set_durability(durability).map_err(|e| map(e.into()))?;
            let (out, commit) = f(&txn)?;
            if commit {
                // Set before the commit: should it fail half-way, a checkpoint errs on
                // the side of refusing.
                if write == Write::Outside {
                    *uncommitted = true;
                }
                txn.commit().map_err(|e| map(e.into()))?;
                self.policy.committed(durability);
                if write == Write::Commit {
                    *uncommitted = false;
                }
            } else {
                txn.abort().map_err(|e| map(e.into()))?;
            }
            Ok(out)
        })
    }

    /// A read transaction at the last commit, for a checkpoint; refused while the data
    /// holds writes made outside a commit. Writers wait only while it begins. It is parked
    /// for the copy while the handle is held, so a `close` either comes first (and this
    /// fails) or ends it.
    fn committed_read(&self) -> Result<Parked> {
        self.with_db(|db| {
            let uncommitted = self
                .uncommitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *uncommitted {
                return Err(checkpoint::uncommitted(&self.name, &self.path));
            }
            db.begin_read()
                .map(|source| self.copies.park(source))
                .map_err(|e| self.map("begin a checkpoint")(e.into()))
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
        for op in last_write_per_key_in_key_order(batch) {
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

    /// A bulk load's `write_with_position`: the batch and its position are held back
    /// with the others (`src/bulk.rs`), merged into the tree once they are many enough.
    fn hold_back(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        self.with_db_unsettled(|handle| {
            let Handle::Writable(db) = handle else {
                return Err(self.read_only());
            };
            let mut uncommitted = self
                .uncommitted
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let limit = self.config.bulk_transaction_records();
            if self
                .bulk
                .write(db, &self.policy, &self.path, limit, batch, position)?
            {
                *uncommitted = false;
            }
            Ok(())
        })
    }

    fn scan(&self, range: &KeyRange, reverse: bool) -> Result<KvIter<'_>> {
        self.read_data("range scan", |table| {
            let scan = Scan::new(&table, range, reverse, Arc::clone(&self.path))?;
            Ok(Box::new(scan) as KvIter<'_>)
        })
    }
}

/// What `batch` leaves behind, in key order: each key's last operation. A transaction
/// copies every B-tree page it changes once; keys applied in the order they arrive (a
/// changelog's order, scattered over the tree) copy a leaf and its path for almost every
/// key once the store outgrows a few pages, keys in order share them. The sort is stable,
/// so the last of a key's operations is the one kept.
fn last_write_per_key_in_key_order(batch: &WriteBatch) -> impl Iterator<Item = WriteOp<'_>> {
    let mut ops: Vec<WriteOp<'_>> = batch.iter().collect();
    ops.sort_by(|a, b| a.key().cmp(b.key()));
    let mut ops = ops.into_iter().peekable();
    std::iter::from_fn(move || {
        loop {
            let op = ops.next()?;
            if ops.peek().is_none_or(|next| next.key() != op.key()) {
                return Some(op);
            }
        }
    })
}

impl KeyValueStore for RedbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        self.capability
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read_data("get", |table| {
            let value = table.get(key).map_err(|e| self.map("get")(e.into()))?;
            Ok(value.map(|value| value.value().to_vec()))
        })
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.update("put", Write::Outside, |txn| {
            let mut table = self.open_data(txn, "put")?;
            table
                .insert(key, value)
                .map_err(|e| self.map("put")(e.into()))?;
            Ok(((), true))
        })
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let map = self.map("put_if_absent");
        self.update("put_if_absent", Write::Outside, |txn| {
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
        self.update("delete", Write::Outside, |txn| {
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
        self.update("write batch", Write::Outside, |txn| {
            let mut table = self.open_data(txn, "write batch")?;
            self.apply(&mut table, batch)?;
            Ok(((), true))
        })
    }

    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        if self.policy.bulk_loading() {
            return self.hold_back(batch, position);
        }
        let action = "write batch with position";
        self.update(action, Write::Commit, |txn| {
            let mut table = self.open_data(txn, action)?;
            self.apply(&mut table, batch)?;
            let map = self.map(action);
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
        if self.policy.bulk_loading() {
            // A restore's durability point: what the bulk load holds back is made
            // durable where it is, not merged (`src/bulk.rs`).
            return self.with_db_unsettled(|handle| match handle {
                Handle::Writable(db) => {
                    self.bulk.persist(db, &self.policy, &self.path)?;
                    flush_db(db, &self.policy, &self.path)
                }
                Handle::ReadOnly(_) => Ok(()),
            });
        }
        self.with_db(|handle| match handle {
            Handle::Writable(db) => flush_db(db, &self.policy, &self.path),
            // Nothing can have been written.
            Handle::ReadOnly(_) => Ok(()),
        })
    }

    fn wipe(&self) -> Result<()> {
        // What the bulk load holds back would be wiped with the rest: no need to merge it.
        self.bulk.discard();
        let map = self.map("wipe");
        self.update("wipe", Write::Commit, |txn| {
            txn.delete_table(DATA).map_err(|e| map(e.into()))?;
            txn.open_table(DATA).map_err(|e| map(e.into()))?;
            let mut meta = txn.open_table(META).map_err(|e| map(e.into()))?;
            meta.remove(POSITION_KEY).map_err(|e| map(e.into()))?;
            meta.remove(RUNS_KEY).map_err(|e| map(e.into()))?;
            Ok(((), true))
        })?;
        log::info!(
            "wiped redb store {:?} at {}",
            self.name,
            self.path.display()
        );
        Ok(())
    }

    /// Copies the committed data and position, as one read transaction sees them, into a new redb
    /// file in the new directory `dir` (`src/checkpoint.rs` says why it is consistent). Writers go
    /// on meanwhile; the read transaction keeps redb from reusing the pages they replace until the
    /// copy is done. Refused with [`Unavailable`](state_core::ErrorKind::Unavailable) while the
    /// store holds writes made outside a commit (`put`, `delete`, `write` since the last
    /// `write_with_position`): each of those is a redb commit of its own, already in every read
    /// transaction, and would be in the copy without its changelog position.
    fn checkpoint(&self, dir: &Path) -> Result<Checkpoint> {
        self.begin_checkpoint(dir)?.finish()
    }

    /// As [`checkpoint`](Self::checkpoint), but only the read transaction's start holds the
    /// store; [`PendingCheckpoint::finish`] copies. [`close`](Self::close) fails copies not
    /// started yet (their transaction would keep the file open) and waits for those running.
    fn begin_checkpoint(&self, dir: &Path) -> Result<PendingCheckpoint> {
        let source = self.committed_read()?;
        checkpoint::begin(source, self.path.clone(), self.config.clone(), dir)
    }

    fn set_bulk_loading(&self, bulk_loading: bool) -> Result<()> {
        // Merges what the bulk load holds back, under the bulk policy's durability.
        self.with_writable(|_| Ok(()))?;
        self.policy.set_bulk_loading(bulk_loading);
        if bulk_loading { Ok(()) } else { self.flush() }
    }

    fn close(&self) -> Result<()> {
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // With the handle held no copy can begin; the transactions of those begun keep the
        // file open.
        self.copies.end_all();
        if let Some(handle) = guard.as_ref() {
            self.settle_bulk(handle)?;
        }
        let db = match guard.take() {
            None => return Ok(()),
            Some(Handle::ReadOnly(db)) => {
                // Its writes go to memory: closing it touches no file.
                return db
                    .close()
                    .map_err(|err| map_redb_error(&self.path, "close", err));
            }
            Some(Handle::Writable(db)) => db,
        };
        // Put the database back if the flush fails so the caller can retry or drop.
        if let Err(err) = flush_db(&db, &self.policy, &self.path) {
            *guard = Some(Handle::Writable(db));
            return Err(err);
        }
        db.close()
            .map_err(|err| map_redb_error(&self.path, "close", err))
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // As in `close`: a begun copy's transaction keeps the file open and locked, and
        // the store's directory may be opened again the moment this returns.
        self.copies.end_all();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_applies_as_each_keys_last_write_in_key_order() {
        let mut batch = WriteBatch::new();
        batch
            .put("c", "1")
            .put("a", "1")
            .delete("b")
            .put("a", "2")
            .put("b", "1")
            .delete("c");
        let applied: Vec<(&[u8], Option<&[u8]>)> = last_write_per_key_in_key_order(&batch)
            .map(|op| (op.key(), op.value()))
            .collect();
        let want: Vec<(&[u8], Option<&[u8]>)> =
            vec![(b"a", Some(b"2")), (b"b", Some(b"1")), (b"c", None)];
        assert_eq!(applied, want);
    }
}
