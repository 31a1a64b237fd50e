//! What one member shares between its polling thread, its rebalance callbacks and its
//! standby updater. The partitions themselves are the store manager's: this holds only
//! the wiring (runtime, listener, placement) and an error a callback could not return.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use state_core::{Error, Partition, Result, StoreManager};
use tokio::runtime::Handle;

use super::view;
use super::{GroupListener, StandbyPolicy};

/// Everything the callbacks need.
pub(crate) struct Member {
    pub(crate) manager: Arc<StoreManager>,
    pub(crate) runtime: Handle,
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) standbys: StandbyPolicy,
    pub(crate) listener: Arc<dyn GroupListener>,
    /// An error a rebalance callback could not return, for the polling thread.
    pub(crate) error: Mutex<Option<Error>>,
    /// Whether standbys tail their changelogs now.
    pub(crate) standby_updates: AtomicBool,
    /// Held by the standby updater for each round of updates.
    pub(crate) standby_round: tokio::sync::Mutex<()>,
    /// Where standbys go under [`StandbyPolicy::Replicas`].
    pub(crate) placement: Placement,
}

/// What placing [`StandbyPolicy::Replicas`] standbys needs.
pub(crate) struct Placement {
    /// This member's client id, which the group's description lists it by.
    pub(crate) identity: String,
    pub(crate) group_id: String,
    /// A client outside the group that reads the group's description, so placement
    /// never waits on (or blocks) the group consumer's polling thread.
    pub(crate) describer: rdkafka::consumer::BaseConsumer,
    pub(crate) timeout: std::time::Duration,
    /// Held by each placement, so two never open and close standbys at once.
    pub(crate) running: tokio::sync::Mutex<()>,
    /// Set by every rebalance callback, cleared by a placement that saw the group
    /// `Stable`: while set, the standby updater retries placement every second.
    pub(crate) pending: AtomicBool,
}

impl Member {
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

    /// Opens and closes standbys as the policy places them: under
    /// [`StandbyPolicy::AllUnowned`] one for every partition not assigned here; under
    /// [`StandbyPolicy::Replicas`] those the group's current placement puts here. Runs
    /// on the runtime; the callback returns at once.
    pub(crate) fn refresh_standbys(self: &Arc<Self>) {
        let member = self.clone();
        match self.standbys {
            StandbyPolicy::None => {}
            StandbyPolicy::AllUnowned => {
                self.runtime.spawn(async move {
                    // The manager leaves the partitions it owns alone.
                    let all: BTreeSet<Partition> = (0..member.partitions).collect();
                    if let Err(err) = member.manager.set_standbys(&all).await {
                        log::warn!("starting standbys of {}: {err}", member.topic);
                    }
                });
            }
            StandbyPolicy::Replicas(k) => {
                self.placement.pending.store(true, Ordering::SeqCst);
                self.runtime.spawn(async move {
                    if let Err(err) = member.place_replicas(k).await {
                        log::warn!("placing standbys of {}: {err}", member.topic);
                    }
                });
            }
        }
    }

    /// Opens the standbys the group's placement puts here and closes the others (keeping
    /// their directories). Does nothing while the group is rebalancing (placement stays
    /// pending and the standby updater tries again).
    pub(crate) async fn place_replicas(self: &Arc<Self>, k: usize) -> Result<()> {
        let _running = self.placement.running.lock().await;
        // Cleared first: a rebalance callback from now on sets it again.
        self.placement.pending.store(false, Ordering::SeqCst);
        let placed = self.place_replicas_now(k).await;
        if !matches!(placed, Ok(true)) {
            self.placement.pending.store(true, Ordering::SeqCst);
        }
        placed.map(drop)
    }

    /// One placement; `Ok(false)` when the group was not `Stable`.
    async fn place_replicas_now(self: &Arc<Self>, k: usize) -> Result<bool> {
        let member = self.clone();
        let view = tokio::task::spawn_blocking(move || {
            let placement = &member.placement;
            view::describe(
                &placement.describer,
                &placement.group_id,
                &member.topic,
                placement.timeout,
            )
        })
        .await
        .map_err(|err| Error::internal(format!("describing the group: {err}")))??;
        let Some(view) = view else {
            return Ok(false);
        };
        let wanted = view.standbys_on(&self.placement.identity, self.partitions, k);
        let before = self.manager.standbys();
        let closing: Vec<&Partition> = before.difference(&wanted).collect();
        if !closing.is_empty() {
            log::info!(
                "closing standbys {closing:?} of {}, placed elsewhere now",
                self.topic
            );
        }
        // Partitions assigned here since the group was described are left to their
        // assignment: the manager opens standbys only of partitions it does not own.
        self.manager.set_standbys(&wanted).await.map(|()| true)
    }
}
