//! What `statestore restore` says while it runs, besides its progress bar: that a
//! partition waits for its broker (always), that records arrive and how far each partition
//! got every [`PROGRESS_EVERY`] (when the bar is hidden, stderr being no terminal: a log
//! then still shows the restore moving); and what each partition reached, so a failed or
//! interrupted run can say what it kept.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use state_core::{Offset, Partition, RestoreListener, RestoreTarget, SnapshotRestore};

/// How often a partition's progress is printed when the bar is hidden.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Where one partition's restore stands in this run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reached {
    /// The first offset the restore reads.
    start: Offset,
    /// The end offset the restore runs to.
    pub end: Offset,
    /// Records this run applied.
    pub restored: u64,
    /// The last offset this run applied (a snapshot's position counts), if it applied any.
    pub applied_to: Option<Offset>,
    /// Since when it reads nothing, once that was reported.
    stalled_since: Option<Instant>,
    /// When its progress was last printed (bar hidden only).
    reported: Option<Instant>,
}

impl Reached {
    /// Whether this run put anything into the store.
    pub fn applied_any(&self) -> bool {
        self.applied_to.is_some()
    }
}

/// Prints stall notices (above the progress bar) and records each partition's [`Reached`].
pub struct RestoreWatch {
    bar: ProgressBar,
    stall_flag: &'static str,
    reached: Mutex<BTreeMap<Partition, Reached>>,
}

impl RestoreWatch {
    /// A watch printing above `bar`; `stall_flag` is the flag that sets the stall limit.
    pub fn new(bar: ProgressBar, stall_flag: &'static str) -> Self {
        Self {
            bar,
            stall_flag,
            reached: Mutex::new(BTreeMap::new()),
        }
    }

    fn reached_map(&self) -> MutexGuard<'_, BTreeMap<Partition, Reached>> {
        // Each update is one field assignment: a panic cannot leave an entry torn.
        self.reached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where `partition`'s restore got to in this run.
    pub fn reached(&self, partition: Partition) -> Reached {
        self.reached_map()
            .get(&partition)
            .copied()
            .unwrap_or_default()
    }

    /// The progress line due for `reached`, if one is: the first batch, then one every
    /// [`PROGRESS_EVERY`], and only while the bar is hidden.
    fn progress_line(&self, target: RestoreTarget<'_>, reached: &mut Reached) -> Option<String> {
        if !self.bar.is_hidden() {
            return None;
        }
        let line = match reached.reported {
            None => format!(
                "partition {}: records arriving from {}, restoring offsets {}..{}",
                target.partition, target.topic, reached.start, reached.end
            ),
            Some(at) if at.elapsed() >= PROGRESS_EVERY => format!(
                "partition {}: {} records restored, at offset {} of {}",
                target.partition,
                reached.restored,
                reached.applied_to.unwrap_or(reached.start),
                reached.end
            ),
            Some(_) => return None,
        };
        reached.reported = Some(Instant::now());
        Some(line)
    }

    fn say(&self, line: String) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
}

impl RestoreListener for RestoreWatch {
    fn on_restore_start(&self, target: RestoreTarget<'_>, start: Offset, end: Offset) {
        let mut map = self.reached_map();
        let reached = map.entry(target.partition).or_default();
        reached.start = start;
        reached.end = end;
    }

    fn on_batch_restored(&self, target: RestoreTarget<'_>, end: Offset, restored: u64) {
        let (resumed, progress) = {
            let mut map = self.reached_map();
            let reached = map.entry(target.partition).or_default();
            reached.restored += restored;
            reached.applied_to = Some(end);
            let progress = self.progress_line(target, reached);
            (reached.stalled_since.take(), progress)
        };
        if let Some(line) = progress {
            self.say(line);
        }
        if let Some(since) = resumed {
            self.say(format!(
                "partition {}: reading again, at offset {end}, after {:.1?} without records",
                target.partition,
                since.elapsed()
            ));
        }
    }

    fn on_snapshot_restored(&self, target: RestoreTarget<'_>, restored: &SnapshotRestore) {
        self.reached_map()
            .entry(target.partition)
            .or_default()
            .applied_to = Some(restored.position);
    }

    fn on_restore_stalled(
        &self,
        target: RestoreTarget<'_>,
        at: Offset,
        stalled_for: Duration,
        limit: Duration,
    ) {
        let end = {
            let mut map = self.reached_map();
            let reached = map.entry(target.partition).or_default();
            reached.stalled_since.get_or_insert_with(|| {
                let now = Instant::now();
                now.checked_sub(stalled_for).unwrap_or(now)
            });
            reached.end
        };
        // Whole seconds, so "waited 2s, 6s left" adds up to the limit.
        let left = limit.as_secs().saturating_sub(stalled_for.as_secs());
        self.say(format!(
            "partition {}: no records from {} for {}s at offset {at} of {end}: cannot reach the broker (or the partition has no leader); waiting up to {}s (--{}), {}s left, before giving up",
            target.partition,
            target.topic,
            stalled_for.as_secs(),
            limit.as_secs(),
            self.stall_flag,
            left,
        ));
    }
}
