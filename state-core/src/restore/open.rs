//! Opening a store, rebuilding it when its local files are damaged.

use std::path::Path;
use std::sync::Arc;

use super::WipeReason;
use crate::{ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Result};

/// Opens the store under `dir`. When the backend reports its own store damaged
/// ([`ErrorKind::Corruption`]) the files are destroyed and an empty store is opened, to
/// be restored from the changelog; the reason is returned and logged. Any other error is
/// returned with `dir` untouched: above all [`ErrorKind::Foreign`] (another backend's
/// store, unknown files), which may be someone's data.
///
/// It takes no lock: another process may create or destroy the same store meanwhile
/// unless the caller holds the partition's [`PartitionLock`](crate::PartitionLock) (the
/// store builder, the store manager and `statestore restore` do).
///
/// [`ErrorKind::Foreign`]: crate::ErrorKind::Foreign
pub fn open_or_rebuild(
    supplier: &dyn KeyValueBytesStoreSupplier,
    dir: &Path,
) -> Result<(Arc<dyn KeyValueStore>, Option<WipeReason>)> {
    match supplier.open(dir) {
        Ok(store) => Ok((store, None)),
        Err(err) if err.kind() == ErrorKind::Corruption => {
            log::warn!(
                "store {} at {} is damaged, rebuilding it from the changelog: {err}",
                supplier.name(),
                dir.display()
            );
            supplier.destroy(dir)?;
            let store = supplier.open(dir)?;
            Ok((store, Some(WipeReason::CorruptLocalState(err.to_string()))))
        }
        Err(err) => Err(err),
    }
}
