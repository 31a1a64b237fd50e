//! The README's scale-out, run for real against a Kafka broker: `instance` below is the
//! README's snippet line for line (`tests/scale_out.rs` keeps the two equal and runs this
//! example's `run` against the test broker).
//!
//! The program creates an input topic of 6 partitions, produces a first wave of purchases
//! and starts one instance, which owns every partition. Once that wave is committed it
//! starts a second instance: the group rebalances and partitions move to it with their
//! stores (restored from their changelogs, or promoted from the standby each instance
//! keeps under `StandbyPolicy::Replicas(1)`). A second wave is produced and processed by
//! both; then both stop, and every partition's stores are restored from their changelogs
//! into fresh in-memory stores and compared with totals computed from the purchases
//! alone: exactly-once, each purchase counts once, however the partitions moved.
//!
//! Run: `cargo run -p statestore --features kafka,redb --example scale_out` with a broker
//! at `KAFKA_BOOTSTRAP_SERVERS` (default `127.0.0.1:9092`).

// --- the README's snippet (tests/scale_out.rs checks it is equal) ---
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use statestore::Serde;
use statestore::kafka::{
    GroupConfig, KafkaChangelog, KafkaChangelogConfig, NoopGroupListener, StandbyPolicy,
    StatefulConsumer,
};
use statestore::prelude::*;

/// One instance of the shop: serves its share of the 6 partitions of `input` (and a
/// standby copy of others) until `stop` is set, then commits and leaves.
/// Call it on a plain thread, never inside an async runtime.
pub fn instance(
    bootstrap: &str,
    app: &str,
    input: &str,
    id: &str,
    dir: &Path,
    stop: &AtomicBool,
) -> Result<()> {
    // Restores and commits run on this runtime; the consumer is polled on this thread.
    let runtime = tokio::runtime::Runtime::new()?;
    let kafka = KafkaChangelogConfig::new(bootstrap);
    let context = StoreContext::new(app, 0, 6, dir)? // 6 input partitions
        .with_changelog(Arc::new(KafkaChangelog::new(kafka.clone())?))
        .with_guarantee(ProcessingGuarantee::ExactlyOnce);
    let mut manager = StoreManager::new(context).with_max_parallel_restores(2);
    let rewards = manager.add_store(Stores::key_value_store_builder(
        Stores::redb_key_value_store("rewards"),
        Serdes::string(),
        Serdes::f64(),
    ))?;
    let visits = manager.add_store(Stores::key_value_store_builder(
        Stores::redb_key_value_store("visits"),
        Serdes::string(),
        Serdes::i64(),
    ))?;
    let manager = Arc::new(manager);
    let config = GroupConfig::new(kafka, app, input)
        .with_standbys(StandbyPolicy::Replicas(1)) // num.standby.replicas = 1
        .with_instance_id(id); // static membership (group.instance.id)
    let listener = Arc::new(NoopGroupListener);
    let mut consumer = StatefulConsumer::new(&config, manager, runtime.handle().clone(), listener)?;
    while !stop.load(Ordering::Relaxed) {
        consumer.poll(Duration::from_millis(100), |purchase, partition| {
            // The record's partition, restored in every store.
            let (totals, counts) = (partition.store(&rewards)?, partition.store(&visits)?);
            let customer = String::from_utf8_lossy(purchase.key.unwrap_or_default());
            let customer = customer.into_owned();
            let amount = Serdes::f64().deserialize(purchase.value.unwrap_or_default())?;
            totals.put(&customer, &(totals.get(&customer)?.unwrap_or(0.0) + amount))?;
            counts.put(&customer, &(counts.get(&customer)?.unwrap_or(0) + 1))
        })?;
    }
    consumer.close() // commits, then keeps the directories for a restart
}
// --- end of the README's snippet ---

use std::collections::BTreeMap;
use std::thread::JoinHandle;
use std::time::Instant;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Input partitions, as in `instance`.
const PARTITIONS: i32 = 6;
/// Purchases in each of the two waves.
const WAVE: usize = 3_000;
const CUSTOMERS: [&str; 7] = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
/// How long a wave may take to be processed and committed.
const WAVE_TIMEOUT: Duration = Duration::from_secs(120);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the run ended with: per customer, the total spent and the purchases counted.
#[derive(Debug)]
pub struct Outcome {
    /// Computed from the purchases produced.
    pub expected: BTreeMap<String, (f64, i64)>,
    /// Restored from the changelogs of both stores of every partition.
    pub restored: BTreeMap<String, (f64, i64)>,
    /// Purchases produced.
    pub purchases: usize,
}

/// A deterministic purchase: (customer, amount). Whole amounts, so every sum is exact in
/// any order (the partitions' totals are added up in another order than the purchases').
fn purchase(i: usize) -> (&'static str, f64) {
    let customer = CUSTOMERS[(i * 5 + i / 11) % CUSTOMERS.len()];
    (customer, ((i * 7919) % 100) as f64)
}

/// An instance running on its own thread until its flag is set.
struct Running {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<()>>,
}

impl Running {
    fn start(bootstrap: &str, app: &str, input: &str, id: &str, dir: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (bootstrap, app, input, id) = (
            bootstrap.to_owned(),
            app.to_owned(),
            input.to_owned(),
            id.to_owned(),
        );
        let (dir, flag) = (dir.to_owned(), stop.clone());
        let thread =
            std::thread::spawn(move || instance(&bootstrap, &app, &input, &id, &dir, &flag));
        Self { stop, thread }
    }

    /// Stops the instance and returns what it ended with.
    fn stop(self, name: &str) -> std::result::Result<(), BoxError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(result) => result.map_err(|err| format!("{name}: {err}").into()),
            Err(_) => Err(format!("{name} panicked").into()),
        }
    }
}

/// Produces purchases `from..to` and waits until the broker has them all.
fn produce(
    producer: &BaseProducer,
    input: &str,
    from: usize,
    to: usize,
) -> std::result::Result<(), BoxError> {
    for i in from..to {
        let (customer, amount) = purchase(i);
        let value = Serdes::f64().serialize(&amount)?;
        producer
            .send(BaseRecord::to(input).key(customer).payload(&value))
            .map_err(|(err, _)| err)?;
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Waits until the group has committed every record of the input topic, failing if an
/// instance ends first or `WAVE_TIMEOUT` passes.
fn wait_committed(
    offsets: &BaseConsumer,
    input: &str,
    instances: &[&Running],
) -> std::result::Result<(), BoxError> {
    let deadline = Instant::now() + WAVE_TIMEOUT;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition(input, partition);
    }
    loop {
        let committed = offsets.committed_offsets(partitions.clone(), Duration::from_secs(10))?;
        let mut done = true;
        for partition in 0..PARTITIONS {
            let (_, end) = offsets.fetch_watermarks(input, partition, Duration::from_secs(10))?;
            let at = committed
                .find_partition(input, partition)
                .map(|p| p.offset());
            done &= match at {
                Some(Offset::Offset(offset)) => offset >= end,
                _ => end == 0,
            };
        }
        if done {
            return Ok(());
        }
        if instances.iter().any(|running| running.thread.is_finished()) {
            return Err("an instance stopped before the input was committed".into());
        }
        if Instant::now() > deadline {
            return Err(format!("the input was not committed within {WAVE_TIMEOUT:?}").into());
        }
        // Input offsets are committed every commit interval (1 s): look again shortly.
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Restores both stores of every partition from their changelogs into fresh in-memory
/// stores and sums them per customer.
async fn restore_all(
    bootstrap: &str,
    app: &str,
) -> std::result::Result<BTreeMap<String, (f64, i64)>, BoxError> {
    let changelog = Arc::new(KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap))?);
    let mut restored: BTreeMap<String, (f64, i64)> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let dir = tempfile::tempdir()?;
        let context = StoreContext::new(app, partition, PARTITIONS, dir.path())?
            .with_changelog(changelog.clone())
            .with_guarantee(ProcessingGuarantee::ExactlyOnce);
        let rewards = Stores::key_value_store_builder(
            Stores::in_memory_key_value_store("rewards"),
            Serdes::string(),
            Serdes::f64(),
        )
        .build(&context)
        .await?;
        let visits = Stores::key_value_store_builder(
            Stores::in_memory_key_value_store("visits"),
            Serdes::string(),
            Serdes::i64(),
        )
        .build(&context)
        .await?;
        for entry in rewards.all()? {
            let (customer, total) = entry?;
            restored.entry(customer).or_default().0 += total;
        }
        for entry in visits.all()? {
            let (customer, count) = entry?;
            restored.entry(customer).or_default().1 += count;
        }
    }
    Ok(restored)
}

/// Runs the scale-out against the broker at `bootstrap`, under a new application id.
pub fn run(bootstrap: &str) -> std::result::Result<Outcome, BoxError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let app = format!("scale-out-{}-{nanos}", std::process::id());
    let input = format!("{app}-purchases");
    let runtime = tokio::runtime::Runtime::new()?;

    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<_> = client.create()?;
    let topic = NewTopic::new(&input, PARTITIONS, TopicReplication::Fixed(1));
    for result in runtime.block_on(admin.create_topics([&topic], &AdminOptions::new()))? {
        result.map_err(|(topic, code)| format!("creating {topic}: {code}"))?;
    }
    let producer: BaseProducer = client.clone().set("enable.idempotence", "true").create()?;
    let offsets: BaseConsumer = client
        .clone()
        .set("group.id", &app)
        .set("isolation.level", "read_committed")
        .create()?;

    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    produce(&producer, &input, 0, WAVE)?;
    let first = Running::start(bootstrap, &app, &input, "shop-1", dirs[0].path());
    wait_committed(&offsets, &input, &[&first])?;
    println!("instance shop-1 processed the first {WAVE} purchases on all {PARTITIONS} partitions");
    let second = Running::start(bootstrap, &app, &input, "shop-2", dirs[1].path());
    produce(&producer, &input, WAVE, 2 * WAVE)?;
    wait_committed(&offsets, &input, &[&first, &second])?;
    println!("instance shop-2 joined; the second {WAVE} purchases were processed and committed");
    let stopped = [first.stop("shop-1"), second.stop("shop-2")];
    for result in stopped {
        result?;
    }

    let mut expected: BTreeMap<String, (f64, i64)> = BTreeMap::new();
    for i in 0..2 * WAVE {
        let (customer, amount) = purchase(i);
        let entry = expected.entry(customer.to_owned()).or_default();
        entry.0 += amount;
        entry.1 += 1;
    }
    let restored = runtime.block_on(restore_all(bootstrap, &app))?;
    Ok(Outcome {
        expected,
        restored,
        purchases: 2 * WAVE,
    })
}

fn main() -> std::process::ExitCode {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    match run(&bootstrap) {
        Ok(outcome) if outcome.restored == outcome.expected => {
            for (customer, (total, visits)) in &outcome.restored {
                println!("  {customer:>6}: {total:>10.2} spent in {visits} purchases");
            }
            println!(
                "check passed: the stores restored from the changelogs equal the totals of all {} purchases",
                outcome.purchases
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(outcome) => {
            eprintln!(
                "check FAILED: restored {:?}, expected {:?}",
                outcome.restored, outcome.expected
            );
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
