//! Opening stores by location, the shape Kafka Streams' `KeyValueBytesStoreSupplier` has.

use std::path::Path;
use std::sync::Arc;

use super::KeyValueStore;
use crate::Result;

/// Opens one backend's stores. One supplier serves every partition of a store name: the
/// caller hands it the directory that belongs to one (store, partition).
pub trait KeyValueBytesStoreSupplier: Send + Sync {
    /// The store name every opened store reports.
    fn name(&self) -> &str;

    /// The backend name, as in [`Capability::backend`](crate::Capability::backend).
    fn backend(&self) -> &'static str;

    /// Whether stores opened by this supplier keep data across reopen.
    fn durable(&self) -> bool;

    /// Opens (creating if needed) the store kept under `dir`. Non-durable backends ignore
    /// `dir` and return an empty store.
    ///
    /// A damaged or foreign directory yields an [`ErrorKind::Corruption`] or
    /// [`ErrorKind::InvalidInput`] error naming the path; the caller may then
    /// [`destroy`](Self::destroy) it and restore from the changelog.
    ///
    /// [`ErrorKind::Corruption`]: crate::ErrorKind::Corruption
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>>;

    /// Deletes everything this backend keeps under `dir` (a no-op when nothing is there).
    fn destroy(&self, dir: &Path) -> Result<()>;
}

impl<S: KeyValueBytesStoreSupplier + ?Sized> KeyValueBytesStoreSupplier for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn durable(&self) -> bool {
        (**self).durable()
    }
    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        (**self).open(dir)
    }
    fn destroy(&self, dir: &Path) -> Result<()> {
        (**self).destroy(dir)
    }
}
