//! The standby updater: a task on the runtime that keeps a member's standbys tailing
//! their changelogs, whichever protocol placed them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::member::Member;

/// How often the updater refreshes the standby lag gauge
/// (`statestore_standby_record_lag`, through `standby_lags`): each refresh asks the broker
/// for every standby's end offset, so it is not done every round; scrapes come every 15 s
/// or so.
const LAG_REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Keeps standbys tailing their changelogs until `stop` is set.
pub(super) fn spawn(member: &Arc<Member>, stop: Arc<AtomicBool>) {
    let member = member.clone();
    member.runtime.clone().spawn(async move {
        let mut lags_refreshed = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let paused = !member.standby_updates.load(Ordering::SeqCst);
            if paused || !member.manager.has_standbys() {
                // Nothing to tail: an idle wait, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let started = Instant::now();
            let round = member.standby_round.lock().await;
            if !member.standby_updates.load(Ordering::SeqCst) {
                continue;
            }
            let updated = member.manager.update_standbys().await;
            drop(round);
            if lags_refreshed.elapsed() >= LAG_REFRESH_EVERY {
                lags_refreshed = Instant::now();
                if let Err(err) = member.manager.standby_lags().await {
                    log::debug!("refreshing the standby lags: {err}");
                }
            }
            match updated {
                // Busy standbys (being promoted or opened) or failing ones return at
                // once; an idle one waits out the reader's poll timeout instead.
                Ok(0) if started.elapsed() < Duration::from_millis(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => {}
                Err(err) => {
                    log::warn!("updating standbys: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}
