//! The write transaction a bulk load keeps open across batches.
//!
//! redb copies every B-tree page a transaction changes, once per transaction: a page
//! already copied by the open transaction is changed in place. A restore hands the store
//! one chunk of its read-ahead at a time (about 75,000 of Kafka Streams' String/Double
//! records in 4 MiB), and a changelog scatters each chunk's keys over the whole tree, so
//! one transaction per chunk copied most of the tree again for every chunk: a 1% tail of
//! 200,000 records replayed onto a snapshot of 10M keys rewrote the 312 MiB file about
//! 1.2 times in three transactions. While bulk loading, `write_with_position` therefore
//! applies each batch and its position to one open transaction and commits it once it
//! holds `RedbConfig::with_bulk_transaction_records` records; anything else the store is asked
//! first commits it, so every read sees every write that returned. A crash loses the open
//! transaction's batches with their position: the restore that wrote them starts again
//! after the last commit, as it does after a `None` commit lost.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use redb::{Database, WriteTransaction};
use state_core::Result;

use crate::commit::CommitPolicy;
use crate::error::map_redb_error;

/// The open transaction of a bulk load, if any, and the records written to it.
#[derive(Default)]
pub(crate) struct BulkTransaction {
    open: Mutex<Option<Open>>,
}

struct Open {
    txn: WriteTransaction,
    durability: redb::Durability,
    records: usize,
}

impl BulkTransaction {
    /// Runs `write` (which writes `records` records) in the open transaction, beginning one
    /// on `db` with the policy's durability when none is open, and commits it once it holds
    /// `limit` records or more; returns whether it committed. On an error the transaction
    /// is aborted: what it held since its last commit is lost with its position.
    pub(crate) fn write(
        &self,
        db: &Database,
        policy: &CommitPolicy,
        path: &Path,
        records: usize,
        limit: usize,
        write: impl FnOnce(&WriteTransaction) -> Result<()>,
    ) -> Result<bool> {
        let map = |err: redb::Error| map_redb_error(path, "bulk write", err);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current = match open.take() {
            Some(current) => current,
            None => {
                let mut txn = db.begin_write().map_err(|e| map(e.into()))?;
                let durability = policy.next();
                txn.set_durability(durability).map_err(|e| map(e.into()))?;
                Open {
                    txn,
                    durability,
                    records: 0,
                }
            }
        };
        // On an error `current` is dropped here, which aborts it.
        write(&current.txn)?;
        current.records += records;
        if current.records >= limit {
            commit(current, policy, path)?;
            Ok(true)
        } else {
            *open = Some(current);
            Ok(false)
        }
    }

    /// Commits the open transaction, if any. Returns whether there was one.
    pub(crate) fn settle(&self, policy: &CommitPolicy, path: &Path) -> Result<bool> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match open.take() {
            Some(current) => commit(current, policy, path).map(|()| true),
            None => Ok(false),
        }
    }
}

fn commit(open: Open, policy: &CommitPolicy, path: &Path) -> Result<()> {
    open.txn
        .commit()
        .map_err(|err| map_redb_error(path, "commit a bulk write", err))?;
    policy.committed(open.durability);
    Ok(())
}
