//! How the suite opens stores: one factory per backend, one temp directory per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use state_core::{KeyValueBytesStoreSupplier, KeyValueStore};
use tempfile::TempDir;

/// A backend under test. Implement this (a few lines) to run the whole suite against a
/// new backend; see the crate README.
pub trait BackendFactory: Send + Sync {
    /// A short name used in test names and messages.
    fn name(&self) -> &'static str;

    /// A supplier for a store called `store_name`.
    fn supplier(&self, store_name: &str) -> Arc<dyn KeyValueBytesStoreSupplier>;
}

/// A supplier-based factory from a name and a constructor, for one-line backends.
pub struct SupplierFactory<F> {
    name: &'static str,
    make: F,
}

impl<F> SupplierFactory<F>
where
    F: Fn(&str) -> Arc<dyn KeyValueBytesStoreSupplier> + Send + Sync,
{
    /// A factory called `name` whose suppliers come from `make`.
    pub fn new(name: &'static str, make: F) -> Self {
        Self { name, make }
    }
}

impl<F> BackendFactory for SupplierFactory<F>
where
    F: Fn(&str) -> Arc<dyn KeyValueBytesStoreSupplier> + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn supplier(&self, store_name: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
        (self.make)(store_name)
    }
}

/// A store location owned by one test: a fresh temp directory dropped after the store.
pub struct Fixture {
    supplier: Arc<dyn KeyValueBytesStoreSupplier>,
    // Declared after anything holding files in it would be; kept alive for the test.
    dir: TempDir,
}

impl Fixture {
    /// A fresh directory for a store of `backend` called `store_name`.
    pub fn new(backend: &dyn BackendFactory, store_name: &str) -> Self {
        Self {
            supplier: backend.supplier(store_name),
            dir: tempfile::Builder::new()
                .prefix(&format!("statestore-{}-", backend.name()))
                .tempdir()
                .unwrap_or_else(|err| panic!("cannot create a temp dir: {err}")),
        }
    }

    /// The store directory (inside the temp directory, so it starts absent).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The temp directory root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The supplier.
    pub fn supplier(&self) -> &Arc<dyn KeyValueBytesStoreSupplier> {
        &self.supplier
    }

    /// Opens (or reopens) the store.
    pub fn open(&self) -> Arc<dyn KeyValueStore> {
        self.supplier
            .open(&self.store_dir())
            .unwrap_or_else(|err| panic!("opening {} failed: {err}", self.store_dir().display()))
    }
}

/// Every entry of `store`, collected.
pub fn contents(store: &dyn KeyValueStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .all()
        .and_then(|iter| iter.collect())
        .unwrap_or_else(|err| panic!("scanning store {} failed: {err}", store.name()))
}

/// Runs an async test step to completion on the suite's shared Tokio runtime (the Kafka
/// changelog needs one; the in-process one runs on any executor).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|err| panic!("cannot start a Tokio runtime: {err}"))
        })
        .block_on(future)
}

/// Every visible record of `partition`, from the log start up to the end offset captured
/// first, applied to an empty map: the replay half of the guarantee, independent of the
/// restore driver.
pub fn replay(
    reader: &dyn state_core::ChangelogReader,
    partition: state_core::Partition,
) -> state_core::Result<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> {
    block_on(async {
        let offsets = reader.offsets(partition).await?;
        let mut cursor = reader.open(partition, offsets.start).await?;
        let mut map = std::collections::BTreeMap::new();
        while cursor.position() < offsets.end {
            for consumed in cursor.next_batch(100).await? {
                if consumed.offset >= offsets.end {
                    break;
                }
                match consumed.record.value {
                    Some(value) => map.insert(consumed.record.key, value),
                    None => map.remove(&consumed.record.key),
                };
            }
        }
        Ok(map)
    })
}

/// The seed of a randomised test: `STATESTORE_SEED` when set, else the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("STATESTORE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        })
}
