//! Small helpers shared by the fault, durability and relocation groups.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ChangelogReader, KeyValueStore, LoggedStore, ProcessingGuarantee, RestoreListener,
    RestoreOptions, RestoreSummary, RestoreTarget, SinkOptions, TopicSpec, WipeReason, restore,
};

use crate::harness::block_on;

/// The topic every group uses.
pub const TOPIC: &str = "app-store-changelog";

/// A changelog with the topic created (4 partitions; the groups use partition 1 so a
/// partition mix-up would show).
pub fn changelog() -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    changelog
        .ensure_topic_now(&TopicSpec::changelog(TOPIC, 4, &BTreeMap::new()))
        .unwrap_or_else(|err| panic!("creating {TOPIC}: {err}"));
    changelog
}

/// The partition the groups use.
pub const PARTITION: i32 = 1;

/// A reader for `guarantee`.
pub fn reader(
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
) -> Arc<dyn ChangelogReader> {
    Arc::new(
        changelog
            .reader_now(TOPIC, guarantee.isolation())
            .unwrap_or_else(|err| panic!("reader: {err}")),
    )
}

/// Wraps `store` for logging to partition [`PARTITION`].
pub fn logged(
    changelog: &InMemoryChangelog,
    store: Arc<dyn KeyValueStore>,
    guarantee: ProcessingGuarantee,
) -> LoggedStore {
    let sink = changelog
        .sink_now(&SinkOptions::new(guarantee, "app-store-1"))
        .unwrap_or_else(|err| panic!("sink: {err}"));
    LoggedStore::new(store, Arc::new(sink), TOPIC, PARTITION)
}

/// Restores with small batches and a recording listener.
pub fn restore_with(
    store: &dyn KeyValueStore,
    reader: &dyn ChangelogReader,
    listener: &RecordingListener,
) -> state_core::Result<RestoreSummary> {
    let options = RestoreOptions {
        batch_size: Some(5),
        ..RestoreOptions::default()
    };
    block_on(restore(store, reader, PARTITION, &options, listener))
}

/// What a [`RecordingListener`] heard.
#[derive(Debug, Default, Clone)]
pub struct Heard {
    /// `(from, end)` of each start.
    pub starts: Vec<(i64, i64)>,
    /// Records per batch.
    pub batches: Vec<u64>,
    /// Totals at each end.
    pub ends: Vec<u64>,
    /// Totals at each suspension.
    pub suspended: Vec<u64>,
    /// Wipe reasons.
    pub wiped: Vec<WipeReason>,
}

/// A listener that records every callback.
#[derive(Debug, Default)]
pub struct RecordingListener(pub Mutex<Heard>);

impl RecordingListener {
    /// A copy of what was heard.
    pub fn heard(&self) -> Heard {
        self.0.lock().map(|h| h.clone()).unwrap_or_default()
    }
    fn with(&self, f: impl FnOnce(&mut Heard)) {
        if let Ok(mut heard) = self.0.lock() {
            f(&mut heard);
        }
    }
}

impl RestoreListener for RecordingListener {
    fn on_restore_start(&self, _: RestoreTarget<'_>, from: i64, end: i64) {
        self.with(|h| h.starts.push((from, end)));
    }
    fn on_batch_restored(&self, _: RestoreTarget<'_>, _: i64, n: u64) {
        self.with(|h| h.batches.push(n));
    }
    fn on_restore_end(&self, _: RestoreTarget<'_>, total: u64) {
        self.with(|h| h.ends.push(total));
    }
    fn on_restore_suspended(&self, _: RestoreTarget<'_>, total: u64) {
        self.with(|h| h.suspended.push(total));
    }
    fn on_store_wiped(&self, _: RestoreTarget<'_>, reason: &WipeReason) {
        self.with(|h| h.wiped.push(reason.clone()));
    }
}

/// Every visible record of [`PARTITION`] replayed onto an empty map.
pub fn replay(
    changelog: &InMemoryChangelog,
    guarantee: ProcessingGuarantee,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::harness::replay(reader(changelog, guarantee).as_ref(), PARTITION)
        .unwrap_or_else(|err| panic!("replay: {err}"))
        .into_iter()
        .collect()
}

/// Writes `n` keys `key-000..` (value = index) through `logged` and commits.
pub fn write_and_commit(logged: &mut LoggedStore, range: std::ops::Range<u32>) {
    for i in range {
        logged
            .put(format!("key-{i:03}").as_bytes(), &i.to_be_bytes())
            .unwrap_or_else(|err| panic!("put: {err}"));
    }
    block_on(logged.commit()).unwrap_or_else(|err| panic!("commit: {err}"));
}
