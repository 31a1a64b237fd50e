//! What a backend can do, reported as data.

/// The abilities of a [`KeyValueStore`](crate::KeyValueStore) backend: the one place
/// facts about a backend are kept. The conformance suite, the restore driver and tools
/// read these instead of probing for optional traits or testing the backend's name.
///
/// A backend reports the same value from its store, its supplier and its
/// [`Backend`](crate::Backend) registration, so the facts are known before a store is
/// opened. The registration states the facts of the backend's default configuration; a
/// supplier configured otherwise (and the stores it opens) reports those of its own
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capability {
    /// A short backend name for logs and test names (`"memory"`, `"rocksdb"`, `"redb"`).
    pub backend: &'static str,
    /// Data and position survive a process restart: reopening the same location returns
    /// them, so restore only replays the changelog tail. A non-durable store always
    /// starts empty and restores from the beginning of the changelog.
    pub durable: bool,
    /// A commit that has returned
    /// ([`write_with_position`](crate::KeyValueStore::write_with_position) outside a bulk
    /// load) survives a crash of the process (SIGKILL, abort) without replay: reopening
    /// the store finds the data and the position of the last commit. When `false`, a
    /// crash may take the store back to an earlier commit, data and position together,
    /// and restore replays the difference from the changelog. redb's `Immediate` commits
    /// (its default) survive; RocksDB with its write-ahead log off (Kafka Streams'
    /// default, and ours) loses what its memtables held since their last flush. Never
    /// `true` for a store that is not [`durable`](Self::durable).
    pub commits_survive_crash: bool,
    /// A [read-only open](crate::KeyValueBytesStoreSupplier::open_read_only) refused
    /// because another process holds the store for writing names that process's id
    /// (where the system reports lock owners). When `false` the error says only that a
    /// writer holds the store.
    pub names_writer: bool,
    /// Scans are served by an ordered index and cost O(log n + k). When `false`, scans are
    /// still returned in key order but cost a pass over every entry plus a sort of the
    /// matches.
    pub ordered_index: bool,
    /// [`approximate_num_entries`](crate::KeyValueStore::approximate_num_entries) is
    /// the exact number of live entries. When `false` it is the engine's cheap estimate,
    /// which may lag deletes and overwrites (RocksDB's `estimate-num-keys`).
    pub exact_count: bool,
    /// Records per store write that restore uses unless told otherwise: the batch size
    /// the engine applies fastest (`BENCHMARKS.md` has the measurements behind each
    /// backend's figure).
    pub restore_batch: usize,
    /// The store takes consistent copies of itself while serving
    /// ([`checkpoint`](crate::KeyValueStore::checkpoint)) and opens them
    /// ([`open_checkpoint`](crate::KeyValueBytesStoreSupplier::open_checkpoint)), so it
    /// can be [snapshotted](crate::snapshot) and relocated without a full replay.
    /// `snapshot_format` is the version of those files: a snapshot of another format is
    /// refused, never opened.
    pub snapshots: bool,
    /// The version of the checkpoint files' format, written into every snapshot
    /// manifest; meaningful when [`snapshots`](Self::snapshots) is set.
    pub snapshot_format: u32,
}

/// [`Capability::restore_batch`] of a backend that does not set its own: Kafka Streams'
/// `max.poll.records`.
pub const DEFAULT_RESTORE_BATCH: usize = 1000;

impl Capability {
    /// A capability with every flag off, for `backend`.
    pub const fn new(backend: &'static str) -> Self {
        Self {
            backend,
            durable: false,
            commits_survive_crash: false,
            names_writer: false,
            ordered_index: false,
            exact_count: false,
            restore_batch: DEFAULT_RESTORE_BATCH,
            snapshots: false,
            snapshot_format: 0,
        }
    }

    /// Sets [`Capability::durable`].
    pub const fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Sets [`Capability::commits_survive_crash`].
    pub const fn commits_survive_crash(mut self, survive: bool) -> Self {
        self.commits_survive_crash = survive;
        self
    }

    /// Sets [`Capability::names_writer`].
    pub const fn names_writer(mut self, names_writer: bool) -> Self {
        self.names_writer = names_writer;
        self
    }

    /// Sets [`Capability::ordered_index`].
    pub const fn ordered_index(mut self, ordered_index: bool) -> Self {
        self.ordered_index = ordered_index;
        self
    }

    /// Sets [`Capability::exact_count`].
    pub const fn exact_count(mut self, exact_count: bool) -> Self {
        self.exact_count = exact_count;
        self
    }

    /// Sets [`Capability::snapshots`] and [`Capability::snapshot_format`].
    pub const fn snapshots(mut self, format: u32) -> Self {
        self.snapshots = true;
        self.snapshot_format = format;
        self
    }

    /// Sets [`Capability::restore_batch`].
    pub const fn restore_batch(mut self, records: usize) -> Self {
        self.restore_batch = records;
        self
    }
}
