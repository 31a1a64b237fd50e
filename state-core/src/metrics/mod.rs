//! Every metric statestore emits, by name, and the functions that record them.
//!
//! The library records through the [`metrics`](https://docs.rs/metrics) facade, which
//! costs one check of an unset recorder until the application installs one (for example
//! `metrics-exporter-prometheus`); the application picks the exporter. Names live here
//! and nowhere else: the rest of the crate calls the functions of this module, one line
//! per hook. Call [`describe`] once after installing a recorder to give every metric its
//! help text and unit.
//!
//! Labels: `store` is the store name, `partition` the changelog (= input) partition as
//! a decimal string. Names are Prometheus' snake case with the unit last; Kafka Streams'
//! name is given where one exists.
//!
//! | name | type | unit | labels | Kafka Streams | updated |
//! | --- | --- | --- | --- | --- | --- |
//! | `statestore_restore_records_total` | counter | records | store, partition | `restore-total`; `restore-rate` is `rate(statestore_restore_records_total[1m])` | after each restored batch |
//! | `statestore_restore_remaining_records` | gauge | records | store, partition | `restore-remaining-records-total` | at restore start and after each batch; 0 once the restore ends or stops |
//! | `statestore_restores_total` | counter | restores | store, partition | — | when a restore with records to apply starts |
//! | `statestore_restore_duration_seconds` | histogram | seconds | store, partition | — | when a restore finishes |
//! | `statestore_standby_record_lag` | gauge | records | store, partition | `record-lag` of standby tasks | by [`StoreManager::standby_lags`](crate::StoreManager::standby_lags) (every 5 s by a `changelog-kafka` consumer group's standby updater); 0 when the standby closes or is promoted |
//! | `statestore_standby_records_applied_total` | counter | records | store, partition | `update-total` (`update-rate` is its rate) | after each batch a standby tails |
//! | `statestore_commit_latency_seconds` | histogram | seconds | — | `commit-latency-avg` (`_sum / _count`), `commit-latency-max` | after each [`StoreManager::commit`](crate::StoreManager::commit) (revokes and closes commit too) |
//! | `statestore_commits_total` | counter | commits | result (`ok`, `error`) | `commit-total` (`result="ok"`) | with the commit latency |
//! | `statestore_changelog_records_written_total` | counter | records | store, partition | — | per store at each commit that wrote records |
//! | `statestore_estimate_num_keys` | gauge | keys | store, partition | `estimate-num-keys` | at each commit that wrote records, each restore's end and each standby batch |
//! | `statestore_partitions` | gauge | partitions | state (`restoring`, `active`, `standby`) | — | at every partition state change of a [`StoreManager`](crate::StoreManager) |
//! | `statestore_rebalances_total` | counter | events | event (`assigned`, `revoked`, `lost`) | — | at each consumer-group rebalance callback (`changelog-kafka`) |
//!
//! - A standby's first catch-up runs the restore driver and is counted by the restore
//!   metrics; the records it tails afterwards are counted by
//!   `statestore_standby_records_applied_total`, so each replayed record counts once.
//! - Histograms are rendered by `metrics-exporter-prometheus` as summaries (quantiles,
//!   `_sum`, `_count`) unless the application configures buckets.
//! - Nothing is counted per write: records written are counted at commit from the write
//!   buffer's length, and the key estimate is refreshed only when records were applied.
//!
//! `tracing` spans, for the application's subscriber: `restore` (store, topic,
//! partition, from, to, records), `commit` (partitions, records), `standby_open`,
//! `standby_close` and `standby_update` (partition, records), and `rebalance` (event,
//! partitions) in `changelog-kafka`.

mod record;

pub(crate) use record::{
    CommitTimer, RestoreMetrics, partition_moved, standby_applied, standby_lag, store_committed,
};
pub use record::{RebalanceEvent, rebalance};

use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Counter: changelog records applied by the restore driver (Kafka Streams `restore-total`).
pub const RESTORE_RECORDS_TOTAL: &str = "statestore_restore_records_total";
/// Gauge: offsets left to restore in the running restore (Kafka Streams
/// `restore-remaining-records-total`); an upper bound, as offsets have gaps.
pub const RESTORE_REMAINING_RECORDS: &str = "statestore_restore_remaining_records";
/// Counter: restores started that had records to apply.
pub const RESTORES_TOTAL: &str = "statestore_restores_total";
/// Histogram: wall time of each finished restore.
pub const RESTORE_DURATION_SECONDS: &str = "statestore_restore_duration_seconds";
/// Gauge: offsets a standby is behind its changelog's end (Kafka Streams `record-lag`).
pub const STANDBY_RECORD_LAG: &str = "statestore_standby_record_lag";
/// Counter: records a standby applied while tailing its changelog after its catch-up.
pub const STANDBY_RECORDS_APPLIED_TOTAL: &str = "statestore_standby_records_applied_total";
/// Histogram: wall time of each store manager commit (Kafka Streams `commit-latency-*`).
pub const COMMIT_LATENCY_SECONDS: &str = "statestore_commit_latency_seconds";
/// Counter: store manager commits, by result (Kafka Streams `commit-total` is `ok`).
pub const COMMITS_TOTAL: &str = "statestore_commits_total";
/// Counter: changelog records a store made durable at commit.
pub const CHANGELOG_RECORDS_WRITTEN_TOTAL: &str = "statestore_changelog_records_written_total";
/// Gauge: the store's key estimate (Kafka Streams `estimate-num-keys`).
pub const ESTIMATE_NUM_KEYS: &str = "statestore_estimate_num_keys";
/// Gauge: partitions of this process's store managers in each state.
pub const PARTITIONS: &str = "statestore_partitions";
/// Counter: consumer-group rebalance callbacks, by event.
pub const REBALANCES_TOTAL: &str = "statestore_rebalances_total";

/// Label: the store name.
pub const LABEL_STORE: &str = "store";
/// Label: the changelog partition, in decimal.
pub const LABEL_PARTITION: &str = "partition";
/// Label of [`PARTITIONS`]: `restoring`, `active` or `standby`.
pub const LABEL_STATE: &str = "state";
/// Label of [`REBALANCES_TOTAL`]: `assigned`, `revoked` or `lost`.
pub const LABEL_EVENT: &str = "event";
/// Label of [`COMMITS_TOTAL`]: `ok` or `error`.
pub const LABEL_RESULT: &str = "result";

/// Gives every metric above its help text and unit in the installed recorder. Call it
/// once after installing one; without a recorder it does nothing.
pub fn describe() {
    describe_counter!(
        RESTORE_RECORDS_TOTAL,
        Unit::Count,
        "Changelog records applied by restores (restore rate: its rate())"
    );
    describe_gauge!(
        RESTORE_REMAINING_RECORDS,
        Unit::Count,
        "Offsets left to restore in the running restore, 0 when none runs"
    );
    describe_counter!(
        RESTORES_TOTAL,
        Unit::Count,
        "Restores started with records to apply"
    );
    describe_histogram!(
        RESTORE_DURATION_SECONDS,
        Unit::Seconds,
        "Wall time of each finished restore"
    );
    describe_gauge!(
        STANDBY_RECORD_LAG,
        Unit::Count,
        "Offsets a standby is behind its changelog end, as of the last standby_lags()"
    );
    describe_counter!(
        STANDBY_RECORDS_APPLIED_TOTAL,
        Unit::Count,
        "Records standbys applied while tailing their changelogs"
    );
    describe_histogram!(
        COMMIT_LATENCY_SECONDS,
        Unit::Seconds,
        "Wall time of each store manager commit"
    );
    describe_counter!(
        COMMITS_TOTAL,
        Unit::Count,
        "Store manager commits by result"
    );
    describe_counter!(
        CHANGELOG_RECORDS_WRITTEN_TOTAL,
        Unit::Count,
        "Changelog records made durable at commit"
    );
    describe_gauge!(
        ESTIMATE_NUM_KEYS,
        Unit::Count,
        "The store's estimate of its number of keys"
    );
    describe_gauge!(PARTITIONS, Unit::Count, "Partitions in each state");
    describe_counter!(
        REBALANCES_TOTAL,
        Unit::Count,
        "Consumer-group rebalance callbacks by event"
    );
}
