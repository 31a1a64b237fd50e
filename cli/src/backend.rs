//! Choosing a store backend (`--backend`) and locating a store on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use state_core::{
    Capability, Error, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Partition, Result,
    StoreContext,
};
use statestore::Stores;

use crate::{errors, exit};

/// The backend names `--backend` accepts.
pub const NAMES: [&str; 3] = ["memory", "rocksdb", "redb"];

/// A store backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// dashmap, nothing on disk.
    Memory,
    /// RocksDB.
    RocksDb,
    /// redb.
    Redb,
}

impl Backend {
    /// Every backend, in the order of [`NAMES`].
    pub const ALL: [Backend; 3] = [Self::Memory, Self::RocksDb, Self::Redb];

    /// The backend commands use when `--backend` is not given: RocksDB (Kafka Streams'
    /// default) when this binary has it, redb (persistent, pure Rust) otherwise.
    pub const DEFAULT: Self = if cfg!(feature = "rocksdb") {
        Self::RocksDb
    } else {
        Self::Redb
    };

    /// Parses one of [`NAMES`]; RocksDB only when this binary was built with it.
    pub fn parse(name: &str) -> Result<Self> {
        let backend = Self::ALL
            .into_iter()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown backend {name}; expected one of {}",
                    NAMES.join(", ")
                ))
            })?;
        if backend == Self::RocksDb && !cfg!(feature = "rocksdb") {
            return Err(rocksdb_not_built());
        }
        Ok(backend)
    }

    /// The name `--backend` uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::RocksDb => "rocksdb",
            Self::Redb => "redb",
        }
    }

    /// A supplier of this backend for store `store`. When it refuses a directory as
    /// foreign, its error says which backend's store is there.
    pub fn supplier(self, store: &str) -> Result<Arc<dyn KeyValueBytesStoreSupplier>> {
        Ok(Arc::new(Hinting {
            inner: self.engine(store)?,
            backend: self,
            store: store.to_owned(),
        }))
    }

    fn engine(self, store: &str) -> Result<Arc<dyn KeyValueBytesStoreSupplier>> {
        Ok(match self {
            Self::Memory => Arc::new(Stores::in_memory_key_value_store(store)),
            Self::Redb => Arc::new(Stores::redb_key_value_store(store)),
            #[cfg(feature = "rocksdb")]
            Self::RocksDb => Arc::new(Stores::persistent_key_value_store(store)),
            #[cfg(not(feature = "rocksdb"))]
            Self::RocksDb => return Err(rocksdb_not_built()),
        })
    }
}

/// A supplier whose `Foreign` errors name the backend that owns the directory, so a
/// wrong `--backend` is answered with the right one.
struct Hinting {
    inner: Arc<dyn KeyValueBytesStoreSupplier>,
    backend: Backend,
    store: String,
}

impl Hinting {
    fn hint(&self, err: Error, dir: &Path) -> Error {
        if err.kind() != ErrorKind::Foreign {
            return err;
        }
        // A backend this binary lacks cannot tell its own stores.
        let owner = Backend::ALL.into_iter().find(|other| {
            *other != self.backend
                && other
                    .engine(&self.store)
                    .is_ok_and(|engine| engine.owns(dir))
        });
        match owner {
            Some(owner) => Error::foreign(format!(
                "{}; it is a {} store: use --backend {}",
                err.message(),
                owner.name(),
                owner.name()
            )),
            None => err,
        }
    }
}

impl KeyValueBytesStoreSupplier for Hinting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        exit::while_opening(|| self.inner.open(dir)).map_err(|err| self.hint(err, dir))
    }

    fn open_read_only(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        exit::while_opening(|| self.inner.open_read_only(dir)).map_err(|err| self.hint(err, dir))
    }

    fn owns(&self, dir: &Path) -> bool {
        self.inner.owns(dir)
    }

    fn destroy(&self, dir: &Path) -> Result<()> {
        self.inner.destroy(dir)
    }
}

/// Where a store lives: `<state_dir>/<application_id>/<partition>/<store>`, as the
/// store builder lays it out.
#[derive(Debug, Clone)]
pub struct Location {
    /// The root state directory.
    pub state_dir: PathBuf,
    /// The backend the store was written with.
    pub backend: Backend,
    /// The store name.
    pub store: String,
    /// The application id.
    pub application_id: String,
}

impl Location {
    /// The directory of `partition`'s store.
    pub fn store_dir(&self, partition: Partition) -> Result<PathBuf> {
        StoreContext::new(&self.application_id, partition, 1, &self.state_dir)?
            .store_dir(&self.store)
    }

    /// Opens an existing store read-only: nothing is created or changed on disk.
    pub fn open_read_only(&self, partition: Partition) -> Result<Arc<dyn KeyValueStore>> {
        if self.backend == Backend::Memory {
            return Err(Error::unsupported(
                "the memory backend keeps nothing on disk; use --backend rocksdb or redb",
            ));
        }
        errors::require_dir(&self.state_dir, "state directory")?;
        let dir = self.store_dir(partition)?;
        self.backend
            .supplier(&self.store)?
            .open_read_only(&dir)
            .map_err(|err| {
                if err.kind() != ErrorKind::NotFound {
                    return err;
                }
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no {} store {} of application {} partition {partition} in state \
                         directory {}",
                        self.backend.name(),
                        self.store,
                        self.application_id,
                        self.state_dir.display(),
                    ),
                )
                .with_source(err)
            })
    }
}

/// Asked for RocksDB in a binary built without it: say which feature brings it.
fn rocksdb_not_built() -> Error {
    Error::unsupported(
        "this statestore binary was built without RocksDB, an opt-in cargo feature (its C++ \
         takes ~25 minutes to compile and needs libclang): rebuild with \
         `cargo run -p statestore-cli --features rocksdb -- ...`, or use --backend redb or \
         --backend memory",
    )
}
