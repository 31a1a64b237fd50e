//! A bulk load's records, held back as sorted runs and merged into the tree in one
//! transaction.
//!
//! redb copies every B-tree page a transaction changes, once per transaction, and a
//! restore's batches scatter their keys over the whole tree: a transaction per batch, or
//! per 250,000 records, copied most of the tree again each time. While bulk loading,
//! `write_with_position` therefore adds each batch and its position to [`SortedRuns`]
//! (`src/runs.rs`) and merges them into the tree, with the position, in one transaction
//! once they hold `RedbConfig::with_bulk_transaction_records` records or their runs
//! `RedbConfig::with_bulk_spill_bytes` bytes; anything else the store is asked first
//! merges them, so every read sees every write that returned. The restore's durability
//! points (`flush`) make them durable without merging them: the runs synced and their
//! manifest committed, for the next open to merge should the process die. A crash loses
//! what was held since the last point, with its position: the restore that wrote it
//! starts again after that point, as it does after a `None` commit lost.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use redb::{Database, Durability, ReadableDatabase};
use state_core::{Position, Result, WriteBatch};

use crate::commit::CommitPolicy;
use crate::config::CommitDurability;
use crate::error::map_redb_error;
use crate::layout::{self, DATA, META, POSITION_KEY, RUNS_KEY};
use crate::runs::{self, SortedRuns};

/// The records of a bulk load not merged yet, if any.
#[derive(Debug)]
pub(crate) struct BulkLoad {
    /// Where the runs are spilled: a directory beside the store file.
    runs_dir: PathBuf,
    run_bytes: usize,
    spill_limit: u64,
    runs: Mutex<Option<SortedRuns>>,
}

/// The directory of the runs of the store file at `path`.
pub(crate) fn runs_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".bulk-runs");
    path.with_file_name(name)
}

impl BulkLoad {
    /// Nothing held yet; runs of `run_bytes` in memory spill to `runs_dir`, and are
    /// merged once `spill_limit` bytes are spilled.
    pub(crate) fn new(runs_dir: PathBuf, run_bytes: usize, spill_limit: u64) -> Self {
        Self {
            runs_dir,
            run_bytes,
            spill_limit,
            runs: Mutex::new(None),
        }
    }

    /// Adds `batch` and its `position`, and merges everything held into `db` once it holds
    /// `limit` records or more, or its runs the spill limit's bytes; returns whether it
    /// merged. On an error everything held
    /// since the last merge is dropped, with its position.
    pub(crate) fn write(
        &self,
        db: &Database,
        policy: &CommitPolicy,
        path: &Path,
        limit: usize,
        batch: &WriteBatch,
        position: &Position,
    ) -> Result<bool> {
        let mut held = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let runs =
            held.get_or_insert_with(|| SortedRuns::new(self.runs_dir.clone(), self.run_bytes));
        if let Err(err) = runs.push(batch, position) {
            runs.discard();
            return Err(err);
        }
        if runs.records() < limit && runs.spilled_bytes() < self.spill_limit {
            return Ok(false);
        }
        merge(db, policy, path, runs)?;
        Ok(true)
    }

    /// Merges everything held into `db`, if anything is. Returns whether it merged.
    pub(crate) fn settle(&self, db: &Database, policy: &CommitPolicy, path: &Path) -> Result<bool> {
        let mut held = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(runs) if runs.records() > 0 => merge(db, policy, path, runs).map(|()| true),
            _ => Ok(false),
        }
    }

    /// Makes everything held durable without merging it: the runs compacted and synced to
    /// disk, and their manifest committed. Returns whether anything was held. On an error
    /// everything held is dropped, with its position.
    pub(crate) fn persist(
        &self,
        db: &Database,
        policy: &CommitPolicy,
        path: &Path,
    ) -> Result<bool> {
        let mut held = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(runs) = held.as_mut() else {
            return Ok(false);
        };
        let persisted = runs.persist().and_then(|persisted| match persisted {
            Some(persisted) => {
                commit_manifest(db, policy, path, &persisted.manifest)?;
                // Named by no manifest any more: their records are in the runs that are.
                for run in persisted.superseded {
                    if let Err(err) = std::fs::remove_file(&run) {
                        log::warn!("could not remove bulk-load run {}: {err}", run.display());
                    }
                }
                Ok(true)
            }
            None => Ok(false),
        });
        if persisted.is_err() {
            runs.discard();
        }
        persisted
    }

    /// Drops everything held, unmerged, and removes its runs.
    pub(crate) fn discard(&self) {
        let mut held = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(runs) = held.as_mut() {
            runs.discard();
        }
    }
}

/// One transaction, with the policy's durability: every key's newest write from `runs`,
/// in key order, and the position they reach; the manifest of durable runs goes. Then
/// the runs are removed, merged or (on an error, the transaction aborted) dropped.
fn merge(db: &Database, policy: &CommitPolicy, path: &Path, runs: &mut SortedRuns) -> Result<()> {
    let merged = merge_into(db, policy, path, runs);
    runs.discard();
    merged
}

fn merge_into(
    db: &Database,
    policy: &CommitPolicy,
    path: &Path,
    runs: &mut SortedRuns,
) -> Result<()> {
    let map = |err: redb::Error| map_redb_error(path, "merge a bulk load", err);
    let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
    let durability = policy.next();
    txn.set_durability(durability).map_err(|e| map(e.into()))?;
    {
        let mut data = txn.open_table(DATA).map_err(|e| map(e.into()))?;
        let position = runs.merge(|key, value| {
            match value {
                Some(value) => data.insert(key, value).map(drop),
                None => data.remove(key).map(drop),
            }
            .map_err(|e| map(e.into()))
        })?;
        let mut meta = txn.open_table(META).map_err(|e| map(e.into()))?;
        let mut stored = layout::read_position(&meta, path)?;
        for (partition, offset) in position.iter() {
            stored.set(partition, offset);
        }
        meta.insert(POSITION_KEY, stored.encode().as_slice())
            .map_err(|e| map(e.into()))?;
        meta.remove(RUNS_KEY).map_err(|e| map(e.into()))?;
    }
    // An error before this drops `txn`, which aborts it.
    txn.commit()
        .map_err(|err| map_redb_error(path, "commit a bulk load's merge", err))?;
    policy.committed(durability);
    Ok(())
}

/// Commits `manifest` as the meta table's `RUNS_KEY`, `Immediate`, so the runs it names
/// outlive a crash.
fn commit_manifest(
    db: &Database,
    policy: &CommitPolicy,
    path: &Path,
    manifest: &[u8],
) -> Result<()> {
    let map = |err: redb::Error| map_redb_error(path, "record the runs of a bulk load", err);
    let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| map(e.into()))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| map(e.into()))?;
        meta.insert(RUNS_KEY, manifest).map_err(|e| map(e.into()))?;
    }
    txn.commit().map_err(|e| map(e.into()))?;
    policy.committed(Durability::Immediate);
    Ok(())
}

/// At a writable open: merges the runs a bulk load made durable before its process
/// died, once each is checked, or drops them when one is missing or damaged (the store
/// stays at its last merge, data and position together, and restore replays the rest);
/// then removes whatever else the run directory holds. Called with redb's writer lock
/// held, so no other writer uses the directory.
pub(crate) fn recover(db: &Database, path: &Path) -> Result<()> {
    let map = |err: redb::Error| map_redb_error(path, "recover the runs of a bulk load", err);
    let dir = runs_dir(path);
    let manifest = {
        let txn = db.begin_read().map_err(|e| map(e.into()))?;
        let meta = txn.open_table(META).map_err(|e| map(e.into()))?;
        let manifest = meta.get(RUNS_KEY).map_err(|e| map(e.into()))?;
        manifest.map(|manifest| manifest.value().to_vec())
    };
    if let Some(manifest) = manifest {
        let policy = CommitPolicy::new(CommitDurability::Immediate, 1);
        match SortedRuns::recover(dir.clone(), &manifest) {
            Ok(mut runs) => {
                let records = runs.records();
                merge(db, &policy, path, &mut runs)?;
                log::info!(
                    "merged {records} records a bulk load of {} had made durable before it stopped",
                    path.display()
                );
            }
            Err(err) => {
                log::warn!(
                    "dropping the runs a bulk load of {} had made durable: {err}; the store \
                     stays at its last merge and restore replays the rest",
                    path.display()
                );
                let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
                txn.set_durability(Durability::Immediate)
                    .map_err(|e| map(e.into()))?;
                txn.open_table(META)
                    .map_err(|e| map(e.into()))?
                    .remove(RUNS_KEY)
                    .map_err(|e| map(e.into()))?;
                txn.commit().map_err(|e| map(e.into()))?;
            }
        }
    }
    runs::remove_leftovers(&dir)
}
