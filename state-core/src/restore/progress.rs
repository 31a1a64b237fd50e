//! Per-partition restore counters an operator can read while stores restore, and a
//! listener that forwards to several others so counters can sit beside logging or metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::SnapshotRestore;
use super::listener::{RestoreListener, RestoreTarget, WipeReason};
use crate::{Offset, Partition, SnapshotFallback};

/// Where the restore of one store partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePhase {
    /// Records are being applied.
    Restoring,
    /// The last restore reached its end offset (or found nothing to do after a wipe).
    Done,
    /// The last restore stopped early; the next one resumes where it stopped.
    Suspended,
}

impl std::fmt::Display for RestorePhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RestorePhase::Restoring => "restoring",
            RestorePhase::Done => "done",
            RestorePhase::Suspended => "suspended",
        })
    }
}

/// A point-in-time view of one store partition's restore, from [`RestoreProgress`].
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionProgress {
    /// The store name.
    pub store: String,
    /// The changelog topic.
    pub topic: String,
    /// The changelog partition.
    pub partition: Partition,
    /// Where the current or last restore stands.
    pub phase: RestorePhase,
    /// The first offset the current or last restore read.
    pub start_offset: Offset,
    /// The end offset (exclusive) the current or last restore runs to.
    pub end_offset: Offset,
    /// Records applied by the current or last restore.
    pub restored: u64,
    /// Offsets between the last applied one and the end offset; 0 when [`RestorePhase::Done`].
    /// An upper bound on records left: offsets have gaps (transaction markers, compacted
    /// records) that hold nothing to apply.
    pub remaining: u64,
    /// `restored` divided by `elapsed` in seconds; 0.0 when no time has passed.
    pub records_per_sec: f64,
    /// Time the current or last restore took: until it finished, or until now while it runs.
    pub elapsed: Duration,
    /// Restores started for this partition since these counters were created.
    pub restores: u64,
    /// Records applied over all restores.
    pub total_restored: u64,
    /// Times local state was wiped.
    pub wipes: u64,
}

impl std::fmt::Display for PartitionProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} p{} {} {}/{} ({} left, {:.0} rec/s)",
            self.store,
            self.partition,
            self.phase,
            self.restored,
            self.restored.saturating_add(self.remaining),
            self.remaining,
            self.records_per_sec
        )?;
        if self.wipes > 0 {
            write!(f, " wiped {}x", self.wipes)?;
        }
        Ok(())
    }
}

/// Counters for one (store, partition).
#[derive(Debug, Clone)]
struct Entry {
    topic: String,
    phase: RestorePhase,
    start_offset: Offset,
    end_offset: Offset,
    last_applied: Offset,
    restored: u64,
    total_restored: u64,
    restores: u64,
    wipes: u64,
    started_at: Instant,
    finished_at: Option<Instant>,
}

impl Entry {
    /// An entry first seen through an event other than a start (a wipe before restore
    /// starts, or a listener attached mid-restore): nothing is known of its offsets.
    fn unseen(topic: &str, phase: RestorePhase, now: Instant) -> Self {
        Entry {
            topic: topic.to_owned(),
            phase,
            start_offset: 0,
            end_offset: 0,
            last_applied: -1,
            restored: 0,
            total_restored: 0,
            restores: 0,
            wipes: 0,
            started_at: now,
            finished_at: (phase != RestorePhase::Restoring).then_some(now),
        }
    }

    fn view(&self, store: &str, partition: Partition, now: Instant) -> PartitionProgress {
        let remaining = match self.phase {
            RestorePhase::Done => 0,
            _ => {
                let left = self
                    .end_offset
                    .saturating_sub(self.last_applied.saturating_add(1));
                u64::try_from(left).unwrap_or(0)
            }
        };
        let elapsed = self
            .finished_at
            .unwrap_or(now)
            .saturating_duration_since(self.started_at);
        let secs = elapsed.as_secs_f64();
        let records_per_sec = if secs > 0.0 {
            self.restored as f64 / secs
        } else {
            0.0
        };
        PartitionProgress {
            store: store.to_owned(),
            topic: self.topic.clone(),
            partition,
            phase: self.phase,
            start_offset: self.start_offset,
            end_offset: self.end_offset,
            restored: self.restored,
            remaining,
            records_per_sec,
            elapsed,
            restores: self.restores,
            total_restored: self.total_restored,
            wipes: self.wipes,
        }
    }

    /// Ends the current restore, trusting `total` when it exceeds the batches seen (the
    /// listener may have been attached mid-restore).
    fn finish(&mut self, phase: RestorePhase, total: u64, now: Instant) {
        if total > self.restored {
            self.total_restored = self.total_restored.saturating_add(total - self.restored);
            self.restored = total;
        }
        self.phase = phase;
        self.finished_at = Some(now);
    }
}

/// A [`RestoreListener`] that keeps counters per (store, changelog partition) for
/// operators: what is restoring, how far along, how fast, and how often it was wiped.
///
/// Share it as an `Arc` between the restore driver and whatever reports it.
#[derive(Debug, Default)]
pub struct RestoreProgress {
    entries: Mutex<BTreeMap<(String, Partition), Entry>>,
}

impl RestoreProgress {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every known store partition, ordered by store name then partition.
    pub fn snapshot(&self) -> Vec<PartitionProgress> {
        self.snapshot_at(Instant::now())
    }

    /// One store partition, if any restore event for it was seen.
    pub fn get(&self, store: &str, partition: Partition) -> Option<PartitionProgress> {
        let now = Instant::now();
        self.lock()
            .get(&(store.to_owned(), partition))
            .map(|entry| entry.view(store, partition, now))
    }

    /// The store partitions whose restore is running, in [`snapshot`](Self::snapshot) order.
    pub fn restoring(&self) -> Vec<PartitionProgress> {
        let mut all = self.snapshot();
        all.retain(|p| p.phase == RestorePhase::Restoring);
        all
    }

    /// Records applied over all restores of all store partitions.
    pub fn total_restored(&self) -> u64 {
        self.lock()
            .values()
            .fold(0u64, |sum, entry| sum.saturating_add(entry.total_restored))
    }

    fn snapshot_at(&self, now: Instant) -> Vec<PartitionProgress> {
        self.lock()
            .iter()
            .map(|((store, partition), entry)| entry.view(store, *partition, now))
            .collect()
    }

    // A panic elsewhere while holding the lock leaves plain counters, still worth reading.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, Partition), Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start_at(&self, target: RestoreTarget<'_>, start: Offset, end: Offset, now: Instant) {
        let mut entries = self.lock();
        let entry = entries
            .entry((target.store.to_owned(), target.partition))
            .or_insert_with(|| Entry::unseen(target.topic, RestorePhase::Restoring, now));
        target.topic.clone_into(&mut entry.topic);
        entry.phase = RestorePhase::Restoring;
        entry.start_offset = start;
        entry.end_offset = end;
        entry.last_applied = start.saturating_sub(1);
        entry.restored = 0;
        entry.restores = entry.restores.saturating_add(1);
        entry.started_at = now;
        entry.finished_at = None;
    }

    fn batch_at(&self, target: RestoreTarget<'_>, batch_end: Offset, num: u64, now: Instant) {
        let mut entries = self.lock();
        let entry = entries
            .entry((target.store.to_owned(), target.partition))
            .or_insert_with(|| {
                let mut entry = Entry::unseen(target.topic, RestorePhase::Restoring, now);
                entry.start_offset = batch_end;
                entry.end_offset = batch_end.saturating_add(1);
                entry
            });
        entry.last_applied = entry.last_applied.max(batch_end);
        entry.restored = entry.restored.saturating_add(num);
        entry.total_restored = entry.total_restored.saturating_add(num);
    }

    fn finish_at(&self, target: RestoreTarget<'_>, phase: RestorePhase, total: u64, now: Instant) {
        self.lock()
            .entry((target.store.to_owned(), target.partition))
            .or_insert_with(|| Entry::unseen(target.topic, phase, now))
            .finish(phase, total, now);
    }

    fn wiped_at(&self, target: RestoreTarget<'_>, now: Instant) {
        let mut entries = self.lock();
        // restore() wipes before it reports a start, and reports none when the changelog
        // holds nothing to apply, so a first-seen wipe counts as done until a start arrives.
        let entry = entries
            .entry((target.store.to_owned(), target.partition))
            .or_insert_with(|| Entry::unseen(target.topic, RestorePhase::Done, now));
        entry.wipes = entry.wipes.saturating_add(1);
    }
}

impl RestoreListener for RestoreProgress {
    fn on_restore_start(
        &self,
        target: RestoreTarget<'_>,
        start_offset: Offset,
        end_offset: Offset,
    ) {
        self.start_at(target, start_offset, end_offset, Instant::now());
    }

    fn on_batch_restored(
        &self,
        target: RestoreTarget<'_>,
        batch_end_offset: Offset,
        num_restored: u64,
    ) {
        self.batch_at(target, batch_end_offset, num_restored, Instant::now());
    }

    fn on_restore_end(&self, target: RestoreTarget<'_>, total_restored: u64) {
        self.finish_at(target, RestorePhase::Done, total_restored, Instant::now());
    }

    fn on_restore_suspended(&self, target: RestoreTarget<'_>, total_restored: u64) {
        self.finish_at(
            target,
            RestorePhase::Suspended,
            total_restored,
            Instant::now(),
        );
    }

    fn on_store_wiped(&self, target: RestoreTarget<'_>, _reason: &WipeReason) {
        self.wiped_at(target, Instant::now());
    }
}

/// A [`RestoreListener`] that forwards every event to each of its listeners, in order.
#[derive(Clone, Default)]
pub struct FanOutRestoreListener {
    listeners: Vec<Arc<dyn RestoreListener>>,
}

impl FanOutRestoreListener {
    /// Forwards to `listeners`, first to last.
    pub fn new(listeners: Vec<Arc<dyn RestoreListener>>) -> Self {
        Self { listeners }
    }
}

impl std::fmt::Debug for FanOutRestoreListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOutRestoreListener")
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl RestoreListener for FanOutRestoreListener {
    fn on_restore_start(
        &self,
        target: RestoreTarget<'_>,
        start_offset: Offset,
        end_offset: Offset,
    ) {
        for listener in &self.listeners {
            listener.on_restore_start(target, start_offset, end_offset);
        }
    }

    fn on_batch_restored(
        &self,
        target: RestoreTarget<'_>,
        batch_end_offset: Offset,
        num_restored: u64,
    ) {
        for listener in &self.listeners {
            listener.on_batch_restored(target, batch_end_offset, num_restored);
        }
    }

    fn on_restore_stalled(
        &self,
        target: RestoreTarget<'_>,
        at: Offset,
        stalled_for: Duration,
        limit: Duration,
    ) {
        for listener in &self.listeners {
            listener.on_restore_stalled(target, at, stalled_for, limit);
        }
    }

    fn on_restore_end(&self, target: RestoreTarget<'_>, total_restored: u64) {
        for listener in &self.listeners {
            listener.on_restore_end(target, total_restored);
        }
    }

    fn on_restore_suspended(&self, target: RestoreTarget<'_>, total_restored: u64) {
        for listener in &self.listeners {
            listener.on_restore_suspended(target, total_restored);
        }
    }

    fn on_store_wiped(&self, target: RestoreTarget<'_>, reason: &WipeReason) {
        for listener in &self.listeners {
            listener.on_store_wiped(target, reason);
        }
    }

    fn on_snapshot_restored(&self, target: RestoreTarget<'_>, restored: &SnapshotRestore) {
        for listener in &self.listeners {
            listener.on_snapshot_restored(target, restored);
        }
    }

    fn on_snapshot_fallback(&self, target: RestoreTarget<'_>, reason: &SnapshotFallback) {
        for listener in &self.listeners {
            listener.on_snapshot_fallback(target, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(store: &'a str, partition: Partition) -> RestoreTarget<'a> {
        RestoreTarget {
            topic: "app-store-changelog",
            store,
            partition,
        }
    }

    /// Spins (no sleep) until the clock has moved past the restore's start, so its
    /// elapsed time and rate are non-zero.
    fn wait_for_elapsed(progress: &RestoreProgress, store: &str, partition: Partition) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while progress
            .get(store, partition)
            .is_some_and(|p| p.elapsed.is_zero())
        {
            assert!(Instant::now() < deadline, "clock did not advance");
            std::hint::spin_loop();
        }
    }

    #[test]
    fn full_restore_reports_counts_remaining_phase_and_rate() {
        let progress = RestoreProgress::new();
        let t = target("rewards", 3);
        progress.on_restore_start(t, 0, 300);
        let started = progress.get("rewards", 3).unwrap();
        assert_eq!(started.phase, RestorePhase::Restoring);
        assert_eq!(started.remaining, 300);
        assert_eq!(started.restores, 1);

        progress.on_batch_restored(t, 99, 100);
        progress.on_batch_restored(t, 199, 100);
        let mid = progress.get("rewards", 3).unwrap();
        assert_eq!(mid.restored, 200);
        assert_eq!(mid.remaining, 100);
        let restoring = progress.restoring();
        assert_eq!(restoring.len(), 1);
        assert_eq!(
            (restoring[0].store.as_str(), restoring[0].restored),
            ("rewards", 200)
        );

        progress.on_batch_restored(t, 299, 100);
        wait_for_elapsed(&progress, "rewards", 3);
        progress.on_restore_end(t, 300);

        let done = progress.get("rewards", 3).unwrap();
        assert_eq!(done.phase, RestorePhase::Done);
        assert_eq!(done.restored, 300);
        assert_eq!(done.remaining, 0);
        assert_eq!(done.total_restored, 300);
        assert_eq!((done.start_offset, done.end_offset), (0, 300));
        assert_eq!(done.topic, "app-store-changelog");
        assert!(done.records_per_sec > 0.0, "{done}");
        assert!(progress.restoring().is_empty());
        assert_eq!(progress.total_restored(), 300);
        // Finished restores stop their clock.
        assert_eq!(progress.get("rewards", 3).unwrap().elapsed, done.elapsed);
    }

    #[test]
    fn rate_is_restored_over_elapsed_and_zero_without_elapsed_time() {
        let progress = RestoreProgress::new();
        let t = target("rewards", 0);
        let t0 = Instant::now();
        progress.start_at(t, 1000, 2000, t0);
        progress.batch_at(t, 1299, 300, t0);
        let at_start = progress.snapshot_at(t0);
        assert_eq!(at_start[0].records_per_sec, 0.0);
        assert_eq!(at_start[0].elapsed, Duration::ZERO);

        let later = t0 + Duration::from_secs(2);
        let running = progress.snapshot_at(later);
        assert_eq!(running[0].elapsed, Duration::from_secs(2));
        assert_eq!(running[0].records_per_sec, 150.0);
        assert_eq!(running[0].remaining, 700);
        assert_eq!(
            running[0].to_string(),
            "rewards p0 restoring 300/1000 (700 left, 150 rec/s)"
        );

        progress.finish_at(t, RestorePhase::Done, 300, later);
        let done = progress.snapshot_at(later + Duration::from_secs(60));
        assert_eq!(done[0].elapsed, Duration::from_secs(2));
        assert_eq!(
            done[0].to_string(),
            "rewards p0 done 300/300 (0 left, 150 rec/s)"
        );
    }

    #[test]
    fn suspended_then_resumed_restore_counts_two_restores_and_cumulative_total() {
        let progress = RestoreProgress::new();
        let t = target("rewards", 1);
        progress.on_restore_start(t, 0, 500);
        progress.on_batch_restored(t, 199, 200);
        progress.on_restore_suspended(t, 200);

        let suspended = progress.get("rewards", 1).unwrap();
        assert_eq!(suspended.phase, RestorePhase::Suspended);
        assert_eq!(suspended.restored, 200);
        assert_eq!(suspended.remaining, 300);
        assert!(progress.restoring().is_empty());

        progress.on_restore_start(t, 200, 600);
        let resumed = progress.get("rewards", 1).unwrap();
        assert_eq!(resumed.phase, RestorePhase::Restoring);
        assert_eq!(
            resumed.restored, 0,
            "restored counts the current restore only"
        );
        assert_eq!(resumed.remaining, 400);
        assert_eq!(resumed.total_restored, 200);

        progress.on_batch_restored(t, 599, 400);
        progress.on_restore_end(t, 400);
        let done = progress.get("rewards", 1).unwrap();
        assert_eq!(done.restores, 2);
        assert_eq!(done.restored, 400);
        assert_eq!(done.total_restored, 600);
        assert_eq!((done.start_offset, done.end_offset), (200, 600));
        assert_eq!(progress.total_restored(), 600);
    }

    #[test]
    fn wipe_increments_wipes_before_and_during_restore() {
        let progress = RestoreProgress::new();
        let t = target("rewards", 0);
        progress.on_store_wiped(t, &WipeReason::DataWithoutPosition);
        let wiped = progress.get("rewards", 0).unwrap();
        assert_eq!(wiped.wipes, 1);
        assert_eq!(wiped.restores, 0);
        // Nothing follows a wipe of a store whose changelog is empty, so it must not
        // look like a restore in progress.
        assert_eq!(wiped.phase, RestorePhase::Done);
        assert!(progress.restoring().is_empty());

        progress.on_restore_start(t, 0, 10);
        progress.on_store_wiped(t, &WipeReason::OutOfRangeOnRead("gone".into()));
        progress.on_batch_restored(t, 9, 10);
        progress.on_restore_end(t, 10);
        let done = progress.get("rewards", 0).unwrap();
        assert_eq!(done.wipes, 2);
        assert_eq!(done.restores, 1);
        assert_eq!(done.total_restored, 10);
        assert!(done.to_string().ends_with(" wiped 2x"), "{done}");
    }

    #[test]
    fn stores_and_partitions_are_reported_separately_in_order() {
        let progress = RestoreProgress::new();
        for (store, partition, end) in [("orders", 2, 20), ("carts", 1, 10), ("orders", 0, 5)] {
            progress.on_restore_start(target(store, partition), 0, end);
        }
        progress.on_batch_restored(target("orders", 2), 19, 20);
        progress.on_restore_end(target("orders", 2), 20);
        progress.on_batch_restored(target("carts", 1), 3, 4);

        let all = progress.snapshot();
        let keys: Vec<_> = all
            .iter()
            .map(|p| (p.store.as_str(), p.partition))
            .collect();
        assert_eq!(keys, [("carts", 1), ("orders", 0), ("orders", 2)]);
        assert_eq!(
            all.iter().map(|p| p.restored).collect::<Vec<_>>(),
            [4, 0, 20]
        );
        assert_eq!(
            all.iter().map(|p| p.remaining).collect::<Vec<_>>(),
            [6, 5, 0]
        );
        let restoring: Vec<_> = progress
            .restoring()
            .into_iter()
            .map(|p| (p.store, p.partition))
            .collect();
        assert_eq!(
            restoring,
            [("carts".to_owned(), 1), ("orders".to_owned(), 0)]
        );
        assert_eq!(progress.total_restored(), 24);
        assert!(progress.get("orders", 1).is_none());
        assert!(progress.get("carts", 2).is_none());
    }

    #[test]
    fn end_total_above_batches_seen_is_trusted() {
        // A listener attached mid-restore sees only later batches.
        let progress = RestoreProgress::new();
        let t = target("rewards", 0);
        progress.on_batch_restored(t, 49, 10);
        assert_eq!(progress.restoring().len(), 1);
        progress.on_restore_end(t, 50);
        let done = progress.get("rewards", 0).unwrap();
        assert_eq!(done.restored, 50);
        assert_eq!(done.total_restored, 50);
        assert_eq!(done.phase, RestorePhase::Done);
    }

    #[test]
    fn poisoned_lock_is_recovered() {
        let progress = Arc::new(RestoreProgress::new());
        progress.on_restore_start(target("rewards", 0), 0, 10);
        let clone = Arc::clone(&progress);
        let panicked = std::thread::spawn(move || {
            let _guard = clone.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(progress.entries.is_poisoned());
        progress.on_batch_restored(target("rewards", 0), 4, 5);
        assert_eq!(progress.get("rewards", 0).unwrap().restored, 5);
    }

    #[test]
    fn fan_out_forwards_every_event_to_each_listener() {
        let first = Arc::new(RestoreProgress::new());
        let second = Arc::new(RestoreProgress::new());
        let fan_out = FanOutRestoreListener::new(vec![
            Arc::clone(&first) as Arc<dyn RestoreListener>,
            Arc::clone(&second) as Arc<dyn RestoreListener>,
        ]);
        let a = target("rewards", 0);
        let b = target("rewards", 1);
        fan_out.on_store_wiped(a, &WipeReason::DataWithoutPosition);
        fan_out.on_restore_start(a, 0, 100);
        fan_out.on_batch_restored(a, 99, 100);
        fan_out.on_restore_end(a, 100);
        fan_out.on_restore_start(b, 10, 50);
        fan_out.on_batch_restored(b, 19, 10);
        fan_out.on_restore_suspended(b, 10);

        for progress in [&first, &second] {
            let all = progress.snapshot();
            assert_eq!(all.len(), 2);
            assert_eq!(
                (all[0].phase, all[0].restored, all[0].wipes),
                (RestorePhase::Done, 100, 1)
            );
            assert_eq!(
                (all[1].phase, all[1].restored, all[1].remaining),
                (RestorePhase::Suspended, 10, 30)
            );
            assert_eq!(progress.total_restored(), 110);
        }
        assert_eq!(
            format!("{fan_out:?}"),
            "FanOutRestoreListener { listeners: 2 }"
        );
    }

    #[test]
    fn types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RestoreProgress>();
        assert_send_sync::<FanOutRestoreListener>();
    }
}
