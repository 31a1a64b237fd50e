//! Choosing a store backend (`--backend`) and locating a store on disk.
//!
//! Every fact about a backend comes from `statestore::backends()`: the names `--backend`
//! accepts, the default, whether a backend keeps a store on disk, and which backend owns
//! a directory. Nothing here names a backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use state_core::{
    Capability, Error, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Partition,
    PartitionLock, Result, StoreContext,
};

use crate::{errors, exit};

/// A store backend of this binary: one of `statestore::backends()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend(&'static statestore::Backend);

impl Backend {
    /// The names `--backend` accepts: every backend statestore knows, sorted. One this
    /// binary was built without is refused by [`parse`](Self::parse) with the feature
    /// that brings it.
    pub fn names() -> Vec<&'static str> {
        statestore::backends().names()
    }

    /// The backend commands use when `--backend` is not given: the first durable backend
    /// built in, in statestore's order of preference (RocksDB, Kafka Streams' default,
    /// when this binary has it; redb otherwise).
    pub fn preferred() -> Option<Self> {
        statestore::backends()
            .iter()
            .find(|backend| backend.capability().durable)
            .map(Self)
    }

    /// The backend called `name`. An unknown name lists the names there are; a backend
    /// this binary was built without says how to rebuild with it.
    pub fn parse(name: &str) -> Result<Self> {
        statestore::backends()
            .get(name)
            .map(Self)
            .map_err(|err| match err.kind() {
                // The registry names statestore's feature; say how to rebuild this binary.
                ErrorKind::Unsupported => not_built(name),
                _ => err,
            })
    }

    /// The name `--backend` uses.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// What the backend's stores can do.
    pub fn capability(self) -> Capability {
        self.0.capability()
    }

    /// A supplier of this backend for store `store`. When it refuses a directory as
    /// foreign, its error says which backend's store is there.
    pub fn supplier(self, store: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
        Arc::new(Hinting {
            inner: self.0.supplier(store),
            backend: self,
            store: store.to_owned(),
        })
    }

    /// The built-in backends that keep stores on disk, as `--backend` alternatives to a
    /// backend that does not: `rocksdb or redb`.
    pub fn on_disk_alternatives() -> String {
        statestore::backends()
            .iter()
            .filter(|backend| backend.capability().durable)
            .map(|backend| backend.name())
            .collect::<Vec<_>>()
            .join(" or ")
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
        let owner = statestore::backends()
            .owner_of(&self.store, dir)
            .map(Backend)
            .filter(|owner| *owner != self.backend);
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

    fn open_checkpoint(&self, checkpoint: &Path, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        exit::while_opening(|| self.inner.open_checkpoint(checkpoint, dir))
            .map_err(|err| self.hint(err, dir))
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

    /// The directory of `partition`'s stores, `<state_dir>/<application_id>/<partition>`,
    /// where its writer lock lives ([`PartitionLock`]).
    pub fn partition_dir(&self, partition: Partition) -> Result<PathBuf> {
        Ok(StoreContext::new(&self.application_id, partition, 1, &self.state_dir)?.partition_dir())
    }

    /// Takes `partition`'s writer lock for a command that creates, restores, writes or
    /// removes its store, held until the guard drops; `None` for a backend that keeps
    /// nothing on disk. Another process holding it is `Unavailable`, naming that process.
    pub fn lock(&self, partition: Partition) -> Result<Option<PartitionLock>> {
        if !self.backend.capability().durable {
            return Ok(None);
        }
        PartitionLock::acquire(&self.partition_dir(partition)?).map(Some)
    }

    /// Opens an existing store read-only: nothing is created or changed on disk. A
    /// process writing the partition (its lock held) is `Unavailable`, naming it.
    pub fn open_read_only(&self, partition: Partition) -> Result<Arc<dyn KeyValueStore>> {
        if !self.backend.capability().durable {
            return Err(Error::unsupported(format!(
                "the {} backend keeps nothing on disk; use --backend {}",
                self.backend.name(),
                Backend::on_disk_alternatives()
            )));
        }
        errors::require_dir(&self.state_dir, "state directory")?;
        let dir = self.store_dir(partition)?;
        PartitionLock::check(&self.partition_dir(partition)?)?;
        self.backend
            .supplier(&self.store)
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

/// Asked for a backend this binary was built without: say which feature brings it.
fn not_built(name: &str) -> Error {
    let built: Vec<_> = statestore::backends()
        .iter()
        .map(|backend| format!("--backend {}", backend.name()))
        .collect();
    Error::unsupported(format!(
        "this statestore binary was built without the {name} backend, an opt-in cargo \
         feature: rebuild with `cargo run -p statestore-cli --features {name} -- ...`, or use \
         {}",
        built.join(" or ")
    ))
}
