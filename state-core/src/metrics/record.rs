//! The functions that record the metrics named in the parent module: each hook elsewhere
//! in the crate is one call into here.

use std::time::{Duration, Instant};

use ::metrics::{Counter, Gauge, Histogram, Label, counter, gauge, histogram};

use super::{
    CHANGELOG_RECORDS_WRITTEN_TOTAL, COMMIT_LATENCY_SECONDS, COMMITS_TOTAL, ESTIMATE_NUM_KEYS,
    LABEL_EVENT, LABEL_PARTITION, LABEL_RESULT, LABEL_STATE, LABEL_STORE, PARTITIONS,
    REBALANCES_TOTAL, RESTORE_DURATION_SECONDS, RESTORE_RECORDS_TOTAL, RESTORE_REMAINING_RECORDS,
    RESTORES_TOTAL, STANDBY_RECORD_LAG, STANDBY_RECORDS_APPLIED_TOTAL,
};
use crate::restore::RestoreTarget;
use crate::{KeyValueStore, Offset, Partition, PartitionState};

fn labels(store: &str, partition: Partition) -> Vec<Label> {
    vec![
        Label::new(LABEL_STORE, store.to_owned()),
        Label::new(LABEL_PARTITION, partition.to_string()),
    ]
}

/// Offsets from `from` to `end` (exclusive), never negative.
fn offsets_between(from: Offset, end: Offset) -> u64 {
    u64::try_from(end.saturating_sub(from)).unwrap_or(0)
}

/// The restore metrics of one running restore. The handles are looked up once at its
/// start, so a batch costs two atomic updates and no lookup.
pub(crate) struct RestoreMetrics {
    records: Counter,
    remaining: Gauge,
    duration: Histogram,
    keys: Gauge,
    end: Offset,
    started: Instant,
}

impl RestoreMetrics {
    /// A restore of `target` from `from` to `end` (exclusive) starts.
    pub(crate) fn start(target: RestoreTarget<'_>, from: Offset, end: Offset) -> Self {
        let labels = labels(target.store, target.partition);
        counter!(RESTORES_TOTAL, labels.clone()).increment(1);
        let remaining = gauge!(RESTORE_REMAINING_RECORDS, labels.clone());
        remaining.set(offsets_between(from, end) as f64);
        Self {
            records: counter!(RESTORE_RECORDS_TOTAL, labels.clone()),
            remaining,
            duration: histogram!(RESTORE_DURATION_SECONDS, labels.clone()),
            keys: gauge!(ESTIMATE_NUM_KEYS, labels),
            end,
            started: Instant::now(),
        }
    }

    /// `applied` records were applied up to offset `reached` (exclusive).
    pub(crate) fn batch(&self, applied: u64, reached: Offset) {
        self.records.increment(applied);
        self.remaining
            .set(offsets_between(reached, self.end) as f64);
    }

    /// The restore ended (`finished`: it reached its end) with `store` as it now is.
    pub(crate) fn end(&self, store: &dyn KeyValueStore, finished: bool) {
        self.remaining.set(0.0);
        if finished {
            self.duration.record(self.started.elapsed().as_secs_f64());
            if let Ok(keys) = store.approximate_num_entries() {
                self.keys.set(keys as f64);
            }
        }
    }
}

/// Times one store manager commit; [`end`](Self::end) records it.
pub(crate) struct CommitTimer(Instant);

impl CommitTimer {
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }

    /// The commit ended, successfully or not.
    pub(crate) fn end(self, ok: bool) -> Duration {
        let elapsed = self.0.elapsed();
        histogram!(COMMIT_LATENCY_SECONDS).record(elapsed.as_secs_f64());
        let result = if ok { "ok" } else { "error" };
        counter!(COMMITS_TOTAL, LABEL_RESULT => result).increment(1);
        elapsed
    }
}

/// `records` changelog records of `store`'s `partition` became durable at a commit and
/// were written to it: counts them and refreshes the key estimate.
pub(crate) fn store_committed(store: &dyn KeyValueStore, partition: Partition, records: usize) {
    let labels = labels(store.name(), partition);
    counter!(CHANGELOG_RECORDS_WRITTEN_TOTAL, labels.clone())
        .increment(u64::try_from(records).unwrap_or(u64::MAX));
    estimate_num_keys(store, labels);
}

/// A standby of `store`'s `partition` tailed `records` records: counts them and
/// refreshes the key estimate.
pub(crate) fn standby_applied(store: &dyn KeyValueStore, partition: Partition, records: u64) {
    let labels = labels(store.name(), partition);
    counter!(STANDBY_RECORDS_APPLIED_TOTAL, labels.clone()).increment(records);
    estimate_num_keys(store, labels);
}

/// An estimate that fails is skipped: the gauge keeps its last value.
fn estimate_num_keys(store: &dyn KeyValueStore, labels: Vec<Label>) {
    if let Ok(keys) = store.approximate_num_entries() {
        gauge!(ESTIMATE_NUM_KEYS, labels).set(keys as f64);
    }
}

/// The standby of `store`'s `partition` is `lag` offsets behind its changelog's end.
pub(crate) fn standby_lag(store: &str, partition: Partition, lag: u64) {
    gauge!(STANDBY_RECORD_LAG, labels(store, partition)).set(lag as f64);
}

/// The bucket of [`PARTITIONS`](super::PARTITIONS) a state counts in; transient states
/// count in none.
fn state_label(state: PartitionState) -> Option<&'static str> {
    match state {
        PartitionState::Restoring => Some("restoring"),
        PartitionState::Active | PartitionState::Committing => Some("active"),
        PartitionState::Standby => Some("standby"),
        PartitionState::Revoking | PartitionState::Closed | PartitionState::Lost => None,
    }
}

/// A partition of a store manager moved from `from` to `to`.
pub(crate) fn partition_moved(from: PartitionState, to: PartitionState) {
    let (from, to) = (state_label(from), state_label(to));
    if from == to {
        return;
    }
    if let Some(from) = from {
        gauge!(PARTITIONS, LABEL_STATE => from).decrement(1.0);
    }
    if let Some(to) = to {
        gauge!(PARTITIONS, LABEL_STATE => to).increment(1.0);
    }
}

/// What a consumer-group rebalance callback did to this member's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// Partitions were assigned here.
    Assigned,
    /// Partitions were revoked cleanly (committed before they go).
    Revoked,
    /// Partitions were lost: the group moved them on before a clean revoke.
    Lost,
}

impl RebalanceEvent {
    /// The value of the `event` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RebalanceEvent::Assigned => "assigned",
            RebalanceEvent::Revoked => "revoked",
            RebalanceEvent::Lost => "lost",
        }
    }
}

/// A rebalance callback reported `event`.
pub fn rebalance(event: RebalanceEvent) {
    counter!(REBALANCES_TOTAL, LABEL_EVENT => event.as_str()).increment(1);
}
