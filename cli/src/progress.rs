//! Progress bars (indicatif), and a restore listener that drives one.

use std::sync::{Mutex, MutexGuard};

use indicatif::{ProgressBar, ProgressStyle};
use state_core::{Offset, RestoreListener, RestoreTarget, WipeReason};

use crate::intervals::RestoreIntervals;

/// A bar counting `unit` up to `len`. indicatif hides it when stderr is no terminal.
pub fn bar(len: u64, label: &str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template =
        format!("{label:>9} [{{bar:36}}] {{pos}}/{{len}} {unit} ({{per_sec}}, {{elapsed}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Feeds restore progress into a bar; remembers why stores were wiped, why snapshots
/// were passed over and when each partition's restore ran.
pub struct BarListener {
    bar: ProgressBar,
    wiped: Mutex<Vec<String>>,
    fallbacks: Mutex<Vec<String>>,
    intervals: Mutex<RestoreIntervals>,
}

impl BarListener {
    /// A listener whose bar grows as each partition's restore starts.
    pub fn new() -> Self {
        Self {
            bar: bar(0, "restoring", "offsets"),
            wiped: Mutex::new(Vec::new()),
            fallbacks: Mutex::new(Vec::new()),
            intervals: Mutex::new(RestoreIntervals::default()),
        }
    }

    /// The bar, for printing lines above it.
    pub fn progress_bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    /// Ends the bar.
    pub fn finish(&self) {
        // Transaction markers take offsets but are never restored: fill the gap.
        if let Some(len) = self.bar.length() {
            self.bar.set_position(len);
        }
        self.bar.finish_and_clear();
    }

    /// When each partition's restore ran.
    pub fn intervals(&self) -> MutexGuard<'_, RestoreIntervals> {
        self.intervals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why snapshots were passed over, one line each (kept, not only shown on the bar,
    /// which is hidden when stderr is not a terminal).
    pub fn fallbacks(&self) -> Vec<String> {
        self.fallbacks
            .lock()
            .map(|f| f.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Why stores were wiped, one line per store.
    pub fn wiped(&self) -> Vec<String> {
        self.wiped
            .lock()
            .map(|w| w.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl RestoreListener for BarListener {
    fn on_restore_start(&self, target: RestoreTarget<'_>, start: Offset, end: Offset) {
        self.intervals().started(target.partition);
        self.bar
            .inc_length(u64::try_from(end - start).unwrap_or_default());
    }

    fn on_restore_end(&self, target: RestoreTarget<'_>, _restored: u64) {
        self.intervals().ended(target.partition);
    }

    fn on_batch_restored(&self, _target: RestoreTarget<'_>, _end: Offset, restored: u64) {
        self.bar.inc(restored);
    }

    fn on_snapshot_fallback(
        &self,
        target: RestoreTarget<'_>,
        reason: &state_core::SnapshotFallback,
    ) {
        let line = format!(
            "store {} partition {}: not from a snapshot: {reason}",
            target.store, target.partition
        );
        if let Ok(mut fallbacks) = self.fallbacks.lock() {
            fallbacks.push(line);
        }
    }

    fn on_store_wiped(&self, target: RestoreTarget<'_>, reason: &WipeReason) {
        let line = format!(
            "store {} partition {} wiped: {reason}",
            target.store, target.partition
        );
        if let Ok(mut wiped) = self.wiped.lock() {
            wiped.push(line);
        }
    }
}
