//! Partitions and their state moving between instances on a real broker: several
//! `rewards_instance` processes form one consumer group over a 6-partition input; the
//! tests add, kill (SIGKILL) and remove instances and after each step check that the
//! union of all instances' stores equals the model, that no partition was served before
//! its restore finished, and how much each move replayed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogReader, IsolationLevel, Partition, TopicSpec, changelog_topic_name,
};
use test_support::{eventually, unique_name};

use crate::harness::block_on;
use crate::rewards::{Totals, amount, customer, partition_of};

/// Input (and changelog) partitions.
pub const PARTITIONS: i32 = 6;
/// Customers in the workload.
pub const CUSTOMERS: u32 = 600;
/// How long one step may take: a killed instance's partitions move after the 6 s
/// session timeout, then restore.
const STEP_DEADLINE: Duration = Duration::from_secs(90);

/// A restore an instance reported: `ready P RESTORED FROM END SNAPSHOT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The partition.
    pub partition: Partition,
    /// Changelog records replayed.
    pub restored: u64,
    /// The first changelog offset read (0: from scratch).
    pub from: i64,
    /// The changelog end offset restored to.
    pub end: i64,
    /// The position of the snapshot the store started from, if it did.
    pub snapshot: Option<i64>,
}

/// One `rewards_instance` child process and everything it printed.
pub struct Instance {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<String>>>,
    /// `assigned` and `ready` events with the moment they were read.
    timed: Arc<Mutex<Vec<(Instant, String)>>>,
}

/// A partition movement an instance prints: `assigned P..`, `ready P ...` or
/// `revoked LOST P..`.
enum Movement {
    Assigned(Vec<Partition>),
    Ready(Partition),
    Revoked(Vec<Partition>),
}

impl Movement {
    fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split(' ');
        let partitions = |fields: std::str::Split<'_, char>| -> Vec<Partition> {
            fields.filter_map(|p| p.parse().ok()).collect()
        };
        match fields.next()? {
            "assigned" => Some(Self::Assigned(partitions(fields))),
            "ready" => fields.next()?.parse().ok().map(Self::Ready),
            "revoked" => {
                fields.next()?;
                Some(Self::Revoked(partitions(fields)))
            }
            _ => None,
        }
    }
}

impl Instance {
    fn spawn(
        name: &str,
        group: &Group,
        backend: &str,
        state_dir: &Path,
        standbys: &str,
        instance_id: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(&group.instance_binary);
        command.envs(env.iter().copied());
        if let Some(id) = instance_id {
            command.env("STATESTORE_INSTANCE_ID", id);
        }
        let mut child = command
            .envs(group.child_env.iter().map(|(k, v)| (k, v)))
            .env(
                "STATESTORE_COMMIT_INTERVAL_MS",
                group.commit_interval.as_millis().to_string(),
            )
            .args([
                group.bootstrap.as_str(),
                group.app.as_str(),
                group.input.as_str(),
                &PARTITIONS.to_string(),
                backend,
                &state_dir.display().to_string(),
                standbys,
                group.guarantee,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("starting instance {name}: {err}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let timed = Arc::new(Mutex::new(Vec::new()));
        let (sink, timed_sink) = (lines.clone(), timed.clone());
        let label = name.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("error") {
                    eprintln!("instance {label}: {line}");
                }
                if ["assigned ", "ready ", "revoked "]
                    .iter()
                    .any(|event| line.starts_with(event))
                {
                    timed_sink
                        .lock()
                        .unwrap()
                        .push((Instant::now(), line.clone()));
                }
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            timed,
        }
    }

    /// The query endpoint it printed (`serving HOST:PORT`), once it has.
    pub fn endpoint(&self) -> String {
        let lines = &self.lines;
        eventually(
            Duration::from_secs(30),
            &format!("instance {} printing its query endpoint", self.name),
            || {
                lines
                    .lock()
                    .unwrap()
                    .iter()
                    .find_map(|l| l.strip_prefix("serving ").map(str::to_owned))
            },
        )
    }

    /// Sends `command` and returns the lines starting with `prefix` printed before
    /// `end`.
    fn request(&mut self, command: &str, prefix: &str, end: &str) -> Vec<String> {
        let start = self.lines.lock().unwrap().len();
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|err| panic!("instance {}: sending {command}: {err}", self.name));
        let lines = &self.lines;
        eventually(
            Duration::from_secs(60),
            &format!("instance {} answering {command}", self.name),
            || {
                let lines = lines.lock().unwrap();
                if let Some(at) = lines[start..].iter().position(|l| l == end) {
                    return Some(
                        lines[start..start + at]
                            .iter()
                            .filter(|l| l.starts_with(prefix))
                            .cloned()
                            .collect(),
                    );
                }
                if let Some(error) = lines[start..].iter().find(|l| l.starts_with("error")) {
                    panic!("instance {} failed: {error}", self.name);
                }
                None
            },
        )
    }

    /// Commits and returns the instance's stores: partition -> customer -> total, and
    /// customer -> visits from the second store.
    pub fn dump(&mut self) -> (BTreeMap<Partition, Totals>, Totals) {
        let mut stores: BTreeMap<Partition, Totals> = BTreeMap::new();
        let mut visits = Totals::new();
        for line in self.request("dump", "", "dump-end") {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["entry", p, customer, total, _last] => {
                    stores
                        .entry(p.parse().unwrap())
                        .or_default()
                        .insert((*customer).to_owned(), total.parse().unwrap());
                }
                ["visit", _p, customer, count] => {
                    visits.insert((*customer).to_owned(), count.parse().unwrap());
                }
                _ => {}
            }
        }
        (stores, visits)
    }

    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records processed so far (nothing is committed by asking).
    pub fn processed(&mut self) -> u64 {
        let line = self.request("count", "count ", "count-end").pop();
        line.and_then(|l| l.strip_prefix("count ")?.parse().ok())
            .unwrap_or_else(|| panic!("instance {} sent no count", self.name))
    }

    /// Each standby's `(lag, records applied since it was opened)`, by partition.
    fn standbys(&mut self) -> BTreeMap<Partition, (u64, u64)> {
        self.request("lag", "lag ", "lag-end")
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let (lag, applied) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
                (fields[1].parse().unwrap(), (lag, applied))
            })
            .collect()
    }

    /// Standby lag per partition.
    pub fn lags(&mut self) -> BTreeMap<Partition, u64> {
        self.standbys()
            .into_iter()
            .map(|(p, (lag, _))| (p, lag))
            .collect()
    }

    /// The partitions it serves now (restored and resumed).
    pub fn owned(&mut self) -> Vec<Partition> {
        self.request("owned", "owned", "owned-end")
            .iter()
            .flat_map(|line| line.split(' ').skip(1).filter_map(|p| p.parse().ok()))
            .collect()
    }

    /// The partition movements this process read after `since`, in order, with when it
    /// read each.
    fn movements_since(&self, since: Instant) -> Vec<(Instant, Movement)> {
        self.timed
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= since)
            .filter_map(|(at, line)| Movement::parse(line).map(|m| (*at, m)))
            .collect()
    }

    /// When each partition was last assigned here and last ready (restored and
    /// resumed) after `since`, as this process read the events.
    pub fn arrivals_since(
        &self,
        since: Instant,
    ) -> BTreeMap<Partition, (Instant, Option<Instant>)> {
        let mut arrivals = BTreeMap::new();
        for (at, movement) in self.movements_since(since) {
            match movement {
                Movement::Assigned(partitions) => {
                    for p in partitions {
                        arrivals.insert(p, (at, None));
                    }
                }
                Movement::Ready(p) => arrivals.entry(p).or_insert((at, None)).1 = Some(at),
                Movement::Revoked(_) => {}
            }
        }
        arrivals
    }

    /// How long each partition revoked here after `since` and assigned here again went
    /// unserved: from the revoke to its next ready, as this process read the events.
    /// (A cooperative rebalance leaves a partition that stays put alone; an eager one
    /// revokes it with every other.)
    pub fn pauses_since(&self, since: Instant) -> BTreeMap<Partition, Duration> {
        let mut revoked: BTreeMap<Partition, Instant> = BTreeMap::new();
        let mut pauses = BTreeMap::new();
        for (at, movement) in self.movements_since(since) {
            match movement {
                Movement::Revoked(partitions) => {
                    for p in partitions {
                        revoked.entry(p).or_insert(at);
                    }
                }
                Movement::Ready(p) => {
                    if let Some(from) = revoked.remove(&p) {
                        let pause: &mut Duration = pauses.entry(p).or_default();
                        *pause = (*pause).max(at - from);
                    }
                }
                Movement::Assigned(_) => {}
            }
        }
        pauses
    }

    /// Changelog records each standby applied since it was opened.
    pub fn standby_applied(&mut self) -> BTreeMap<Partition, u64> {
        self.standbys()
            .into_iter()
            .map(|(p, (_, applied))| (p, applied))
            .collect()
    }

    /// Stops tailing standbys.
    pub fn pause_standbys(&mut self) {
        self.request("pause-standbys", "", "paused");
    }

    /// Leaves the group cleanly and exits.
    pub fn stop(mut self) {
        self.request("stop", "", "closed");
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "instance {} exited with {status}",
            self.name
        );
    }

    /// SIGSTOP: the process freezes where it is — open transactions, group membership
    /// and all — until [`resume`](Self::resume), as a long GC pause or a stalled VM would.
    pub fn suspend(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`suspend`](Self::suspend).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap_or_else(|err| panic!("kill {signal} {pid}: {err}"));
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// SIGKILL: no commit, no leaving the group.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Every `ready` event so far, oldest first.
    pub fn readies(&self) -> Vec<Ready> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let fields: Vec<&str> = line.strip_prefix("ready ")?.split(' ').collect();
                Some(Ready {
                    partition: fields[0].parse().ok()?,
                    restored: fields[1].parse().ok()?,
                    from: fields[2].parse().ok()?,
                    end: fields[3].parse().ok()?,
                    snapshot: fields.get(4).and_then(|s| s.parse().ok()),
                })
            })
            .collect()
    }

    /// Rebalance callbacks it reported (`assigned` and `revoked` events). A cooperative
    /// rebalance calls back every member, even those whose assignment stays the same
    /// (with no partitions), so this counts the rebalances it took part in.
    pub fn rebalances(&self) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.starts_with("assigned") || line.starts_with("revoked"))
            .count()
    }

    /// Asserts from the event log that every partition was served only after its
    /// restore in the current assignment finished.
    pub fn assert_served_only_after_restore(&self) {
        let mut ready: BTreeMap<Partition, bool> = BTreeMap::new();
        for line in self.lines.lock().unwrap().iter() {
            let mut fields = line.split(' ');
            let event = fields.next().unwrap_or_default();
            let numbers = fields.filter_map(|f| f.parse::<Partition>().ok());
            match event {
                "assigned" => numbers.for_each(|p| {
                    ready.insert(p, false);
                }),
                "revoked" => numbers.for_each(|p| {
                    ready.remove(&p);
                }),
                "ready" => {
                    if let Some(p) = numbers.take(1).next() {
                        ready.insert(p, true);
                    }
                }
                "served" => {
                    let p = numbers.take(1).next().unwrap();
                    assert_eq!(
                        ready.get(&p),
                        Some(&true),
                        "instance {} served partition {p} before its restore finished",
                        self.name
                    );
                }
                _ => {}
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A failed test must not leave instances running; after stop or kill this is a
        // no-op on an exited process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The input topic, its producer and the model of what was produced.
pub struct Group {
    instance_binary: PathBuf,
    bootstrap: String,
    app: String,
    input: String,
    producer: BaseProducer,
    model: Totals,
    /// Purchases produced per customer: what the `visits` stores must hold.
    purchases: Totals,
    waves: u32,
    customers: u32,
    guarantee: &'static str,
    commit_interval: Duration,
    uncommitted_reader: OnceLock<Arc<dyn ChangelogReader>>,
    offsets_client: OnceLock<BaseConsumer>,
    /// Environment every instance started gets on top of this process's.
    child_env: Vec<(String, String)>,
    /// Input partitions by Kafka's default partitioner (murmur2 of the key) instead of
    /// spreading customers evenly.
    kafka_partitioner: bool,
}

impl Group {
    /// A fresh application over a fresh 6-partition input topic, run by the
    /// `rewards_instance` binary at `instance_binary`.
    pub fn new(bootstrap: &str, instance_binary: &Path) -> Self {
        let input = unique_name("rewards-input");
        let changelog = KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap)).unwrap();
        let spec = TopicSpec {
            name: input.clone(),
            partitions: PARTITIONS,
            replication_factor: None,
            config: BTreeMap::from([("cleanup.policy".to_owned(), "delete".to_owned())]),
        };
        block_on(changelog.ensure_topic(&spec)).unwrap();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        Self {
            instance_binary: instance_binary.to_owned(),
            bootstrap: bootstrap.to_owned(),
            app: input.replace("rewards-input", "rewards-app"),
            input,
            producer,
            model: Totals::new(),
            purchases: Totals::new(),
            waves: 0,
            customers: CUSTOMERS,
            guarantee: "at_least_once",
            commit_interval: Duration::from_millis(200),
            uncommitted_reader: OnceLock::new(),
            offsets_client: OnceLock::new(),
            child_env: Vec::new(),
            kafka_partitioner: false,
        }
    }

    /// Purchases produced from now on go to the partition Kafka's default partitioner
    /// picks for the customer (murmur2, as a Java producer does), so queries that
    /// locate a key find it; customers are then not spread exactly evenly.
    pub fn with_kafka_partitioner(mut self) -> Self {
        self.kafka_partitioner = true;
        self
    }

    /// The input topic.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The final totals of every customer produced so far.
    pub fn model(&self) -> &Totals {
        &self.model
    }

    /// The customers each wave has a purchase of.
    pub fn customers(&self) -> u32 {
        self.customers
    }

    /// Sets how many customers each wave has a purchase of (default [`CUSTOMERS`]).
    pub fn with_customers(mut self, customers: u32) -> Self {
        self.customers = customers;
        self
    }

    /// Waits until all input is processed and committed.
    pub fn wait_until_committed(&self, within: Duration) {
        eventually(within, "all input processed and committed", || {
            self.all_input_committed()
        });
    }

    /// Whether the group's committed offset of every input partition is the partition's
    /// end: all input was processed and committed.
    fn all_input_committed(&self) -> bool {
        let offsets = self.offsets_client.get_or_init(|| {
            ClientConfig::new()
                .set("bootstrap.servers", &self.bootstrap)
                .set("group.id", &self.app)
                .set("enable.auto.commit", "false")
                .create()
                .unwrap()
        });
        let mut list = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition(&self.input, p);
        }
        // A coordinator still moving (NotCoordinator right after the broker started)
        // answers on a later round: not converged yet, not a failure.
        let Ok(committed) = offsets.committed_offsets(list, Duration::from_secs(10)) else {
            return false;
        };
        (0..PARTITIONS).all(|p| {
            let Ok((_, end)) = offsets.fetch_watermarks(&self.input, p, Duration::from_secs(10))
            else {
                return false;
            };
            committed
                .find_partition(&self.input, p)
                .is_some_and(|e| e.offset() == KafkaOffset::Offset(end))
        })
    }

    /// Runs the instances exactly-once: each purchase is added without checking whether
    /// it was counted, so only the transactions keep the totals exact.
    pub fn exactly_once(mut self) -> Self {
        self.guarantee = "exactly_once";
        self
    }

    /// Instances started from now on get `vars` in their environment (snapshot settings,
    /// see [`crate::instance_snapshots`]).
    pub fn with_instance_env(mut self, vars: Vec<(String, String)>) -> Self {
        self.child_env.extend(vars);
        self
    }

    /// The application id the instances run as (their group and store scope).
    pub fn application(&self) -> &str {
        &self.app
    }

    /// Instances started from now on commit every `interval`.
    pub fn with_commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// The high watermark of `partition` of the store's changelog, counting records of
    /// open transactions too.
    pub fn changelog_high_watermark(&self, partition: Partition) -> i64 {
        let reader = self.uncommitted_reader.get_or_init(|| {
            let changelog =
                KafkaChangelog::new(KafkaChangelogConfig::new(self.bootstrap.clone())).unwrap();
            let topic = changelog_topic_name(&self.app, "rewards");
            block_on(changelog.reader(&topic, IsolationLevel::ReadUncommitted)).unwrap()
        });
        block_on(reader.offsets(partition)).unwrap().end
    }

    /// Starts an instance with its own state directory.
    pub fn start(&self, name: &str, backend: &str, state_dir: &Path, standbys: &str) -> Instance {
        Instance::spawn(name, self, backend, state_dir, standbys, Some(name), &[])
    }

    /// Starts an instance (a static member, like [`start`](Self::start)) that serves
    /// queries on `endpoint` (`127.0.0.1:0`: a free port; see [`Instance::endpoint`]).
    pub fn start_serving(
        &self,
        name: &str,
        backend: &str,
        state_dir: &Path,
        standbys: &str,
        endpoint: &str,
    ) -> Instance {
        let env = [("STATESTORE_SERVE", endpoint)];
        Instance::spawn(name, self, backend, state_dir, standbys, Some(name), &env)
    }

    /// Starts an instance that is a static member of the group, its name its
    /// `group.instance.id`.
    pub fn start_static(
        &self,
        name: &str,
        backend: &str,
        state_dir: &Path,
        standbys: &str,
    ) -> Instance {
        Instance::spawn(name, self, backend, state_dir, standbys, Some(name), &[])
    }

    /// Produces `per_second` purchases a second for `seconds` seconds, to customers in
    /// turn, and updates the model: steady input. A wave's worth of purchases is one
    /// wave in the model's amounts.
    pub fn produce_steady(&mut self, per_second: u32, seconds: u32) {
        let started = Instant::now();
        let mut next = 0u32;
        for second in 0..seconds {
            for _ in 0..per_second {
                if next.is_multiple_of(self.customers) {
                    self.waves += 1;
                }
                let c = next % self.customers;
                self.produce_one(c);
                next += 1;
            }
            self.producer.flush(Duration::from_secs(30)).unwrap();
            // Pacing the input rate, not waiting for anything to happen: the next
            // second's purchases are due when that second begins.
            let due = started + Duration::from_secs(u64::from(second) + 1);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }

    /// Produces one purchase per customer and updates the model.
    pub fn produce_wave(&mut self) {
        self.produce_waves(1);
    }

    /// Produces `waves` purchases per customer and updates the model.
    pub fn produce_waves(&mut self, waves: u32) {
        for _ in 0..waves {
            self.produce_one_wave();
        }
    }

    /// Produces one purchase for each of the first `customers` customers (spread over the
    /// partitions like a wave's) and updates the model: a small tail of input.
    pub fn produce_purchases(&mut self, customers: u32) {
        self.waves += 1;
        for c in 0..customers.min(self.customers) {
            self.produce_one(c);
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    fn produce_one_wave(&mut self) {
        self.waves += 1;
        for c in 0..self.customers {
            self.produce_one(c);
        }
        self.producer.flush(Duration::from_secs(30)).unwrap();
    }

    /// Produces customer `c`'s purchase of the current wave.
    fn produce_one(&mut self, c: u32) {
        let (key, cents) = (customer(c), amount(self.waves, c));
        let value = cents.to_be_bytes();
        let partition = if self.kafka_partitioner {
            state_core::partition_for_key(key.as_bytes(), PARTITIONS)
                .unwrap_or_else(|err| panic!("partitioning {key}: {err}"))
        } else {
            partition_of(c, PARTITIONS)
        };
        let mut record = BaseRecord::to(&self.input)
            .key(key.as_bytes())
            .payload(&value[..])
            .partition(partition);
        // A full local queue (a million records in flight) drains as delivery reports
        // are served.
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((err, returned)) => {
                    assert!(
                        err.rdkafka_error_code()
                            == Some(rdkafka::error::RDKafkaErrorCode::QueueFull),
                        "producing purchase of {key}: {err}"
                    );
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        *self.purchases.entry(key.clone()).or_default() += 1;
        *self.model.entry(key).or_default() += cents;
    }

    /// Waits until all input is processed and committed, `instances` together serve
    /// every partition exactly once, each of them at least one (so a newcomer has
    /// joined), and their stores' union equals the model; returns which instance serves
    /// which partition.
    pub fn wait_for_model(&self, instances: &mut [&mut Instance]) -> BTreeMap<Partition, String> {
        eventually(
            STEP_DEADLINE,
            "convergence: all input committed, each partition served once, every instance \
             serving, the stores' union equal to the model",
            || self.converged(instances),
        )
    }

    /// One look at `instances` for [`wait_for_model`](Self::wait_for_model): the owners
    /// once converged, else what is still off.
    fn converged(
        &self,
        instances: &mut [&mut Instance],
    ) -> Result<BTreeMap<Partition, String>, String> {
        let mut owners: BTreeMap<Partition, Vec<String>> = BTreeMap::new();
        let mut union = Totals::new();
        let mut visits = Totals::new();
        for instance in instances.iter_mut() {
            let (stores, their_visits) = instance.dump();
            for (p, totals) in stores {
                owners.entry(p).or_default().push(instance.name.clone());
                union.extend(totals);
            }
            visits.extend(their_visits);
        }
        // The second store: one visit per purchase produced.
        let visits_match = visits == self.purchases;
        // Every record consumed and committed: a union that matches the model while
        // a new owner has yet to replay input could hide a purchase counted twice.
        let consumed = self.all_input_committed();
        let whole = consumed
            && (0..PARTITIONS).all(|p| owners.get(&p).is_some_and(|o| o.len() == 1))
            && instances
                .iter()
                .all(|i| owners.values().any(|o| o.contains(&i.name)));
        if whole && union == self.model && visits_match {
            return Ok(owners
                .into_iter()
                .map(|(p, mut o)| (p, o.remove(0)))
                .collect());
        }
        // Two instances serving one partition at once must never happen, converged
        // or not: a rebalance revokes before it assigns. The dumps come one after
        // another, so a partition that moved between two of them shows in both: an
        // earlier dumper that still serves it after the later dump serves it at once.
        for (p, o) in &owners {
            let Some((_, earlier)) = o.split_last() else {
                continue;
            };
            for instance in instances.iter_mut().filter(|i| earlier.contains(&i.name)) {
                assert!(
                    !instance.owned().contains(p),
                    "partition {p} served by {o:?} at once"
                );
            }
        }
        let differ = |(k, v): &(&String, &i64)| union.get(*k) != Some(*v);
        let wrong: Vec<_> = self.model.iter().filter(differ).take(5).collect();
        Err(format!(
            "input committed {consumed}, visits match {visits_match}, owners {owners:?}, \
             {} of {} customers differ, e.g. {wrong:?}",
            self.model.iter().filter(differ).count(),
            self.model.len()
        ))
    }
}
