//! Opening every store of a partition: for an assignment and for a standby alike.

use std::sync::Arc;

use super::StoreManager;
use crate::builder::Opened;
use crate::{Error, KeyValueStore, StoreContext};

/// Why opening a partition's stores failed, and the stores opened before it did (for the
/// caller to close or keep).
pub(crate) type OpenFailure = (Error, Vec<Arc<dyn KeyValueStore>>);

impl StoreManager {
    /// Opens each store of `context`'s partition in registration order: `kept` stores
    /// (a standby's, already open) first in that order, the rest from their directories,
    /// rebuilding damaged files. On error, returns the stores opened so far with it.
    pub(crate) fn open_stores(
        &self,
        context: &StoreContext,
        kept: Option<Vec<Arc<dyn KeyValueStore>>>,
    ) -> Result<Vec<Opened>, OpenFailure> {
        let mut kept = kept.map(Vec::into_iter);
        let mut opened: Vec<Opened> = Vec::with_capacity(self.stores.len());
        for registered in &self.stores {
            let store = match kept.as_mut().and_then(Iterator::next) {
                Some(store) => Ok((store, None)),
                None => registered.recipe.open(context),
            };
            match store {
                Ok(store) => opened.push(store),
                Err(err) => return Err((err, opened.into_iter().map(|(s, _)| s).collect())),
            }
        }
        Ok(opened)
    }
}
