//! The standby updater: a task on the runtime that keeps a member's standbys tailing
//! their changelogs, whichever protocol placed them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::member::Member;

/// Keeps standbys tailing their changelogs until `stop` is set.
pub(super) fn spawn(member: &Arc<Member>, stop: Arc<AtomicBool>) {
    let member = member.clone();
    member.runtime.clone().spawn(async move {
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
