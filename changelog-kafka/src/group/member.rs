//! What one member shares between its polling thread, its rebalance callbacks and its
//! standby updater. The partitions themselves are the store manager's, and where they go
//! is the group protocol's: this holds only the wiring (runtime, listener) and an error a
//! callback could not return.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use state_core::{Error, StoreManager};
use tokio::runtime::Handle;

use super::GroupListener;

/// Everything the callbacks need.
pub(crate) struct Member {
    pub(crate) manager: Arc<StoreManager>,
    pub(crate) runtime: Handle,
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) listener: Arc<dyn GroupListener>,
    /// An error a rebalance callback could not return, for the polling thread.
    error: Mutex<Option<Error>>,
    /// Whether standbys tail their changelogs now.
    pub(crate) standby_updates: AtomicBool,
    /// Held by the standby updater for each round of updates.
    pub(crate) standby_round: tokio::sync::Mutex<()>,
}

impl Member {
    /// The member of `topic`'s group serving `manager`'s stores on `runtime`, its
    /// standbys (if any) tailing their changelogs.
    pub(crate) fn new(
        manager: Arc<StoreManager>,
        runtime: Handle,
        topic: &str,
        listener: Arc<dyn GroupListener>,
    ) -> Self {
        Self {
            partitions: manager.context().num_partitions(),
            manager,
            runtime,
            topic: topic.to_owned(),
            listener,
            error: Mutex::default(),
            standby_updates: AtomicBool::new(true),
            standby_round: tokio::sync::Mutex::new(()),
        }
    }

    /// Keeps the first error for the polling thread to return.
    pub(crate) fn fail(&self, error: Error) {
        log::error!("{error}");
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(error);
    }

    /// The error a callback kept, once.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}
