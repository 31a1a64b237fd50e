//! One instance of the scale-out demo: a `StatefulConsumer` of the rewards group on its
//! own thread, with two stores per partition (reward points and visits), and what it
//! tells the demo's main task (owned partitions, processed offsets, when each partition
//! arrived and was ready).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use changelog_kafka::{GroupConfig, GroupListener, InputRecord, StatefulConsumer};
use state_core::{
    Error, Offset, Partition, PartitionRestores, PartitionStore, RestoreSummary, Result,
    StoreHandle, StoreManager,
};
use tokio::runtime::Handle;

use crate::workload;

/// The store of reward points per customer; its restores are the ones reported.
pub const REWARDS: &str = "rewards";
/// The store of purchases per customer.
pub const VISITS: &str = "visits";

/// How long one poll waits for a record; bounds how fast a thread sees a command.
const POLL: Duration = Duration::from_millis(50);

const RUN: u8 = 0;
const LEAVE: u8 = 1;
const FINISH: u8 = 2;

/// The next input offset to process per partition, written by whichever instance
/// processed the partition's latest record.
pub type Positions = Arc<Mutex<BTreeMap<Partition, Offset>>>;

/// What an instance thread last published.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Partitions restored and served.
    pub ready: BTreeSet<Partition>,
    /// Records processed here (replays included).
    pub processed: u64,
    /// Input-offset commits the group refused because a rebalance was under way.
    pub refused_commits: u64,
    /// Why the thread stopped early.
    pub failed: Option<String>,
}

/// A partition's latest arrival here.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When the group assigned it.
    pub assigned_at: Instant,
    /// When its store was restored and it was resumed.
    pub ready_at: Option<Instant>,
    /// What the restore replayed.
    pub summary: Option<RestoreSummary>,
}

/// Records when partitions are assigned and ready, and counts rebalance callbacks.
#[derive(Default)]
struct ArrivalListener {
    arrivals: Mutex<BTreeMap<Partition, Arrival>>,
    /// Assign and revoke callbacks: a cooperative rebalance calls back every member,
    /// even one whose assignment stays the same.
    callbacks: AtomicU64,
}

impl GroupListener for ArrivalListener {
    fn on_revoked(&self, _: &[Partition], _: bool) {
        self.callbacks.fetch_add(1, Ordering::Relaxed);
    }

    fn on_assigned(&self, partitions: &[Partition]) {
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut arrivals = lock(&self.arrivals);
        for &p in partitions {
            arrivals.insert(
                p,
                Arrival {
                    assigned_at: now,
                    ready_at: None,
                    summary: None,
                },
            );
        }
    }

    fn on_ready(&self, partition: Partition, restores: &PartitionRestores) {
        if let Some(arrival) = lock(&self.arrivals).get_mut(&partition) {
            arrival.ready_at = Some(Instant::now());
            arrival.summary = restores.get(REWARDS).cloned().flatten();
        }
    }
}

/// The two stores of every partition: points per customer, and purchases per customer.
#[derive(Clone)]
pub struct Stores {
    /// Reward points per customer.
    pub rewards: StoreHandle<String, f64>,
    /// Purchases per customer.
    pub visits: StoreHandle<String, i64>,
}

/// What an instance serves when it finishes: points and visits per customer.
#[derive(Debug, Default)]
pub struct Served {
    /// Reward points per customer.
    pub totals: BTreeMap<String, f64>,
    /// Purchases per customer.
    pub visits: BTreeMap<String, i64>,
}

/// A running instance: its store manager and its polling thread.
pub struct Instance {
    /// 1-based, as printed.
    pub id: usize,
    /// The instance's stores.
    pub manager: Arc<StoreManager>,
    listener: Arc<ArrivalListener>,
    report: Arc<Mutex<Report>>,
    command: Arc<AtomicU8>,
    thread: Option<JoinHandle<Result<Served>>>,
}

impl Instance {
    /// Starts instance `id` on its own thread: joins `config`'s group and processes
    /// purchases into `manager`'s stores until told to leave or finish.
    pub fn start(
        id: usize,
        config: GroupConfig,
        (manager, stores): (Arc<StoreManager>, Stores),
        runtime: Handle,
        positions: Positions,
    ) -> Result<Self> {
        let listener = Arc::new(ArrivalListener::default());
        let report = Arc::new(Mutex::new(Report::default()));
        let command = Arc::new(AtomicU8::new(RUN));
        let thread = {
            let (listener, report, command, manager) = (
                listener.clone(),
                report.clone(),
                command.clone(),
                manager.clone(),
            );
            std::thread::Builder::new()
                .name(format!("instance-{id}"))
                .spawn(move || {
                    let outcome = serve(
                        &config, manager, &stores, runtime, listener, &report, &command, &positions,
                    );
                    if let Err(err) = &outcome {
                        lock(&report).failed = Some(err.to_string());
                    }
                    outcome
                })
                .map_err(|err| {
                    Error::from(err).context(format!("starting instance {id}'s thread"))
                })?
        };
        Ok(Self {
            id,
            manager,
            listener,
            report,
            command,
            thread: Some(thread),
        })
    }

    /// What the thread last published.
    pub fn report(&self) -> Report {
        lock(&self.report).clone()
    }

    /// Rebalance callbacks (assign and revoke) this instance received so far.
    pub fn rebalance_callbacks(&self) -> u64 {
        self.listener.callbacks.load(Ordering::Relaxed)
    }

    /// The latest arrival of `partition` here.
    pub fn arrival(&self, partition: Partition) -> Option<Arrival> {
        lock(&self.listener.arrivals).get(&partition).cloned()
    }

    /// Leaves the group cleanly: its partitions are committed, closed (directories kept)
    /// and handed to the others.
    pub fn leave(mut self) -> Result<()> {
        self.stop(LEAVE).map(drop)
    }

    /// Tells the thread to stop processing; [`finish`](Self::finish) collects the
    /// result. Signal every instance before finishing any, so no partition moves while
    /// the totals are read.
    pub fn request_finish(&self) {
        self.command.store(FINISH, Ordering::SeqCst);
    }

    /// Commits, returns every total and visit count this instance serves, then leaves the
    /// group.
    pub fn finish(mut self) -> Result<Served> {
        self.stop(FINISH)
    }

    fn stop(&mut self, command: u8) -> Result<Served> {
        self.command.store(command, Ordering::SeqCst);
        let id = self.id;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| Error::internal(format!("instance {id}'s thread panicked")))?,
            None => Ok(Served::default()),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // An early return elsewhere: leave the group rather than hang the process.
        if self.thread.is_some() {
            let _ = self.stop(LEAVE);
        }
    }
}

/// The thread: poll until told otherwise, then hand back totals and/or leave.
#[allow(clippy::too_many_arguments)]
fn serve(
    config: &GroupConfig,
    manager: Arc<StoreManager>,
    stores: &Stores,
    runtime: Handle,
    listener: Arc<ArrivalListener>,
    report: &Mutex<Report>,
    command: &AtomicU8,
    positions: &Positions,
) -> Result<Served> {
    let mut consumer = StatefulConsumer::new(config, manager.clone(), runtime.clone(), listener)?;
    let mut processed = 0;
    while command.load(Ordering::SeqCst) == RUN {
        let mut done = None;
        let polled = consumer.poll(POLL, |record, partition| {
            add_purchase(
                &partition.store(&stores.rewards)?,
                &partition.store(&stores.visits)?,
                record,
            )?;
            done = Some((record.partition, record.offset + 1));
            Ok(())
        });
        polled?;
        if let Some((partition, next)) = done {
            lock(positions).insert(partition, next);
            processed += 1;
        }
        // Positions first, then ownership: a reader never sees a partition ready here
        // with a position older than what was processed here.
        let ready = consumer.ready_partitions();
        let mut published = lock(report);
        published.ready = ready;
        published.processed = processed;
        published.refused_commits = consumer.refused_commits();
    }
    let mut served = Served::default();
    if command.load(Ordering::SeqCst) == FINISH {
        consumer.commit()?;
        for partition in consumer.ready_partitions() {
            let active = runtime.block_on(manager.active(partition)).ok_or_else(|| {
                Error::internal(format!("partition {partition} is served but not active"))
            })?;
            for entry in active.store(&stores.rewards)?.all()? {
                let (customer, total) = entry?;
                served.totals.insert(customer, total);
            }
            for entry in active.store(&stores.visits)?.all()? {
                let (customer, count) = entry?;
                served.visits.insert(customer, count);
            }
        }
    }
    consumer.close()?;
    Ok(served)
}

/// The rewards processing: the customer's total grows by the purchase's points, and the
/// purchase counts as a visit. Neither guards against a replay: exactly-once alone keeps
/// both exact.
fn add_purchase(
    rewards: &PartitionStore<'_, String, f64>,
    visits: &PartitionStore<'_, String, i64>,
    record: &InputRecord<'_>,
) -> Result<()> {
    let at = || {
        format!(
            "input partition {} offset {}",
            record.partition, record.offset
        )
    };
    let customer = record
        .key
        .and_then(|key| std::str::from_utf8(key).ok())
        .ok_or_else(|| Error::invalid_input(format!("{}: the key is not a UTF-8 customer", at())))?
        .to_owned();
    let amount = record
        .value
        .and_then(|value| <[u8; 8]>::try_from(value).ok())
        .map(f64::from_be_bytes)
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "{}: the value is not an 8-byte big-endian f64",
                at()
            ))
        })?;
    let total = rewards.get(&customer)?.unwrap_or(0.0) + workload::points(amount);
    rewards.put(&customer, &total)?;
    let seen = visits.get(&customer)?.unwrap_or(0) + 1;
    visits.put(&customer, &seen)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent, so a panic elsewhere does not matter.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
