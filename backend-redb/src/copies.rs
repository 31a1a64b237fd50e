//! The checkpoint copies of one store begun but not done: each one's read transaction
//! is parked here from [`KeyValueStore::begin_checkpoint`](state_core::KeyValueStore::begin_checkpoint)
//! until the copy starts, and counted while it runs. redb keeps the file open and
//! locked while a read transaction lives, so closing the store ends them first: copies
//! not started yet lose their transaction (their checkpoint fails, saying why) and those
//! running are waited for. A closed store is then really closed, and its directory can
//! be opened again at once (a partition revoked and assigned back), whether or not
//! anybody ever finishes the checkpoints begun on it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use redb::ReadTransaction;

/// The copies of one store.
#[derive(Default)]
pub(crate) struct Copies {
    state: Mutex<State>,
    ended: Condvar,
}

#[derive(Default)]
struct State {
    parked: HashMap<u64, ReadTransaction>,
    next: u64,
    running: usize,
}

impl Copies {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain counters and transactions: nothing is left half-changed by a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `source` until its copy starts ([`Parked::start`]) or the store closes.
    pub(crate) fn park(self: &Arc<Self>, source: ReadTransaction) -> Parked {
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        state.parked.insert(id, source);
        Parked {
            copies: self.clone(),
            id,
        }
    }

    /// Ends every copy: drops the transactions of those not started and waits for those
    /// running. The caller holds the store's handle, so no new one begins meanwhile.
    pub(crate) fn end_all(&self) {
        let mut state = self.lock();
        state.parked.clear();
        while state.running > 0 {
            state = self
                .ended
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A begun copy's claim on its parked read transaction.
pub(crate) struct Parked {
    copies: Arc<Copies>,
    id: u64,
}

impl Parked {
    /// The transaction, counted as running until the returned guard drops; `None` when
    /// the store closed first.
    pub(crate) fn start(self) -> Option<Running> {
        let source = {
            let mut state = self.copies.lock();
            let source = state.parked.remove(&self.id)?;
            state.running += 1;
            source
        };
        Some(Running {
            source: Some(source),
            copies: self.copies.clone(),
        })
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // Never started (or started: then it is no longer parked and this is a no-op).
        let source = self.copies.lock().parked.remove(&self.id);
        drop(source);
    }
}

/// A running copy's read transaction; dropping it ends the copy.
pub(crate) struct Running {
    source: Option<ReadTransaction>,
    copies: Arc<Copies>,
}

impl Running {
    /// The transaction the copy reads.
    pub(crate) fn source(&self) -> &ReadTransaction {
        self.source
            .as_ref()
            .unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The transaction ends before the store may close.
        drop(self.source.take());
        let mut state = self.copies.lock();
        state.running -= 1;
        if state.running == 0 {
            self.copies.ended.notify_all();
        }
    }
}
