//! `statestore demo`: the rewards workload, a crash, a relocation, and a check.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use changelog_kafka::EmbeddedKafka;
use indicatif::ProgressBar;
use state_core::{
    Changelog, Error, ProcessingGuarantee, Result, Serdes, StoreBuilder, StoreContext,
    TypedKeyValueStore,
};

use crate::backend::Backend;
use crate::committed_view::CommittedView;
use crate::demo_snapshots::{self, Relocation, Snapshotter};
use crate::progress::{self, BarListener};
use crate::workload::{self, MOCK_MESSAGE_SETS, MOCK_PARTITION_BYTES};
use crate::{errors, kafka};

const STORE: &str = "rewards";

/// What `statestore demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Backend of instance A.
    pub backend: Backend,
    /// Backend of instance B (`None`: the same).
    pub relocate_to: Option<Backend>,
    /// A real cluster; `None` runs the embedded mock.
    pub bootstrap_servers: Option<String>,
    /// Input and changelog partitions.
    pub partitions: i32,
    /// Purchases in the stream.
    pub purchases: u64,
    /// Purchases per partition between commits.
    pub commit_every: u64,
    /// Parent of both instances' state directories (`None`: a temporary directory).
    pub state_dir: Option<PathBuf>,
    /// Kafka metadata timeout.
    pub timeout: Duration,
    /// Instance A snapshots into this URL and B relocates from the snapshots, compared
    /// with a full replay ([`demo_snapshots`]).
    pub snapshots: Option<String>,
}

/// Counts for the final table.
#[derive(Debug, Default)]
struct Tally {
    written: u64,
    committed: u64,
    restored: u64,
    /// From the first partition's restore start to the last one's end.
    restore_time: Duration,
}

/// One instance's stores, one per partition, and its input positions.
struct Instance {
    stores: Vec<TypedKeyValueStore<String, f64>>,
    /// Purchases of each partition read so far (the input position).
    position: Vec<u64>,
    /// Purchases of each partition covered by the last successful commit.
    committed: Vec<u64>,
    /// One past the changelog offset of each partition's last successful commit.
    changelog_ends: BTreeMap<i32, i64>,
    /// Where it snapshots its partitions, if it does.
    snapshots: Option<Snapshotter>,
}

/// Runs the demo; `Ok(false)` when the totals do not match.
pub async fn run(options: &DemoOptions) -> Result<bool> {
    let counts = workload::counts(options.purchases, options.partitions);
    let (mock, changelog, servers) = match &options.bootstrap_servers {
        Some(servers) => {
            println!("changelog: Kafka cluster at {servers}");
            let changelog: Arc<dyn Changelog> =
                Arc::new(kafka::changelog(servers, options.timeout)?);
            (None, changelog, servers.clone())
        }
        None => {
            check_mock_size(options, &counts)?;
            let (mock, changelog) = mock_changelog(options.timeout)?;
            let servers = mock.bootstrap_servers().to_owned();
            println!(
                "changelog: embedded broker at {servers} — librdkafka's MOCK cluster, not Kafka: \
                 no compaction, no transaction markers, and it drops a partition's oldest data \
                 past 5 MiB (use --bootstrap-servers for a real cluster)"
            );
            (Some(mock), changelog, servers)
        }
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let application_id = format!("statestore-demo-{}-{nanos}", std::process::id());
    let _temp;
    let root = match &options.state_dir {
        Some(dir) => dir.join(&application_id),
        None => {
            let temp = crate::exit::temp_dir()?;
            let root = temp.path().to_owned();
            _temp = temp;
            root
        }
    };
    let relocate_to = options.relocate_to.unwrap_or(options.backend);
    println!(
        "application {application_id}: {} purchases over {} partitions, commit every {} per partition, exactly-once",
        options.purchases, options.partitions, options.commit_every
    );
    let crash_at = crash_point(options.purchases, options.commit_every);
    let total_b = options.purchases;
    let writing = progress::bar(crash_at + total_b, "writing", "purchases");
    let mut tally = Tally::default();
    let kafka_err = |err: Error| errors::kafka(err, &servers, None);

    // Instance A: its own state directory; killed mid-stream.
    let context = |dir: &str,
                   partition: usize,
                   changelog: &Arc<dyn Changelog>,
                   listener: Option<Arc<BarListener>>| {
        let mut context = StoreContext::new(
            &application_id,
            partition as i32,
            options.partitions,
            root.join(dir),
        )?
        .with_changelog(changelog.clone())
        .with_guarantee(ProcessingGuarantee::ExactlyOnce);
        if let Some(listener) = listener {
            context = context.with_restore_listener(listener);
        }
        Ok::<_, Error>(context)
    };
    let builder_a = builder(options.backend)?;
    let mut a = Instance::new(options.partitions);
    if let Some(url) = &options.snapshots {
        let scratch = root.join("a").join(".snapshots");
        let snapshotter = Snapshotter::open(
            url,
            &application_id,
            STORE,
            scratch,
            a.position.len(),
            options.timeout,
        );
        a.snapshots = Some(snapshotter.await?);
    }
    for p in 0..a.position.len() {
        a.stores.push(
            builder_a
                .build(&context("a", p, &changelog, None)?)
                .await
                .map_err(kafka_err)?,
        );
    }
    a.process(0, crash_at, options, &mut tally, &writing)
        .await
        .map_err(kafka_err)?;
    let uncommitted: u64 = a
        .position
        .iter()
        .zip(&a.committed)
        .map(|(s, c)| s - c)
        .sum();
    writing.suspend(|| println!(
        "instance A ({}) processed {crash_at} purchases, committed {}, killed with {uncommitted} uncommitted",
        options.backend.name(),
        a.committed.iter().sum::<u64>()
    ))
    ;
    if let Some(snapshots) = &a.snapshots {
        println!("{}", snapshots.describe());
    }
    let snapshot_store = a.snapshots.as_ref().map(Snapshotter::store);
    let committed = a.committed.clone();
    let changelog_ends = a.changelog_ends.clone();
    drop(a); // the crash: no commit, no close
    if mock.is_some() {
        println!(
            "the mock writes no transaction markers: instance B reads each changelog partition \
             only up to instance A's last committed offset, as read_committed does on Kafka"
        );
    }
    let changelog_b: Arc<dyn Changelog> = if mock.is_some() {
        Arc::new(CommittedView::new(changelog.clone(), changelog_ends))
    } else {
        changelog.clone()
    };

    // Instance B: a new state directory; opens every partition at once, each restoring
    // from the changelog, as a consumer-group member does when partitions are assigned.
    let listener = Arc::new(BarListener::new());
    let builder_b = Arc::new(builder(relocate_to)?);
    let mut b = Instance::new(options.partitions);
    b.committed.clone_from(&committed);
    let started = Instant::now();
    let mut opening = Vec::with_capacity(b.position.len());
    for p in 0..b.position.len() {
        let mut context = context("b", p, &changelog_b, Some(listener.clone()))?;
        if let Some(store) = &snapshot_store {
            context = context.with_snapshots(store.clone());
        }
        let builder = builder_b.clone();
        opening.push(tokio::spawn(async move { builder.build(&context).await }));
    }
    for task in opening {
        let store = task
            .await
            .map_err(|err| Error::internal(format!("opening a store of instance B: {err}")))?
            .map_err(kafka_err)?;
        tally.restored += store.restore_summary().map_or(0, |s| s.restored);
        b.stores.push(store);
    }
    let opened = started.elapsed();
    listener.finish();
    for line in listener.wiped().into_iter().chain(listener.fallbacks()) {
        println!("{line}");
    }
    let (setup, spread) = {
        let intervals = listener.intervals();
        tally.restore_time = intervals.busy();
        (
            intervals
                .first_start()
                .map_or(opened, |first| first.saturating_duration_since(started)),
            intervals.shortest_and_longest(),
        )
    };
    writing.suspend(|| {
        println!(
            "instance B ({}) opened {} partitions in a new state directory in {opened:.2?}:",
            relocate_to.name(),
            b.stores.len(),
        );
        println!(
            "  {setup:.2?} before the first restore began: checking the changelog topic and \
             fencing instance A's producers (a new transactional producer waits until A's \
             open transactions are aborted)"
        );
        let each = spread.map_or(String::new(), |(lo, hi)| {
            format!(" (each partition {lo:.2?} to {hi:.2?})")
        });
        println!(
            "  {:.2?} restoring {} changelog records, partitions in parallel{each}",
            tally.restore_time, tally.restored
        );
        let rest = opened.saturating_sub(setup + tally.restore_time);
        if rest >= Duration::from_millis(1) {
            println!(
                "  {rest:.2?} with no restore running: partitions whose producers were fenced \
                 later waiting to start, and opening the stores"
            );
        }
    });
    let replay_equal = match &snapshot_store {
        Some(_) => compare_with_full_replay(
            &b,
            &changelog_b,
            &application_id,
            relocate_to,
            options,
            &root,
        )
        .await
        .map_err(kafka_err)?,
        None => true,
    };
    b.process(0, total_b, options, &mut tally, &writing)
        .await
        .map_err(kafka_err)?;
    for store in &mut b.stores {
        tally.committed += store.commit().await.map_err(kafka_err)?.records as u64;
    }
    writing.finish_and_clear();

    let expected = workload::expected_totals(options.purchases);
    let mut actual = BTreeMap::new();
    for store in &b.stores {
        for entry in store.all()? {
            let (customer, total) = entry?;
            actual.insert(customer, total);
        }
    }
    let verified = actual == expected;
    print_table(&tally, verified, options.purchases, actual.len());
    if !replay_equal {
        println!(
            "NOT verified: instance B's stores restored from snapshots differ from a full replay of the changelog"
        );
    }
    if mock.is_some() {
        println!(
            "(restore rate on librdkafka's embedded mock broker, with small partitions: \
             BENCHMARKS.md measures restores on a real broker; --bootstrap-servers runs this \
             demo on one)"
        );
    }
    Ok(verified && replay_equal)
}

/// Replays the changelog B just restored in full into a new directory, prints the two
/// relocations side by side, and says whether B's stores equal the replay's.
async fn compare_with_full_replay(
    b: &Instance,
    changelog: &Arc<dyn Changelog>,
    application_id: &str,
    backend: Backend,
    options: &DemoOptions,
    root: &std::path::Path,
) -> Result<bool> {
    let mut from_snapshots = Relocation::default();
    for store in &b.stores {
        if let Some(summary) = store.restore_summary() {
            from_snapshots.add(summary);
        }
    }
    println!(
        "for comparison: a full replay of the same changelog into new {} stores",
        backend.name()
    );
    let (replay, replayed) = demo_snapshots::full_replay(
        changelog,
        application_id,
        STORE,
        backend,
        options.partitions,
        &root.join("replay"),
    )
    .await?;
    let mut equal = replayed.len() == b.stores.len();
    for (store, replayed) in b.stores.iter().zip(&replayed) {
        equal &= demo_snapshots::contents(store.committed().as_ref())? == *replayed;
    }
    demo_snapshots::print_comparison(&from_snapshots, &replay, equal);
    Ok(equal)
}

impl Instance {
    fn new(partitions: i32) -> Self {
        let n = partitions.max(1) as usize;
        Self {
            stores: Vec::with_capacity(n),
            position: vec![0; n],
            committed: vec![0; n],
            changelog_ends: BTreeMap::new(),
            snapshots: None,
        }
    }

    /// Processes purchases `from..to`, skipping input each partition's last commit
    /// covers, committing every `commit_every` purchases per partition.
    async fn process(
        &mut self,
        from: u64,
        to: u64,
        options: &DemoOptions,
        tally: &mut Tally,
        bar: &ProgressBar,
    ) -> Result<()> {
        for i in from..to {
            let (customer, amount) = workload::purchase(i);
            let p = workload::partition_of(customer, options.partitions);
            bar.inc(1);
            self.position[p] += 1;
            if self.position[p] <= self.committed[p] {
                continue;
            }
            let store = &mut self.stores[p];
            let key = workload::customer_name(customer);
            let total = store.get(&key)?.unwrap_or(0.0) + workload::points(amount);
            store.put(&key, &total)?;
            tally.written += 1;
            if self.position[p].is_multiple_of(options.commit_every) {
                let commit = store.commit().await?;
                tally.committed += commit.records as u64;
                self.committed[p] = self.position[p];
                if let Some(offset) = commit.position.applied(p as i32) {
                    self.changelog_ends.insert(p as i32, offset + 1);
                }
                if let Some(snapshots) = &mut self.snapshots {
                    snapshots.after_commit(p, store.committed()).await?;
                }
            }
        }
        Ok(())
    }
}

fn builder(backend: Backend) -> Result<StoreBuilder<String, f64>> {
    Ok(
        StoreBuilder::new(backend.supplier(STORE), Serdes::string(), Serdes::f64())
            .with_logging_enabled(HashMap::new()),
    )
}

/// Where instance A dies: two thirds in, off any commit boundary.
pub(crate) fn crash_point(purchases: u64, commit_every: u64) -> u64 {
    (purchases * 2 / 3 + commit_every / 2 + 7).min(purchases.saturating_sub(1))
}

/// The mock, and a changelog on it.
fn mock_changelog(timeout: Duration) -> Result<(EmbeddedKafka, Arc<dyn Changelog>)> {
    let mock = EmbeddedKafka::start(1)?;
    let config = mock
        .config()
        .with_client_id("statestore-cli")
        .with_metadata_timeout(timeout);
    let changelog: Arc<dyn Changelog> = Arc::new(mock.changelog_with(config)?);
    Ok((mock, changelog))
}

fn check_mock_size(options: &DemoOptions, counts: &[u64]) -> Result<()> {
    for (p, &count) in counts.iter().enumerate() {
        let (bytes, batches) = workload::changelog_size(count, options.commit_every);
        if bytes > MOCK_PARTITION_BYTES || batches > MOCK_MESSAGE_SETS {
            return Err(Error::invalid_input(format!(
                "--purchases {} over {} partitions writes about {:.1} MiB ({batches} batches) to \
                 changelog partition {p}, but the embedded mock broker keeps only 5 MiB and \
                 {MOCK_MESSAGE_SETS} batches per partition and silently drops older data; use \
                 fewer purchases, more partitions, or --bootstrap-servers with a real cluster",
                options.purchases,
                options.partitions,
                bytes as f64 / (1024.0 * 1024.0)
            )));
        }
    }
    Ok(())
}

fn print_table(tally: &Tally, verified: bool, purchases: u64, customers: usize) {
    let secs = tally.restore_time.as_secs_f64();
    let rate = if secs > 0.0 {
        tally.restored as f64 / secs
    } else {
        0.0
    };
    println!();
    println!("  records written      {:>12}", tally.written);
    println!("  records committed    {:>12}", tally.committed);
    println!("  records restored     {:>12}", tally.restored);
    println!("  restore time         {:>12.3} s", secs);
    println!("  restore rate         {:>12.0} records/s", rate);
    println!(
        "  verified             {:>12}",
        if verified { "yes" } else { "NO" }
    );
    if verified {
        println!(
            "verified: the totals of {customers} customers equal an independent computation over all {purchases} purchases"
        );
    } else {
        println!(
            "NOT verified: the totals differ from an independent computation over all {purchases} purchases"
        );
    }
}
