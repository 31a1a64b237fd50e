//! What one member shares between its polling thread, its rebalance callbacks and its
//! standby updater. The partitions themselves are the store manager's: this holds only
//! the wiring (runtime, listener, placement) and an error a callback could not return.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use state_core::{Error, Partition, Result, StoreManager};
use tokio::runtime::Handle;

use super::placement::Plan;
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
    /// Where partitions and standbys go under [`StandbyPolicy::Replicas`].
    pub(crate) placement: Placement,
}

/// What planning [`StandbyPolicy::Replicas`] owners and standbys needs.
pub(crate) struct Placement {
    /// This member's client id, which the group's description lists it by.
    pub(crate) identity: String,
    pub(crate) group_id: String,
    /// A client outside the group that reads the group's description.
    pub(crate) describer: rdkafka::consumer::BaseConsumer,
    /// How long a description may be retried before the member fails.
    pub(crate) timeout: Duration,
    /// Counts planned assignments, so the standbys of an older one, placed on the
    /// runtime after a newer one came, are not placed at all.
    pub(crate) plans: AtomicU64,
    /// Held by each placement of standbys.
    pub(crate) placing: tokio::sync::Mutex<()>,
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

    /// Under [`StandbyPolicy::AllUnowned`], opens a standby of every partition not
    /// assigned here (on the runtime; the callback returns at once). Under
    /// [`StandbyPolicy::Replicas`] the assignment callback places them with the owners.
    pub(crate) fn refresh_standbys(self: &Arc<Self>) {
        if self.standbys != StandbyPolicy::AllUnowned {
            return;
        }
        let member = self.clone();
        self.runtime.spawn(async move {
            // The manager leaves the partitions it owns alone.
            let all: BTreeSet<Partition> = (0..member.partitions).collect();
            if let Err(err) = member.manager.set_standbys(&all).await {
                log::warn!("starting standbys of {}: {err}", member.topic);
            }
        });
    }

    /// Opens the standbys of the latest planned assignment (`plan`, as counted in
    /// [`Placement::plans`]) and closes the others, keeping their directories; does
    /// nothing if a newer assignment came meanwhile. Runs on the runtime.
    pub(crate) fn place_standbys(self: &Arc<Self>, plan: u64, standbys: BTreeSet<Partition>) {
        let member = self.clone();
        self.runtime.spawn(async move {
            // One placement at a time, the newest winning.
            let _placing = member.placement.placing.lock().await;
            if member.placement.plans.load(Ordering::SeqCst) != plan {
                return;
            }
            if let Err(err) = member.manager.set_standbys(&standbys).await {
                log::warn!("placing standbys of {}: {err}", member.topic);
            }
        });
    }

    /// The plan of the group's current generation, read from its description: `None`
    /// when the group is rebalancing again or no longer lists this member (it owns
    /// nothing until the next assignment). Blocks; failed descriptions are retried for
    /// the placement timeout.
    pub(crate) fn plan(&self, k: usize) -> Result<Option<Plan>> {
        let placement = &self.placement;
        let deadline = Instant::now() + placement.timeout;
        loop {
            let described = view::members(
                &placement.describer,
                &placement.group_id,
                &self.topic,
                placement.timeout,
            );
            match described {
                Ok(Some(members)) if members.contains(&placement.identity) => {
                    return Ok(Some(Plan::new(&members, self.partitions, k)));
                }
                Ok(_) => return Ok(None),
                Err(err) if Instant::now() >= deadline => return Err(err),
                Err(err) => {
                    log::warn!(
                        "describing group {}, trying again: {err}",
                        placement.group_id
                    );
                    // A pause between attempts at a broker that just failed, not a wait
                    // for a condition.
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            }
        }
    }
}
