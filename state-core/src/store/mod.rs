//! The synchronous byte store every backend implements.

mod batch;
mod capability;
mod position;
mod range;
mod supplier;

use crate::Result;

pub use batch::{WriteBatch, WriteOp};
pub use capability::{Capability, DEFAULT_RESTORE_BATCH};
pub use position::{Offset, Partition, Position};
pub use range::{KeyRange, prefix_successor};
pub use supplier::KeyValueBytesStoreSupplier;

/// A key and its value, both raw bytes.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An iterator over key-value pairs in key order (or reverse key order). An `Err` item
/// reports an engine failure mid-scan; the iterator ends after it.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KeyValue>> + 'a>;

/// A local key-value store over raw bytes, the trait every backend implements.
///
/// It is synchronous on purpose: every engine behind it (dashmap, RocksDB, redb) blocks,
/// and hiding a blocking call in an `async fn` stalls an executor. Keys compare as
/// unsigned bytes. Methods take `&self`; a backend synchronises internally, so one store
/// can be shared across threads (`Send + Sync`).
///
/// Besides data, a store keeps its **changelog position** (the last changelog offset it
/// has applied, per partition). A durable backend writes the position in the same atomic
/// unit as the data ([`write_with_position`](Self::write_with_position)), so after any
/// crash data and position agree and restore resumes exactly after the position.
///
/// Every `# Behavior` bullet below has a conformance test of the same name in the
/// `conformance-tests` crate.
pub trait KeyValueStore: Send + Sync {
    /// The store's name (Kafka Streams' store name, e.g. `"rewards"`).
    fn name(&self) -> &str;

    /// What the backend can do.
    fn capability(&self) -> Capability;

    /// Reads the value of `key`.
    ///
    /// # Behavior
    /// - `get_missing_returns_none`: an absent key yields `Ok(None)`.
    /// - `get_returns_last_put`: yields the value of the latest put or batch put.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Sets `key` to `value`, replacing any previous value.
    ///
    /// # Behavior
    /// - `put_overwrites`: a second put to a key replaces the first.
    /// - `empty_key_and_value_are_valid`: empty byte strings are ordinary keys and values.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Sets `key` to `value` only if `key` is absent; returns the existing value otherwise.
    ///
    /// # Behavior
    /// - `put_if_absent_keeps_existing`: a present key keeps its value, which is returned.
    /// - `put_if_absent_inserts_missing`: an absent key is set and `None` returned.
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Removes `key` and returns the value it had.
    ///
    /// # Behavior
    /// - `delete_returns_old_value`: yields the removed value, then the key is absent.
    /// - `delete_missing_is_noop`: deleting an absent key yields `None` and changes nothing.
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies a batch of puts and deletes atomically, in order.
    ///
    /// # Behavior
    /// - `write_batch_applies_in_order`: for a key written twice the later op wins.
    /// - `write_batch_is_atomic`: readers never see part of a batch.
    fn write(&self, batch: &WriteBatch) -> Result<()>;

    /// Applies `batch` and sets the changelog position in one atomic step: after a crash
    /// either both are visible or neither is. Partitions absent from `position` keep their
    /// stored offsets.
    ///
    /// # Behavior
    /// - `position_starts_empty`: a new store has an empty position.
    /// - `write_with_position_sets_both`: data and position are updated together.
    /// - `position_survives_reopen` (durable backends): reopening returns the position.
    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()>;

    /// The changelog position the store has applied.
    fn position(&self) -> Result<Position>;

    /// Key-ordered entries inside `range`.
    ///
    /// # Behavior
    /// - `range_is_ordered_and_bounded`: ascending unsigned-byte order, honouring
    ///   inclusive, exclusive and unbounded ends.
    /// - `inverted_range_is_empty`: `from > to` yields nothing (as in Kafka Streams).
    /// - `range_excludes_position_metadata`: the position is never returned as data.
    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>>;

    /// Like [`range`](Self::range), in descending key order.
    ///
    /// # Behavior
    /// - `reverse_range_is_descending`: same entries as `range`, reversed.
    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>>;

    /// Entries whose key starts with `prefix`, in key order.
    ///
    /// # Behavior
    /// - `prefix_scan_returns_only_prefixed_keys`: including prefixes ending in `0xFF`.
    fn prefix_scan(&self, prefix: &[u8]) -> Result<KvIter<'_>> {
        self.range(&KeyRange::prefix(prefix))
    }

    /// Every entry in key order.
    ///
    /// # Behavior
    /// - `all_returns_every_entry_in_order`.
    fn all(&self) -> Result<KvIter<'_>> {
        self.range(&KeyRange::all())
    }

    /// An estimate of the number of entries: exact when the backend's
    /// [`Capability::exact_count`] says so, else the engine's own estimate (cheap, may
    /// lag deletes and overwrites).
    ///
    /// # Behavior
    /// - `approximate_num_entries_counts`: exact where `exact_count`, else within a
    ///   factor of two of the truth.
    fn approximate_num_entries(&self) -> Result<u64>;

    /// Makes every write so far durable (a no-op for non-durable backends).
    ///
    /// # Behavior
    /// - `flush_then_reopen_keeps_data` (durable backends).
    fn flush(&self) -> Result<()>;

    /// Removes every entry and the position, leaving an empty store (used when the
    /// changelog no longer matches the store and restore must start over).
    ///
    /// # Behavior
    /// - `wipe_clears_data_and_position`.
    fn wipe(&self) -> Result<()>;

    /// Tells the backend a bulk restore starts (`true`) or ended (`false`), so it can trade
    /// per-batch durability for speed (like Kafka Streams' RocksDB bulk-loading mode). The
    /// position stays atomic with the data either way; the end call makes everything
    /// durable.
    fn set_bulk_loading(&self, bulk_loading: bool) -> Result<()> {
        let _ = bulk_loading;
        Ok(())
    }

    /// Writes a consistent copy of the store's committed data and the position
    /// committed with it into the new directory `dir` (which must not exist), while the
    /// store keeps serving, and describes it. Opening `dir` with
    /// [`KeyValueBytesStoreSupplier::open_checkpoint`] gives a store holding exactly that
    /// data at exactly that position: what a snapshot uploads
    /// ([`crate::snapshot`]). Writes that are not committed yet are not in it: those the
    /// logging layer buffers never reach the store before their commit, and a store
    /// written directly (`put`, `put_if_absent`, `delete`, `write`) since its last
    /// [`write_with_position`](Self::write_with_position) holds data its position does
    /// not cover, so it refuses with [`Unavailable`](crate::ErrorKind::Unavailable) until
    /// the next commit.
    ///
    /// The default, for backends without [`Capability::snapshots`], is an
    /// [`Unsupported`](crate::ErrorKind::Unsupported) error.
    ///
    /// # Behavior
    /// Backends with `snapshots`:
    /// - `checkpoint_opens_to_the_same_data_and_position`: writes the logging layer holds
    ///   uncommitted, and commits made after the checkpoint, are not in it.
    /// - `checkpoint_refuses_writes_made_outside_a_commit`: `Unavailable`, nothing
    ///   created; the next commit makes it possible again.
    /// - `checkpoint_into_an_existing_directory_is_refused`: empty or not, as
    ///   [`InvalidInput`](crate::ErrorKind::InvalidInput), the directory left as it was.
    /// - `checkpoint_is_consistent_while_commits_run`: each checkpoint holds exactly one
    ///   commit, no older than the last one that returned before it began.
    fn checkpoint(&self, dir: &std::path::Path) -> Result<crate::Checkpoint> {
        Err(crate::Error::unsupported(format!(
            "the {} backend takes no checkpoints (asked for one in {})",
            self.capability().backend,
            dir.display()
        )))
    }

    /// Begins a [`checkpoint`](Self::checkpoint) into the new directory `dir`: decides
    /// now what it holds (the same committed data and position `checkpoint` would) and
    /// leaves writing its files, where the backend can, to
    /// [`PendingCheckpoint::finish`](crate::PendingCheckpoint::finish), so a caller on
    /// the commit path (the store manager's snapshots) holds the store only for the part
    /// that needs it. Commits made after this returns are not in the checkpoint, however
    /// late it is finished.
    ///
    /// The default writes the whole checkpoint here, as `checkpoint` does.
    ///
    /// # Behavior
    /// Backends with `snapshots`:
    /// - `begun_checkpoint_holds_the_commit_it_began_at`: commits between the beginning and
    ///   the finish are not in it.
    /// - `close_ends_begun_checkpoints`: closing the store with begun checkpoints
    ///   unfinished really closes it (its directory opens again at once); each one
    ///   finished later holds the commit it began at or fails as
    ///   [`Closed`](crate::ErrorKind::Closed) leaving nothing, and one dropped leaves
    ///   nothing.
    fn begin_checkpoint(&self, dir: &std::path::Path) -> Result<crate::PendingCheckpoint> {
        self.checkpoint(dir).map(crate::PendingCheckpoint::ready)
    }

    /// Flushes and releases what can be released before drop.
    fn close(&self) -> Result<()> {
        self.flush()
    }
}
