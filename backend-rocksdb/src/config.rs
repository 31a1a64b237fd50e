//! Tuning of the RocksDB stores, with Kafka Streams' defaults.

use std::fmt;
use std::path::Path;

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager};
use state_core::{Capability, Error, Result};

const MIB: usize = 1024 * 1024;

/// Block compression of the data files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RocksDbCompression {
    /// No compression, Kafka Streams' default: state is small and hot, CPU matters more.
    #[default]
    None,
    /// LZ4: cheap, modest ratio.
    Lz4,
    /// Zstandard: better ratio, more CPU.
    Zstd,
}

impl RocksDbCompression {
    fn to_rocksdb(self) -> DBCompressionType {
        match self {
            RocksDbCompression::None => DBCompressionType::None,
            RocksDbCompression::Lz4 => DBCompressionType::Lz4,
            RocksDbCompression::Zstd => DBCompressionType::Zstd,
        }
    }
}

/// A block cache and a write buffer manager shared by many stores, so that the memory of
/// all of them stays under one budget (Kafka Streams' `BoundedMemoryRocksDBConfig`).
///
/// Create it once with the total budget and hand a clone to every store's
/// [`RocksDbConfig::with_shared_resources`]; clones share the same cache. The cache
/// (an LRU cache without a strict capacity limit) is charged with data blocks, index and
/// filter blocks (cached with high priority, level-0 ones pinned) and, through the write
/// buffer manager, memtables; so its capacity bounds all three however many stores
/// (partitions) are open. Pinned entries can push it slightly past the capacity, and
/// per-database overhead lies outside it: `backend-rocksdb/MEMORY.md` gives the formula,
/// what lies outside, and how to choose the numbers.
#[derive(Clone)]
pub struct SharedRocksDbResources {
    cache: Cache,
    write_buffer_manager: WriteBufferManager,
    total_memory: usize,
    memtable_memory: usize,
}

impl SharedRocksDbResources {
    /// A shared budget of `total_memory` bytes, of which about `memtable_memory` bytes may
    /// hold unflushed writes (memtables).
    ///
    /// The memtable budget is a flush trigger, not a hard cap: once it is reached, a write
    /// flushes the store it writes to, while memtables being flushed still count and an
    /// idle store keeps its partly filled memtable. Keep the per-store write buffer size at
    /// or below `memtable_memory` divided by the number of stores open at once.
    ///
    /// Fails with `InvalidInput` when `total_memory` is zero or `memtable_memory` is zero
    /// or larger than `total_memory`.
    pub fn new(total_memory: usize, memtable_memory: usize) -> Result<Self> {
        if total_memory == 0 || memtable_memory == 0 || memtable_memory > total_memory {
            return Err(Error::invalid_input(format!(
                "rocksdb shared resources: need 0 < memtable_memory ({memtable_memory}) \
                 <= total_memory ({total_memory})"
            )));
        }
        let cache = Cache::new_lru_cache(total_memory);
        let write_buffer_manager = WriteBufferManager::new_write_buffer_manager_with_cache(
            memtable_memory,
            false,
            cache.clone(),
        );
        Ok(Self {
            cache,
            write_buffer_manager,
            total_memory,
            memtable_memory,
        })
    }

    /// The total budget in bytes (the shared cache capacity).
    pub fn total_memory(&self) -> usize {
        self.total_memory
    }

    /// The part of the budget memtables may use, in bytes.
    pub fn memtable_memory(&self) -> usize {
        self.memtable_memory
    }

    /// Bytes the shared cache holds now: data, index and filter blocks, and memtable
    /// reservations (whole 256 KiB units, released with a delay).
    pub fn cache_usage(&self) -> usize {
        self.cache.get_usage()
    }

    /// Bytes of memtables now accounted by the shared write buffer manager.
    pub fn memtable_usage(&self) -> usize {
        self.write_buffer_manager.get_usage()
    }
}

impl fmt::Debug for SharedRocksDbResources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRocksDbResources")
            .field("total_memory", &self.total_memory)
            .field("memtable_memory", &self.memtable_memory)
            .finish_non_exhaustive()
    }
}

/// How a [`RocksDbStore`](crate::RocksDbStore) tunes RocksDB. The defaults are Kafka
/// Streams' (`RocksDBStore`): WAL off, 16 MiB write buffers, 3 of them, a 50 MiB block
/// cache, 4 KiB blocks, no compression.
///
/// ## WAL off by default
/// With the write-ahead log off, a crash loses the writes still in memtables. That is
/// safe here because the changelog position lives in the same RocksDB `WriteBatch` as the
/// data and column families flush atomically: data and position are lost *together*, the
/// store reopens at an older but consistent position, and restore replays the lost tail
/// from the changelog. Turning the WAL on shortens that replay at the cost of writing
/// every change twice.
#[derive(Debug, Clone)]
pub struct RocksDbConfig {
    wal_enabled: bool,
    write_buffer_size: usize,
    max_write_buffer_number: u32,
    block_cache_size: usize,
    block_size: usize,
    compression: RocksDbCompression,
    shared: Option<SharedRocksDbResources>,
}

impl Default for RocksDbConfig {
    fn default() -> Self {
        Self {
            wal_enabled: false,
            write_buffer_size: 16 * MIB,
            max_write_buffer_number: 3,
            block_cache_size: 50 * MIB,
            block_size: 4 * 1024,
            compression: RocksDbCompression::None,
            shared: None,
        }
    }
}

impl RocksDbConfig {
    /// The Kafka Streams defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns the write-ahead log on or off (default off; see the type docs).
    pub fn with_wal_enabled(mut self, enabled: bool) -> Self {
        self.wal_enabled = enabled;
        self
    }

    /// Sets the size of one memtable in bytes (default 16 MiB). With
    /// [shared resources](Self::with_shared_resources), keep it at or below their memtable
    /// budget divided by the number of stores open at once (see `MEMORY.md`).
    pub fn with_write_buffer_size(mut self, bytes: usize) -> Self {
        self.write_buffer_size = bytes;
        self
    }

    /// Sets how many memtables may exist per column family (default 3).
    pub fn with_max_write_buffer_number(mut self, count: u32) -> Self {
        self.max_write_buffer_number = count;
        self
    }

    /// Sets the per-store block cache size in bytes (default 50 MiB); ignored when
    /// [shared resources](Self::with_shared_resources) are set.
    pub fn with_block_cache_size(mut self, bytes: usize) -> Self {
        self.block_cache_size = bytes;
        self
    }

    /// Sets the data block size in bytes (default 4 KiB).
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// Sets the block compression (default none).
    pub fn with_compression(mut self, compression: RocksDbCompression) -> Self {
        self.compression = compression;
        self
    }

    /// Makes stores use a shared cache and write buffer manager so their total memory
    /// stays bounded (see [`SharedRocksDbResources`]).
    pub fn with_shared_resources(mut self, shared: SharedRocksDbResources) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Whether the write-ahead log is on.
    pub fn wal_enabled(&self) -> bool {
        self.wal_enabled
    }

    /// The memtable size in bytes.
    pub fn write_buffer_size(&self) -> usize {
        self.write_buffer_size
    }

    /// The number of memtables per column family.
    pub fn max_write_buffer_number(&self) -> u32 {
        self.max_write_buffer_number
    }

    /// The per-store block cache size in bytes.
    pub fn block_cache_size(&self) -> usize {
        self.block_cache_size
    }

    /// The data block size in bytes.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// The block compression.
    pub fn compression(&self) -> RocksDbCompression {
        self.compression
    }

    /// The shared resources, if any.
    pub fn shared_resources(&self) -> Option<&SharedRocksDbResources> {
        self.shared.as_ref()
    }

    /// What stores opened with this configuration can do: the backend's
    /// [`CAPABILITY`](crate::CAPABILITY), whose commits survive a crash of the process
    /// only with the write-ahead log on (the log reaches the OS before a write returns).
    pub(crate) fn capability(&self) -> Capability {
        crate::CAPABILITY.commits_survive_crash(self.wal_enabled)
    }

    /// Builds the RocksDB options of one store at `path`, rejecting unusable values.
    pub(crate) fn to_options(&self, path: &Path) -> Result<Options> {
        let invalid = |what: &str| {
            Error::invalid_input(format!("rocksdb store at {}: {what}", path.display()))
        };
        if self.write_buffer_size == 0 {
            return Err(invalid("write_buffer_size must be positive"));
        }
        if self.block_size == 0 {
            return Err(invalid("block_size must be positive"));
        }
        let max_write_buffers = i32::try_from(self.max_write_buffer_number)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid("max_write_buffer_number must be between 1 and i32::MAX"))?;

        let mut table = BlockBasedOptions::default();
        table.set_block_size(self.block_size);
        table.set_bloom_filter(10.0, false);
        match &self.shared {
            Some(shared) => {
                table.set_block_cache(&shared.cache);
                // Index and filter blocks must count against the shared budget too, or
                // memory grows with the number of files; pinning L0 keeps lookups cheap.
                table.set_cache_index_and_filter_blocks(true);
                table.set_cache_index_and_filter_blocks_with_high_priority(true);
                table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            }
            None => table.set_block_cache(&Cache::new_lru_cache(self.block_cache_size)),
        }

        let mut options = Options::default();
        options.set_write_buffer_size(self.write_buffer_size);
        options.set_max_write_buffer_number(max_write_buffers);
        options.set_compression_type(self.compression.to_rocksdb());
        options.set_block_based_table_factory(&table);
        if let Some(shared) = &self.shared {
            options.set_write_buffer_manager(&shared.write_buffer_manager);
        }
        // Data and position sit in different column families; with the WAL off only an
        // atomic flush keeps one from reaching disk without the other.
        options.set_atomic_flush(true);
        Ok(options)
    }
}
