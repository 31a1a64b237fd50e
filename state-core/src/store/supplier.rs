//! Opening stores by location, the shape Kafka Streams' `KeyValueBytesStoreSupplier` has.

use std::path::Path;
use std::sync::Arc;

use super::{Capability, KeyValueStore};
use crate::Result;

/// Opens one backend's stores. One supplier serves every partition of a store name: the
/// caller hands it the directory that belongs to one (store, partition).
pub trait KeyValueBytesStoreSupplier: Send + Sync {
    /// The store name every opened store reports.
    fn name(&self) -> &str;

    /// What the stores this supplier opens can do: the same [`Capability`] they report,
    /// known without opening one.
    fn capability(&self) -> Capability;

    /// The backend name, [`Capability::backend`]. Derived from
    /// [`capability`](Self::capability); not meant to be overridden.
    fn backend(&self) -> &'static str {
        self.capability().backend
    }

    /// Whether stores opened by this supplier keep data across reopen,
    /// [`Capability::durable`]. Derived from [`capability`](Self::capability); not meant
    /// to be overridden.
    fn durable(&self) -> bool {
        self.capability().durable
    }

    /// Opens (creating if needed) the store kept under `dir`. Non-durable backends ignore
    /// `dir` and return an empty store.
    ///
    /// A store is created only where nothing is: a missing or empty directory. Errors
    /// name the path:
    /// - [`ErrorKind::Corruption`]: this backend's own store, damaged. Only then may the
    ///   caller [`destroy`](Self::destroy) it and restore from the changelog
    ///   ([`open_or_rebuild`](crate::open_or_rebuild) does).
    /// - [`ErrorKind::Foreign`]: something this backend did not write (another backend's
    ///   store, unknown files, an empty file where the database should be); the message
    ///   says what was found. Never destroy it on your own.
    /// - [`ErrorKind::InvalidInput`]: a store of another statestore version, or a file
    ///   where the directory should be.
    /// - [`ErrorKind::Unavailable`]: another handle or process has the store open.
    ///
    /// [`ErrorKind::Corruption`]: crate::ErrorKind::Corruption
    /// [`ErrorKind::Foreign`]: crate::ErrorKind::Foreign
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    /// [`ErrorKind::Unavailable`]: crate::ErrorKind::Unavailable
    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>>;

    /// Opens the existing store under `dir` for reading only, for tools that look at a
    /// store without owning it (`statestore inspect`, `verify`).
    ///
    /// It never creates, repairs or changes anything on disk (not a byte, not a lock
    /// file), works on a read-only directory, and any number of read-only opens may run
    /// at once. Writes through the returned store fail with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported). Errors name the path:
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) when no store is there (a
    /// missing or empty directory), [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable)
    /// when a writer holds the store, and otherwise the kinds of [`open`](Self::open).
    ///
    /// The default, for backends that keep nothing on disk, is an `Unsupported` error.
    fn open_read_only(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Err(crate::Error::unsupported(format!(
            "the {} backend keeps no store on disk to open read-only at {}",
            self.backend(),
            dir.display()
        )))
    }

    /// Whether `dir` holds a store of this backend, intact or damaged: what
    /// [`open`](Self::open) would not call foreign. Reads only; `false` when unsure.
    /// Tools use it to say which backend a refused store belongs to.
    fn owns(&self, _dir: &Path) -> bool {
        false
    }

    /// Deletes everything this backend keeps under `dir` (a no-op when nothing is there).
    fn destroy(&self, dir: &Path) -> Result<()>;

    /// Opens the store that lives in `dir` from the files of a checkpoint in the directory
    /// `checkpoint` (one a [`KeyValueStore::checkpoint`] wrote, downloaded from a
    /// snapshot). `dir` holds nothing of this backend ([`destroy`](Self::destroy)ed
    /// first); the call takes `checkpoint` (a durable backend moves it into place, the
    /// memory store loads it), so it is gone when this returns `Ok`. The store reports the
    /// checkpoint's position. Files this backend did not write are refused as
    /// [`Foreign`](crate::ErrorKind::Foreign), damaged ones as
    /// [`Corruption`](crate::ErrorKind::Corruption), never opened.
    ///
    /// The default, for backends without [`Capability::snapshots`], is an
    /// [`Unsupported`](crate::ErrorKind::Unsupported) error.
    ///
    /// # Behavior
    /// Backends with `snapshots` (the tests are in the conformance suite's behaviour
    /// group):
    /// - `checkpoint_opens_to_the_same_data_and_position`: and `checkpoint` is gone.
    /// - `damaged_checkpoint_is_refused`: files cut short or garbled are `Corruption`
    ///   naming the checkpoint; it keeps every byte and `dir` gains nothing.
    /// - `foreign_checkpoint_is_refused`: another backend's checkpoint, or unknown files,
    ///   are `Foreign` naming the directory; nothing changes.
    fn open_checkpoint(&self, checkpoint: &Path, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        Err(crate::Error::unsupported(format!(
            "the {} backend opens no checkpoints (asked to open {} into {})",
            self.backend(),
            checkpoint.display(),
            dir.display()
        )))
    }
}

impl<S: KeyValueBytesStoreSupplier + ?Sized> KeyValueBytesStoreSupplier for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capability(&self) -> Capability {
        (**self).capability()
    }
    fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        (**self).open(dir)
    }
    fn open_read_only(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        (**self).open_read_only(dir)
    }
    fn owns(&self, dir: &Path) -> bool {
        (**self).owns(dir)
    }
    fn destroy(&self, dir: &Path) -> Result<()> {
        (**self).destroy(dir)
    }
    fn open_checkpoint(&self, checkpoint: &Path, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
        (**self).open_checkpoint(checkpoint, dir)
    }
}
