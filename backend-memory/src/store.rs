//! The store: a concurrent hash map for point operations, an ordered index of its keys
//! for scans, the changelog position, and a gate that makes batches atomic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use state_core::{
    Capability, Checkpoint, KeyRange, KeyValueStore, KvIter, PendingCheckpoint, Position, Result,
    WriteBatch, WriteOp,
};

use crate::CAPABILITY;
use crate::checkpoint;
use crate::dump::{Dump, Entries};
use crate::index::{IndexKey, Key, OrderedKeys};
use crate::scan::{self, Order};
use crate::slot_order::{Hashed, insert_in_slot_order};
use crate::tombstones::{Grave, Tombstones};
use crate::value::Value;

/// The point index: every key the store holds, with its slot.
///
/// Hashed with foldhash rather than the standard library's SipHash: a get took 0.4–0.7x
/// the time (`BENCHMARKS.md`). SipHash's strength is against an attacker who learns the
/// seed from the map's iteration order or timing and then sends colliding keys; each
/// store draws its own random seed, and nothing the store returns follows hash order
/// (scans walk the ordered index), which leaves timing alone to learn it from.
pub(crate) type Map = DashMap<Key, Cell, foldhash::quality::RandomState>;

/// A key's slot, shared by the map (for point operations) and the index (for scans, which
/// so read values without a hash lookup per match). Its own lock, not the map shard's,
/// guards the slot: an overwrite holds its shard only for reading.
pub(crate) type Cell = Arc<Mutex<Slot>>;

/// Locks `cell`. Every change to a slot is one assignment, so a panic cannot leave one
/// torn: poisoning is recovered.
pub(crate) fn lock(cell: &Cell) -> MutexGuard<'_, Slot> {
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A key's entry in the map: its value, or the grave of a key deleted but not yet purged.
#[derive(Debug)]
pub(crate) enum Slot {
    Live(Value),
    Buried(Grave),
}

impl Slot {
    /// The value, unless the key is deleted.
    pub(crate) fn live(&self) -> Option<&[u8]> {
        match self {
            Self::Live(value) => Some(value.as_slice()),
            Self::Buried(_) => None,
        }
    }
}

/// An in-memory, non-durable [`KeyValueStore`] on a [`DashMap`], with an ordered index of
/// its keys beside it.
///
/// Each key's slot (its value, or the grave of a deletion) lives in a cell that the map
/// and the ordered index share. Gets, overwrites and deletes find the cell through the
/// map (one shard, for reading) and lock the cell: a delete leaves a grave in it, and
/// every 1,024 deletes the keys still deleted leave the map and the index together. A put
/// of a new key also takes the index's write lock and enters both under it, so a scan,
/// which holds the index's read lock, never misses a key the map holds.
/// Batches are atomic for readers through a store-wide reader-writer gate:
/// [`write`](KeyValueStore::write),
/// [`write_with_position`](KeyValueStore::write_with_position) and
/// [`wipe`](KeyValueStore::wipe) take it exclusively, every other operation shares it.
/// The cost: while a batch applies, every get, put and scan waits for it, and a batch
/// waits for running scans to finish. Locks are always taken in the order gate, index,
/// map shard, cell (a scan skips the shard), so none of this can deadlock.
///
/// Scans cost O(log n + m) for m matches: the index finds the first key and yields the
/// matches in order, in either direction, each with its cell, so a value costs a lock and
/// no hash lookup. A scan
/// returns a collected snapshot in unsigned-byte key order, so no lock outlives the
/// call; an open-ended range collects every entry to its end, so bound a range when only
/// its first entries are wanted. What a scan sees of writes running beside it:
/// - each batch whole or not at all;
/// - for each key, its value (or its absence) at some moment while the scan ran: a put or
///   delete running beside the scan may or may not be in it;
/// - every key written before the scan began and not written while it ran, as written;
/// - never a value no write produced, never a key twice, never a key out of order.
#[derive(Debug)]
pub struct MemoryStore {
    name: String,
    data: Map,
    keys: OrderedKeys,
    tombstones: Tombstones,
    position: Mutex<Position>,
    /// Set before a write outside a commit (`put`, `put_if_absent`, `delete`, `write`)
    /// changes anything; cleared by `write_with_position` and `wipe`, which hold the gate
    /// exclusively. While set, the data holds writes the position does not cover, and a
    /// checkpoint is refused (see [`crate::checkpoint`]).
    uncommitted: AtomicBool,
    /// Exclusive for batches and wipe, shared for everything else.
    gate: RwLock<()>,
}

impl MemoryStore {
    /// An empty store named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_capacity(name, 0)
    }

    /// An empty store named `name` whose map has room for `entries` keys.
    pub(crate) fn with_capacity(name: impl Into<String>, entries: usize) -> Self {
        Self {
            name: name.into(),
            data: Map::with_capacity_and_hasher(entries, Default::default()),
            keys: OrderedKeys::default(),
            tombstones: Tombstones::default(),
            position: Mutex::new(Position::empty()),
            uncommitted: AtomicBool::new(false),
            gate: RwLock::new(()),
        }
    }

    /// Fills a new store, which no other thread can see yet, from a checked dump, and
    /// takes its position.
    ///
    /// The work is spread over the cores, since a relocation waits for it:
    /// - the dump is cut into runs of entries, and a thread per core allocates each
    ///   run's keys and cells, each with its second owner taken while the allocation is
    ///   fresh in cache: one list for the index, one for the map;
    /// - then the ordered index is built in bulk from the sorted keys on one thread, in
    ///   linear time (one insert into a B-tree of millions of keys costs more than the
    ///   rest of loading the key), while the hash map is filled in the order of its
    ///   slots on another ([`crate::slot_order`]: in key order, every key of a large
    ///   store is a cache and a TLB miss in a table of hundreds of megabytes).
    ///
    /// `BENCHMARKS.md` has the figures.
    pub(crate) fn load(&self, dump: &Dump) {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        // A run per core, but none for small dumps: a thread costs more than it saves.
        let runs = if dump.len() < 100_000 { 1 } else { threads };
        let mut keys = self.keys.write();
        std::thread::scope(|scope| {
            let built: Vec<_> = dump
                .runs(runs)
                .into_iter()
                .map(|run| scope.spawn(|| self.allocate(run)))
                .collect();
            let (mut indexed, mut hashed) = (Vec::new(), Vec::new());
            for run in built {
                // Allocating cannot panic short of running out of memory; should it, its
                // panic is this call's.
                let (run_indexed, run_hashed) = run
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                indexed.push(run_indexed);
                hashed.push(run_hashed);
            }
            // The runs are in key order, so their concatenation is sorted, and `collect`
            // builds the tree in bulk.
            let index = scope.spawn(|| {
                indexed
                    .into_iter()
                    .flatten()
                    .collect::<BTreeMap<IndexKey, Cell>>()
            });
            insert_in_slot_order(&self.data, hashed);
            let index = index
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            if keys.is_empty() {
                *keys = index;
            } else {
                keys.extend(index);
            }
        });
        *self.position_lock() = dump.position().clone();
    }

    /// A run's keys and cells, for the index and for the map.
    fn allocate(&self, run: Entries<'_>) -> (Vec<(IndexKey, Cell)>, Vec<Hashed>) {
        let (mut indexed, mut hashed) = (Vec::new(), Vec::new());
        for (key, value) in run {
            let key = Key::from(key);
            let cell = Arc::new(Mutex::new(Slot::Live(Value::new(value))));
            indexed.push((IndexKey::new(Key::clone(&key)), Arc::clone(&cell)));
            hashed.push(Hashed::new(&self.data, key, cell));
        }
        (indexed, hashed)
    }

    /// The committed data and position, held still for reading: see [`Committed`].
    /// Fails while writes outside a commit are in the store.
    pub(crate) fn committed(&self) -> Result<Committed<'_>> {
        let gate = self.shared();
        let keys = self.keys.read();
        let committed = Committed {
            store: self,
            position: self.position_lock().clone(),
            keys,
            _gate: gate,
        };
        committed.check()?;
        Ok(committed)
    }

    /// Records that a write outside a commit is about to change the data. SeqCst, and
    /// before the change: a checkpoint that saw the change sees the flag afterwards.
    /// Only the first write after a commit stores; later ones only read the flag, which
    /// leaves its cache line shared between the cores that write.
    fn mark_uncommitted(&self) {
        if !self.uncommitted.load(Ordering::Relaxed) {
            self.uncommitted.store(true, Ordering::SeqCst);
        }
    }

    // The locks guard no invariant a panic could break halfway (nothing in this crate
    // panics while holding them), so a poisoned lock is recovered rather than reported.
    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn position_lock(&self) -> MutexGuard<'_, Position> {
        self.position.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Overwrites `key` with `value` if the map holds it (as a value or a tombstone), and
    /// says whether it did; a value's buffer is reused when it fits ([`Value::overwrite`]).
    fn overwrite(&self, key: &[u8], value: &[u8]) -> bool {
        // Holding the map entry (its shard, for reading) keeps a purge from removing the
        // key while its slot changes.
        let Some(cell) = self.data.get(key) else {
            return false;
        };
        self.fill(&mut lock(&cell), value);
        true
    }

    /// Sets `key` to `value`. A key the map holds only has its slot filled, without
    /// allocating a key or touching the index.
    fn insert(&self, key: &[u8], value: &[u8]) {
        if !self.overwrite(key, value) {
            self.insert_new(&mut self.keys.write(), key, value);
        }
    }

    /// Puts `value` in `slot`.
    fn fill(&self, slot: &mut Slot, value: &[u8]) {
        match slot {
            Slot::Live(existing) => existing.overwrite(value),
            Slot::Buried(grave) => {
                let grave = *grave;
                *slot = Slot::Live(Value::new(value));
                self.tombstones.revive(grave);
            }
        }
    }

    /// Sets `key`, most likely absent from the map (another thread may have inserted it
    /// since the caller looked), to `value`; the caller holds the index's write lock
    /// (`keys`), so the key enters the map and the index together.
    fn insert_new(&self, keys: &mut BTreeMap<IndexKey, Cell>, key: &[u8], value: &[u8]) {
        match self.data.entry(Key::from(key)) {
            Entry::Occupied(existing) => self.fill(&mut lock(existing.get()), value),
            Entry::Vacant(vacant) => {
                let cell = Arc::new(Mutex::new(Slot::Live(Value::new(value))));
                keys.insert(IndexKey::new(Key::clone(vacant.key())), Arc::clone(&cell));
                vacant.insert(cell);
            }
        }
    }

    /// Empties `key`'s slot and returns its value; the key stays in the map and the index
    /// as a tombstone (see [`crate::tombstones`]). Returns the buried keys when a purge is
    /// due; the caller purges them once it holds no index or shard lock.
    /// `outside_commit` marks the store uncommitted (see [`Self::mark_uncommitted`])
    /// before the slot changes.
    fn bury(
        &self,
        key: &[u8],
        outside_commit: bool,
    ) -> (Option<Vec<u8>>, Option<Vec<Option<Key>>>) {
        let Some(cell) = self.data.get(key) else {
            return (None, None);
        };
        let mut slot = lock(&cell);
        if matches!(*slot, Slot::Buried(_)) {
            return (None, None);
        }
        if outside_commit {
            self.mark_uncommitted();
        }
        let (grave, due) = self.tombstones.bury(cell.key());
        match std::mem::replace(&mut *slot, Slot::Buried(grave)) {
            Slot::Live(old) => (Some(old.into_vec()), due),
            Slot::Buried(_) => (None, due),
        }
    }

    /// Removes the keys in `buried` (a graveyard; `None` for keys written again since) whose
    /// slot still holds a grave from the map and the index.
    fn purge(&self, buried: Vec<Option<Key>>) {
        let mut keys = self.keys.write();
        for key in buried.into_iter().flatten() {
            if self
                .data
                .remove_if(&*key, |_, cell| matches!(*lock(cell), Slot::Buried(_)))
                .is_some()
            {
                keys.remove(&IndexKey::new(key));
                self.tombstones.purged();
            }
        }
    }

    /// Applies `batch` in order; the caller holds the gate exclusively. The index's write
    /// lock is taken once, by the first put of a new key, for the whole batch: a batch of
    /// overwrites and deletes (most of a restore) never takes it.
    fn apply(&self, batch: &WriteBatch) {
        let mut keys = None;
        let mut due = Vec::new();
        for op in batch.iter() {
            match op {
                WriteOp::Put { key, value } => {
                    if !self.overwrite(key, value) {
                        let keys = keys.get_or_insert_with(|| self.keys.write());
                        self.insert_new(keys, key, value);
                    }
                }
                WriteOp::Delete { key } => due.extend(self.bury(key, false).1),
            }
        }
        drop(keys);
        for buried in due {
            self.purge(buried);
        }
    }
}

impl KeyValueStore for MemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn capability(&self) -> Capability {
        CAPABILITY
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _gate = self.shared();
        Ok(self
            .data
            .get(key)
            .and_then(|cell| lock(&cell).live().map(<[u8]>::to_vec)))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let _gate = self.shared();
        self.mark_uncommitted();
        self.insert(key, value);
        Ok(())
    }

    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let _gate = self.shared();
        // Holding the slot's lock makes check and fill one step.
        let check_and_fill = |cell: &Cell| {
            let mut slot = lock(cell);
            match &*slot {
                Slot::Live(existing) => Some(existing.as_slice().to_vec()),
                Slot::Buried(_) => {
                    self.mark_uncommitted();
                    self.fill(&mut slot, value);
                    None
                }
            }
        };
        if let Some(cell) = self.data.get(key) {
            return Ok(check_and_fill(&cell));
        }
        let mut keys = self.keys.write();
        match self.data.entry(Key::from(key)) {
            Entry::Occupied(existing) => Ok(check_and_fill(existing.get())),
            Entry::Vacant(vacant) => {
                self.mark_uncommitted();
                let cell = Arc::new(Mutex::new(Slot::Live(Value::new(value))));
                keys.insert(IndexKey::new(Key::clone(vacant.key())), Arc::clone(&cell));
                vacant.insert(cell);
                Ok(None)
            }
        }
    }

    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let _gate = self.shared();
        let (old, due) = self.bury(key, true);
        if let Some(buried) = due {
            self.purge(buried);
        }
        Ok(old)
    }

    fn write(&self, batch: &WriteBatch) -> Result<()> {
        let _gate = self.exclusive();
        if !batch.is_empty() {
            self.mark_uncommitted();
        }
        self.apply(batch);
        Ok(())
    }

    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        let _gate = self.exclusive();
        self.apply(batch);
        let mut stored = self.position_lock();
        for (partition, offset) in position.iter() {
            stored.set(partition, offset);
        }
        // Everything the data holds is committed now, at this position.
        self.uncommitted.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn position(&self) -> Result<Position> {
        let _gate = self.shared();
        Ok(self.position_lock().clone())
    }

    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        let _gate = self.shared();
        Ok(scan::into_iter(scan::collect(
            &self.keys,
            range,
            Order::Ascending,
        )))
    }

    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        let _gate = self.shared();
        Ok(scan::into_iter(scan::collect(
            &self.keys,
            range,
            Order::Descending,
        )))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> Result<KvIter<'_>> {
        let _gate = self.shared();
        Ok(scan::into_iter(scan::collect(
            &self.keys,
            &KeyRange::prefix(prefix),
            Order::Ascending,
        )))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        let _gate = self.shared();
        let entries = self.data.len().saturating_sub(self.tombstones.graves());
        Ok(u64::try_from(entries).unwrap_or(u64::MAX))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn wipe(&self) -> Result<()> {
        let _gate = self.exclusive();
        let mut keys = self.keys.write();
        self.data.clear();
        keys.clear();
        self.tombstones.clear();
        *self.position_lock() = Position::empty();
        // No data at no position: nothing uncovered is left.
        self.uncommitted.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Writes a sorted dump of the committed data and position into the new directory `dir`
    /// (`src/checkpoint.rs` says why it is consistent). Batches and `wipe` wait while the dump is
    /// written; gets, scans and puts of keys already present do not. Refused with
    /// [`Unavailable`](state_core::ErrorKind::Unavailable) while the store holds writes made
    /// outside a commit (`put`, `delete`, `write` since the last `write_with_position`): they would
    /// be in the dump without their changelog position.
    fn checkpoint(&self, dir: &Path) -> Result<Checkpoint> {
        checkpoint::write(self, dir)
    }

    /// As [`checkpoint`](Self::checkpoint), but only the dump's encoding, in memory, holds
    /// the store; [`PendingCheckpoint::finish`] writes and syncs the file.
    fn begin_checkpoint(&self, dir: &Path) -> Result<PendingCheckpoint> {
        checkpoint::begin(self, dir)
    }
}

/// The store's committed data and position, held still: the gate is held shared, so no
/// batch commits and nothing is wiped meanwhile, and the index for reading, so no key
/// enters or leaves. Writes outside a commit to keys already present can still run;
/// [`Committed::check`] after reading tells whether one did.
pub(crate) struct Committed<'a> {
    store: &'a MemoryStore,
    position: Position,
    keys: RwLockReadGuard<'a, BTreeMap<IndexKey, Cell>>,
    _gate: RwLockReadGuard<'a, ()>,
}

impl Committed<'_> {
    /// The position committed with the data.
    pub(crate) fn position(&self) -> &Position {
        &self.position
    }

    /// Calls `visit` with every live entry in ascending key order, each value read under
    /// its cell's lock; stops at the first error.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
        for (key, cell) in self.keys.iter() {
            if let Some(value) = lock(cell).live() {
                visit(key.key(), value)?;
            }
        }
        Ok(())
    }

    /// Fails when a write outside a commit has changed, or is changing, the data: what
    /// was read may then hold it.
    pub(crate) fn check(&self) -> Result<()> {
        if self.store.uncommitted.load(Ordering::SeqCst) {
            return Err(checkpoint::uncommitted(&self.store.name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::thread;

    use super::*;

    /// Deleted keys linger as tombstones until a purge, which removes from the map and the
    /// index those still deleted and keeps those written again.
    #[test]
    fn purges_remove_keys_still_deleted_and_keep_revived_ones() {
        use crate::tombstones::PURGE_EVERY;
        let store = MemoryStore::new("purge");
        let key = |i: usize| (i as u64).to_be_bytes();
        for i in 0..2 * PURGE_EVERY {
            store.put(&key(i), b"v").unwrap();
        }
        for i in 0..PURGE_EVERY - 1 {
            store.delete(&key(i)).unwrap();
        }
        store.put(&key(0), b"again").unwrap();
        assert_eq!(
            store.data.len(),
            2 * PURGE_EVERY,
            "no purge before it is due"
        );
        assert_eq!(
            store.approximate_num_entries().unwrap(),
            (PURGE_EVERY + 2) as u64
        );
        // The burial that makes the purge due.
        store.delete(&key(PURGE_EVERY)).unwrap();
        assert_eq!(store.data.len(), PURGE_EVERY + 1);
        assert_eq!(store.keys.read().len(), PURGE_EVERY + 1);
        assert_eq!(store.tombstones.graves(), 0);
        assert_eq!(store.get(&key(0)).unwrap().as_deref(), Some(&b"again"[..]));
        let scanned: Vec<_> = store.all().unwrap().map(|e| e.unwrap().0).collect();
        // 0 was deleted and written again; PURGE_EVERY - 1 was never deleted.
        let mut expected: Vec<Vec<u8>> = [0, PURGE_EVERY - 1]
            .into_iter()
            .chain(PURGE_EVERY + 1..2 * PURGE_EVERY)
            .map(|i| key(i).to_vec())
            .collect();
        expected.sort();
        assert!(scanned == expected, "the scan differs from the keys left");
    }

    /// Puts, deletes and batches racing on the same few keys leave the index holding
    /// exactly the map's keys: a key missing from the index would vanish from scans, a key
    /// left behind would leak.
    #[test]
    fn the_index_holds_exactly_the_map_keys_after_racing_writes() {
        let store = Arc::new(MemoryStore::new("index"));
        let writers: Vec<_> = (0..4u8)
            .map(|writer| {
                let store = Arc::clone(&store);
                thread::spawn(move || {
                    for i in 0..20_000u32 {
                        let key = [u8::try_from(i.wrapping_mul(7) % 13).unwrap()];
                        match (i + u32::from(writer)) % 5 {
                            0 | 1 => store.put(&key, &i.to_be_bytes()).map(drop),
                            2 => store.delete(&key).map(drop),
                            3 => store.put_if_absent(&key, b"x").map(drop),
                            _ => {
                                let mut batch = WriteBatch::new();
                                batch.delete(key).put([key[0] ^ 1], [writer]);
                                store.write(&batch)
                            }
                        }
                        .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let mapped: BTreeSet<Key> = store.data.iter().map(|e| Key::clone(e.key())).collect();
        let indexed: BTreeSet<Key> = store
            .keys
            .read()
            .keys()
            .map(|k| Key::clone(k.key()))
            .collect();
        assert_eq!(indexed, mapped);
        assert_eq!(store.keys.read().len(), mapped.len());
        let empty = store
            .data
            .iter()
            .filter(|e| lock(e.value()).live().is_none())
            .count();
        assert_eq!(store.tombstones.graves(), empty);
        assert_eq!(
            store.approximate_num_entries().unwrap(),
            (mapped.len() - empty) as u64
        );
    }
}
