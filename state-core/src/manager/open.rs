//! Opening every store of a partition: for an assignment and for a standby alike.

use std::sync::Arc;

use super::StoreManager;
use crate::builder::Opened;
use crate::{Error, ErrorKind, KeyValueStore, StoreContext};

/// Why opening a partition's stores failed, and the stores opened before it did (for the
/// caller to close or keep).
pub(crate) type OpenFailure = (Error, Vec<Arc<dyn KeyValueStore>>);

impl StoreManager {
    /// Opens each store of `context`'s partition in registration order: a `kept` store
    /// (a standby's or a cancelled restore's, already open) where one has the store's
    /// name, the rest from their directories, rebuilding damaged files. On error, returns
    /// every store it holds (opened or kept) with it.
    pub(crate) fn open_stores(
        &self,
        context: &StoreContext,
        kept: Vec<Arc<dyn KeyValueStore>>,
    ) -> Result<Vec<Opened>, OpenFailure> {
        // By name, not by position: a cancelled restore hands back its stores without
        // the one it was catching up, and a kept store taken for another's place would
        // serve the wrong data and leave its own files locked by this very process.
        let mut kept = kept;
        let mut opened: Vec<Opened> = Vec::with_capacity(self.stores.len());
        for registered in &self.stores {
            let name = registered.recipe.name();
            let store = match kept.iter().position(|store| store.name() == name) {
                Some(index) => Ok((kept.swap_remove(index), None)),
                None => registered.recipe.open(context),
            };
            match store {
                Ok(store) => opened.push(store),
                Err(err) => {
                    let mut held: Vec<_> = opened.into_iter().map(|(s, _)| s).collect();
                    held.append(&mut kept);
                    return Err((err, held));
                }
            }
        }
        if !kept.is_empty() {
            let names: Vec<&str> = kept.iter().map(|store| store.name()).collect();
            let err = Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "partition {}: kept stores {names:?} are not registered with this manager",
                    context.partition()
                ),
            );
            kept.extend(opened.into_iter().map(|(s, _)| s));
            return Err((err, kept));
        }
        Ok(opened)
    }
}
