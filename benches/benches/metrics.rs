//! What statestore's metrics cost (issue 26), with and without a Prometheus recorder, in
//! one run, on the two paths they sit on:
//!
//! - `logged_writes`: 100,000 puts of `customer-N` -> f64 into an active partition of a
//!   store manager (memory store, in-process changelog), then the manager's commit — the
//!   commit records its latency, the records written and the key estimate.
//! - `restore`: 1,000,000 changelog records from the in-process changelog into a fresh
//!   memory store through the restore driver — two atomic updates per batch.
//!
//! `without_recorder` is every application that installs no exporter (the facade finds
//! no recorder); `with_prometheus` installs `metrics-exporter-prometheus`'s recorder for
//! the measuring thread (`metrics::with_local_recorder`; everything here runs on it).
//!
//! The time reported is the measuring thread's CPU time, not wall time: this machine's
//! two cores are shared with other builds (with a compiler running, wall time differed by
//! 10-16% between the two sides, far more than the metric calls could cost); the work is
//! single-threaded (the in-process changelog and the memory store start no threads).
//! CPU time is steadier, not immune (caches, clock speed): the same side moved by up to
//! 10% between two runs. So the overhead is also printed from interleaved pairs, where
//! such drift moves both sides alike, and `one_labelled_counter` gives the cost of one
//! metric call to multiply by the calls an operation makes.
//!
//! `cargo bench -p benches --bench metrics --profile dev -- --noplot`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backend_memory::MemorySupplier;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::executor::block_on;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use nix::time::{ClockId, clock_gettime};
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ByteStore, Changelog, KeyValueBytesStoreSupplier, KeyValueStore, NoopRestoreListener,
    RESTORE_ISOLATION, RestoreOptions, Serdes, SinkOptions, StoreBuilder, StoreContext,
    StoreHandle, StoreManager, TopicSpec, TypedKeyValueStore, restore,
};

const PUTS: usize = 100_000;
const RESTORED: usize = 1_000_000;
const TOPIC: &str = "bench-rewards-changelog";

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("the thread CPU clock")
        .into()
}

/// The CPU time of `iters` runs of `routine`, each on a fresh input from `setup` (neither
/// `setup` nor dropping the output is counted).
fn cpu_time<I, O>(iters: u64, setup: impl Fn() -> I, mut routine: impl FnMut(I) -> O) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let input = setup();
        let started = thread_cpu();
        let output = routine(input);
        total += thread_cpu() - started;
        drop(output);
    }
    total
}

/// Runs `f` with `recorder` installed for this thread, or with none.
fn recording<T>(recorder: Option<&PrometheusRecorder>, f: impl FnOnce() -> T) -> T {
    match recorder {
        Some(recorder) => metrics::with_local_recorder(recorder, f),
        None => f(),
    }
}

/// A store manager on a fresh in-process changelog with partition 0 active (its restore
/// found nothing), and the directory it lives in.
fn active_manager() -> (
    Arc<StoreManager>,
    StoreHandle<String, f64>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let changelog = InMemoryChangelog::new();
    let context = StoreContext::new("bench", 0, 1, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let mut manager = StoreManager::new(context);
    let handle = manager
        .add_store(StoreBuilder::new(
            MemorySupplier::new("rewards"),
            Serdes::string(),
            Serdes::f64(),
        ))
        .unwrap();
    manager
        .use_sink(Arc::new(
            changelog.sink_now(&SinkOptions::default()).unwrap(),
        ))
        .unwrap();
    let manager = Arc::new(manager);
    for (_, restored) in block_on(manager.assign_all(&[0])) {
        restored.unwrap();
    }
    (manager, handle, dir)
}

/// 100,000 puts into active partition 0 of `manager`, then its commit.
fn puts_then_commit(keys: &[String], manager: &StoreManager, handle: &StoreHandle<String, f64>) {
    block_on(async {
        {
            let active = manager.active(0).await.unwrap();
            let store = active.store(handle).unwrap();
            for (i, key) in keys.iter().enumerate() {
                store.put(key, &(i as f64)).unwrap();
            }
        }
        manager.commit().await.unwrap();
    });
}

fn logged_writes(c: &mut Criterion, recorder: &PrometheusRecorder) {
    let keys: Vec<String> = (0..PUTS).map(|i| format!("customer-{i}")).collect();
    let run = |(manager, handle, dir): (Arc<StoreManager>, _, _),
               recorder: Option<&PrometheusRecorder>| {
        recording(recorder, || puts_then_commit(&keys, &manager, &handle));
        (manager, dir)
    };
    let mut group = c.benchmark_group("metrics/100k_puts_then_commit");
    group.sample_size(30);
    group.throughput(Throughput::Elements(PUTS as u64));
    for (side, recorder) in sides(recorder) {
        group.bench_function(side, |b| {
            b.iter_custom(|iters| cpu_time(iters, active_manager, |input| run(input, recorder)));
        });
    }
    group.finish();
    paired("100k puts + commit", 40, recorder, active_manager, run);
}

/// The two sides: no recorder, and the Prometheus one.
fn sides(recorder: &PrometheusRecorder) -> [(&'static str, Option<&PrometheusRecorder>); 2] {
    [
        ("without_recorder", None),
        ("with_prometheus", Some(recorder)),
    ]
}

/// Prints the overhead of `recorder` on `routine` from `pairs` runs of each side,
/// interleaved (ABBA, so neither side always runs first on a warmer heap) on fresh
/// inputs: the median of the pairs' ratios, in CPU time. Drift over the run (other work
/// on the machine) moves both halves of a pair alike.
fn paired<I, O>(
    what: &str,
    pairs: usize,
    recorder: &PrometheusRecorder,
    setup: impl Fn() -> I,
    routine: impl Fn(I, Option<&PrometheusRecorder>) -> O,
) {
    let mut ratios = Vec::with_capacity(pairs);
    let (mut without, mut with) = (Duration::ZERO, Duration::ZERO);
    for pair in 0..pairs {
        let time =
            |side: Option<&PrometheusRecorder>| cpu_time(1, &setup, |input| routine(input, side));
        let (a, b) = if pair % 2 == 0 {
            let a = time(None);
            (a, time(Some(recorder)))
        } else {
            let b = time(Some(recorder));
            (time(None), b)
        };
        without += a;
        with += b;
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "metrics overhead on {what}: {:+.2}% (median of {pairs} interleaved pairs, CPU time; \
         totals {:.3} s without, {:.3} s with)",
        (median - 1.0) * 100.0,
        without.as_secs_f64(),
        with.as_secs_f64()
    );
}

/// An in-process changelog holding `RESTORED` records of distinct keys in partition 0.
fn filled_changelog() -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    let spec = TopicSpec::changelog(TOPIC, 1, &BTreeMap::new());
    block_on(changelog.ensure_topic(&spec)).unwrap();
    let sink = block_on(changelog.sink(&SinkOptions::default())).unwrap();
    let store = MemorySupplier::new("rewards")
        .open(&std::env::temp_dir())
        .unwrap();
    let mut typed = TypedKeyValueStore::new(
        ByteStore::wrap(store, Some((&sink, TOPIC)), 0),
        Arc::new(Serdes::string()),
        Arc::new(Serdes::f64()),
        None,
    );
    for i in 0..RESTORED {
        typed.put(&format!("customer-{i}"), &(i as f64)).unwrap();
    }
    block_on(typed.commit()).unwrap();
    changelog
}

fn restores(c: &mut Criterion, recorder: &PrometheusRecorder) {
    let changelog = filled_changelog();
    let reader = changelog.reader_now(TOPIC, RESTORE_ISOLATION).unwrap();
    let options = RestoreOptions::default();
    let fresh = || -> Arc<dyn KeyValueStore> {
        MemorySupplier::new("rewards")
            .open(&std::env::temp_dir())
            .unwrap()
    };
    let run = |store: Arc<dyn KeyValueStore>, recorder: Option<&PrometheusRecorder>| {
        let summary = recording(recorder, || {
            block_on(restore(
                store.as_ref(),
                &reader,
                0,
                &options,
                &NoopRestoreListener,
            ))
        })
        .unwrap();
        assert_eq!(summary.restored, RESTORED as u64);
        store
    };
    let mut group = c.benchmark_group("metrics/restore_1M");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RESTORED as u64));
    for (side, recorder) in sides(recorder) {
        group.bench_function(side, |b| {
            b.iter_custom(|iters| cpu_time(iters, fresh, |store| run(store, recorder)));
        });
    }
    group.finish();
    paired("restore of 1M records", 20, recorder, fresh, run);
}

/// One labelled counter looked up and incremented, as each hook does at most a few times
/// per commit or restore (a restore's batches update handles looked up once): the cost
/// per call, to multiply by the calls an operation makes.
fn one_lookup(c: &mut Criterion, recorder: &PrometheusRecorder) {
    let mut group = c.benchmark_group("metrics/one_labelled_counter");
    for (side, recorder) in sides(recorder) {
        group.bench_function(side, |b| {
            recording(recorder, || {
                b.iter(|| {
                    metrics::counter!(
                        state_core::metrics::CHANGELOG_RECORDS_WRITTEN_TOTAL,
                        "store" => "rewards".to_owned(),
                        "partition" => 0.to_string()
                    )
                    .increment(1);
                });
            });
        });
    }
    group.finish();
}

fn metrics_overhead(c: &mut Criterion) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    one_lookup(c, &recorder);
    logged_writes(c, &recorder);
    restores(c, &recorder);
    // The recorded side did record: otherwise it measured nothing.
    let text = handle.render();
    for name in [
        state_core::metrics::RESTORE_RECORDS_TOTAL,
        state_core::metrics::COMMIT_LATENCY_SECONDS,
        state_core::metrics::CHANGELOG_RECORDS_WRITTEN_TOTAL,
    ] {
        assert!(text.contains(name), "{name} was not recorded:\n{text}");
    }
}

criterion_group!(benches, metrics_overhead);
criterion_main!(benches);
