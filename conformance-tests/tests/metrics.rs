//! The metrics an operator scrapes, checked through the real Prometheus exporter and a
//! Prometheus text parser: a restore of a known changelog counts exactly its records, and
//! a standby with a known backlog reports exactly that lag. Every backend compiled in.
//!
//! The recorder is global (restores run on the runtime's worker threads, where a
//! thread-local recorder would not see them), so this file is its own test binary and
//! each test uses store names of its own.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use conformance_tests::{BackendFactory, backends, block_on, for_each_backend};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use prometheus_parse::{Scrape, Value};
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::metrics::{
    CHANGELOG_RECORDS_WRITTEN_TOTAL, ESTIMATE_NUM_KEYS, LABEL_PARTITION, LABEL_STATE, LABEL_STORE,
    PARTITIONS, RESTORE_RECORDS_TOTAL, RESTORE_REMAINING_RECORDS, RESTORES_TOTAL,
    STANDBY_RECORD_LAG, STANDBY_RECORDS_APPLIED_TOTAL,
};
use state_core::{
    Partition, ProcessingGuarantee, Serdes, SinkOptions, StoreBuilder, StoreContext, StoreHandle,
    StoreManager,
};
use tempfile::TempDir;

const APP: &str = "metrics-app";
const PARTITION_COUNT: i32 = 4;

/// The process's recorder, installed once for every test of this binary.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
        state_core::metrics::describe();
        handle
    })
}

/// The value of `metric` whose labels include every one of `labels`, from a scrape
/// parsed as Prometheus would; `None` when no such sample was exported.
fn scraped(metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = prometheus().render();
    let scrape = Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .unwrap_or_else(|err| panic!("the exporter's text does not parse: {err}\n{text}"));
    let sample = scrape.samples.into_iter().find(|s| {
        s.metric == metric
            && labels
                .iter()
                .all(|(name, value)| s.labels.get(name) == Some(*value))
    })?;
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        other => panic!("{metric} is not a number: {other:?}"),
    }
}

/// [`scraped`] for one store partition, which must have been exported.
fn of_store(metric: &str, store: &str, partition: Partition) -> f64 {
    let partition = partition.to_string();
    scraped(
        metric,
        &[(LABEL_STORE, store), (LABEL_PARTITION, partition.as_str())],
    )
    .unwrap_or_else(|| panic!("no {metric} for store {store} partition {partition}"))
}

/// One instance with one store, `store`, logging to `changelog` at least once.
struct Instance {
    manager: Arc<StoreManager>,
    store: StoreHandle<String, i64>,
    _dir: TempDir,
}

impl Instance {
    fn new(backend: &dyn BackendFactory, store: &str, changelog: &InMemoryChangelog) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (manager, store) = manager(backend, store, changelog, dir.path());
        Self {
            manager: Arc::new(manager),
            store,
            _dir: dir,
        }
    }

    /// Assigns `partition` and waits for its restore.
    fn assign(&self, partition: Partition) {
        for (p, restored) in block_on(self.manager.assign_all(&[partition])) {
            restored.unwrap_or_else(|err| panic!("assigning {p}: {err}"));
        }
    }

    /// Puts `count` new keys (starting at `first`) into active `partition` and commits.
    fn put_and_commit(&self, partition: Partition, first: usize, count: usize) {
        block_on(async {
            let active = self.manager.active(partition).await.expect("active");
            let store = active.store(&self.store).unwrap();
            for i in first..first + count {
                store.put(&format!("key-{i:06}"), &(i as i64)).unwrap();
            }
        });
        block_on(self.manager.commit()).unwrap();
    }
}

fn manager(
    backend: &dyn BackendFactory,
    store: &str,
    changelog: &InMemoryChangelog,
    dir: &Path,
) -> (StoreManager, StoreHandle<String, i64>) {
    let context = StoreContext::new(APP, 0, PARTITION_COUNT, dir)
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let mut manager = StoreManager::new(context);
    let handle = manager
        .add_store(StoreBuilder::new(
            backend.supplier(store),
            Serdes::string(),
            Serdes::i64(),
        ))
        .unwrap();
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, format!("{store}-sink"));
    manager
        .use_sink(Arc::new(changelog.sink_now(&options).unwrap()))
        .unwrap();
    (manager, handle)
}

fn each(test: impl Fn(&dyn BackendFactory)) {
    prometheus();
    for_each_backend(&backends(), test);
}

/// A partition restored from a changelog of N records counts exactly N restored records
/// in one restore, with nothing left and N keys estimated; the writer's commit counted
/// the same N records written.
#[test]
fn restore_counter_equals_the_records_restored() {
    const RECORDS: usize = 1_500;
    const P: Partition = 3;
    each(|backend| {
        let store = format!("restored-{}", backend.name());
        let changelog = InMemoryChangelog::new();
        let writer = Instance::new(backend, &store, &changelog);
        writer.assign(P);
        writer.put_and_commit(P, 0, RECORDS);
        let written = of_store(CHANGELOG_RECORDS_WRITTEN_TOTAL, &store, P);
        assert_eq!(written, RECORDS as f64, "records written at commit");
        // The writer's own restore found an empty changelog: nothing counted yet.
        assert_eq!(
            scraped(RESTORE_RECORDS_TOTAL, &[(LABEL_STORE, store.as_str())]),
            None
        );

        let reader = Instance::new(backend, &store, &changelog);
        reader.assign(P);
        assert_eq!(of_store(RESTORE_RECORDS_TOTAL, &store, P), RECORDS as f64);
        assert_eq!(of_store(RESTORES_TOTAL, &store, P), 1.0);
        assert_eq!(of_store(RESTORE_REMAINING_RECORDS, &store, P), 0.0);
        assert_eq!(of_store(ESTIMATE_NUM_KEYS, &store, P), RECORDS as f64);
    });
}

/// A standby whose changelog holds M records beyond its position reports a lag of
/// exactly M (and the same as `standby_lags()`) once `standby_lags()` runs; tailing them
/// counts M records applied and brings the lag to 0. (The key estimate is not checked
/// here: the owner in the same process exports the same store and partition labels.)
#[test]
fn standby_lag_gauge_equals_the_backlog() {
    const CAUGHT_UP: usize = 300;
    const BACKLOG: usize = 120;
    const P: Partition = 2;
    each(|backend| {
        let store = format!("standby-{}", backend.name());
        let changelog = InMemoryChangelog::new();
        let owner = Instance::new(backend, &store, &changelog);
        owner.assign(P);
        owner.put_and_commit(P, 0, CAUGHT_UP);

        let standby = Instance::new(backend, &store, &changelog);
        block_on(standby.manager.set_standbys(&[P].into())).unwrap();
        // The first update of a standby catches it up fully, through the restore driver.
        block_on(standby.manager.update_standbys()).unwrap();
        assert_eq!(lag_of(&standby.manager, &store, P), 0);
        assert_eq!(of_store(STANDBY_RECORD_LAG, &store, P), 0.0);
        assert_eq!(of_store(RESTORE_RECORDS_TOTAL, &store, P), CAUGHT_UP as f64);
        assert!(
            scraped(PARTITIONS, &[(LABEL_STATE, "standby")]).unwrap_or(0.0) >= 1.0,
            "a standby partition counted"
        );

        // Updates stopped: the owner commits a backlog the standby has not read.
        owner.put_and_commit(P, CAUGHT_UP, BACKLOG);
        assert_eq!(lag_of(&standby.manager, &store, P), BACKLOG as u64);
        assert_eq!(of_store(STANDBY_RECORD_LAG, &store, P), BACKLOG as f64);

        // Each update reads at most one batch: bounded rounds, each waiting at most the
        // reader's poll timeout, until the standby has tailed the backlog.
        let mut rounds = 0;
        while lag_of(&standby.manager, &store, P) > 0 {
            rounds += 1;
            assert!(rounds <= 1_000, "the standby never caught up");
            block_on(standby.manager.update_standbys()).unwrap();
        }
        assert_eq!(of_store(STANDBY_RECORD_LAG, &store, P), 0.0);
        assert_eq!(
            of_store(STANDBY_RECORDS_APPLIED_TOTAL, &store, P),
            BACKLOG as f64
        );
    });
}

/// The standby lag of `store` partition `partition` from `standby_lags()`, which also
/// refreshes the gauge.
fn lag_of(manager: &StoreManager, store: &str, partition: Partition) -> u64 {
    block_on(manager.standby_lags())
        .unwrap()
        .into_iter()
        .find(|l| l.partition == partition && l.store == store)
        .expect("a standby")
        .lag
}

/// A consumer joining a group on the real broker counts an `assigned` rebalance; closing
/// it (unsubscribe: a clean revoke) counts a `revoked` one. Only this test consumes from
/// a group in this binary, so nothing else moves these counters.
#[cfg(feature = "kafka")]
#[test]
fn rebalance_events_are_counted() {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use changelog_kafka::group::NoopGroupListener;
    use changelog_kafka::{GroupConfig, KafkaChangelog, KafkaChangelogConfig, StatefulConsumer};
    use state_core::metrics::{LABEL_EVENT, REBALANCES_TOTAL};
    use state_core::{Changelog, TopicSpec};

    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    prometheus();
    let events = |event: &str| scraped(REBALANCES_TOTAL, &[(LABEL_EVENT, event)]).unwrap_or(0.0);
    let (assigned, revoked) = (events("assigned"), events("revoked"));

    let kafka = KafkaChangelogConfig::new(bootstrap);
    let changelog = Arc::new(KafkaChangelog::new(kafka.clone()).unwrap());
    let input = test_support::unique_name("metrics-input");
    let app = test_support::unique_name("metrics-app");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(changelog.ensure_topic(&TopicSpec::changelog(&input, 2, &BTreeMap::new())))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new(&app, 0, 2, dir.path())
        .unwrap()
        .with_changelog(changelog);
    let mut manager = StoreManager::new(context);
    let backend = conformance_tests::backend("memory").unwrap();
    manager
        .add_store(StoreBuilder::new(
            backend.supplier("rebalanced"),
            Serdes::string(),
            Serdes::i64(),
        ))
        .unwrap();
    let config = GroupConfig::new(kafka, &app, &input);
    let mut consumer = StatefulConsumer::new(
        &config,
        Arc::new(manager),
        runtime.handle().clone(),
        Arc::new(NoopGroupListener),
    )
    .unwrap();
    test_support::eventually(Duration::from_secs(60), "both partitions assigned", || {
        consumer
            .poll(Duration::from_millis(100), |_, _| Ok(()))
            .unwrap();
        consumer.assigned_partitions().len() == 2
    });
    assert!(events("assigned") >= assigned + 1.0, "assigned counted");
    consumer.close().unwrap();
    assert!(events("revoked") >= revoked + 1.0, "revoked counted");
}
