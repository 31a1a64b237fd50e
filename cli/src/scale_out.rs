//! `statestore demo --instances N`: a scale-out for real, exactly-once. Instances of one
//! consumer group join one by one while purchases arrive in waves; cooperative-sticky
//! rebalancing moves partitions, and each moved partition's two stores (reward points and
//! visits) are restored on its new owner. Each instance writes every store of every
//! partition through one transactional producer, one transaction per commit (Kafka
//! Streams' exactly-once v2). Then instance 1, a static member, restarts with its
//! `group.instance.id` and gets its partitions back without a rebalance, replaying only
//! their tails. Finally instance 2 leaves cleanly, its partitions move on, and both
//! stores are verified: processing adds without guarding against replays, so only
//! exactly-once keeps them exact.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use changelog_kafka::{GroupConfig, KafkaChangelog, KafkaChangelogConfig};
use state_core::{
    Changelog, ChangelogReader, ChangelogRecord, ChangelogSink, Error, ErrorKind, IsolationLevel,
    Offset, Partition, ProcessingGuarantee, Result, Serdes, SinkOptions, SourceOffsets,
    StoreBuilder, StoreContext, StoreManager, TopicSpec,
};
use tokio::runtime::Handle;

use crate::backend::Backend;
use crate::group_instance::{Instance, Positions, REWARDS, Report, Stores, VISITS};
use crate::workload;
use crate::{errors, kafka, serve};

const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// How long one step may take to settle (rebalance, restore, process the wave).
const STEP_DEADLINE: Duration = Duration::from_secs(40);
/// The instance that is a static member (`group.instance.id`), and restarts. The others
/// are dynamic: a static member's clean close keeps its place in the group, so instance
/// 2's clean leave would wait out the session timeout.
const STATIC_MEMBER: usize = 1;
/// How often the main task looks at the instances while waiting.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// What `statestore demo --instances N` was asked to do.
#[derive(Debug, Clone)]
pub struct ScaleOutOptions {
    /// Backend of every instance.
    pub backend: Backend,
    /// A real cluster; required.
    pub bootstrap_servers: Option<String>,
    /// Instances that join one by one (at least 2).
    pub instances: usize,
    /// Input and changelog partitions.
    pub partitions: i32,
    /// Purchases in the stream.
    pub purchases: u64,
    /// Parent of the instances' state directories (`None`: a temporary directory).
    pub state_dir: Option<PathBuf>,
    /// Kafka metadata timeout.
    pub timeout: Duration,
    /// Every instance serves queries over HTTP, and each step reads a customer's total
    /// through each of them.
    pub serve: bool,
}

/// The customer whose total each step reads through every instance.
const QUERIED_CUSTOMER: usize = 7;

/// The demo's running state.
struct Demo<'a> {
    options: &'a ScaleOutOptions,
    application_id: String,
    input: String,
    config: KafkaChangelogConfig,
    changelog: Arc<dyn Changelog>,
    sink: Arc<dyn ChangelogSink>,
    reader: Arc<dyn ChangelogReader>,
    root: PathBuf,
    instances: Vec<Instance>,
    positions: Positions,
    /// One past the last input offset of each partition.
    ends: Vec<Offset>,
    /// Which instance served each partition at the end of the last step.
    owners: BTreeMap<Partition, usize>,
    produced: u64,
    moves: Moves,
    /// What instances that stopped before the end (a restart's first run) processed.
    stopped: Report,
    /// The query server of each running instance, by id (`--serve`).
    serving: BTreeMap<usize, serve::Serving>,
    /// Each instance's query endpoint, kept for its restart.
    endpoints: BTreeMap<usize, String>,
}

/// Partition moves between instances, for the summary.
#[derive(Debug, Default)]
struct Moves {
    cold: u64,
    warm: u64,
    restored: u64,
}

/// Runs the group demo; `Ok(false)` when the totals do not match.
pub async fn run(options: &ScaleOutOptions) -> Result<bool> {
    let started = Instant::now();
    let (config, servers) = cluster(options)?;
    let kafka_err = |err: Error| errors::kafka(err, &servers, None);
    let changelog: Arc<dyn Changelog> = Arc::new(KafkaChangelog::new(config.clone())?);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let application_id = format!("statestore-group-demo-{}-{nanos}", std::process::id());
    let input = format!("{application_id}-purchases");
    let spec = TopicSpec {
        name: input.clone(),
        partitions: options.partitions,
        replication_factor: None,
        config: BTreeMap::from([("cleanup.policy".to_owned(), "delete".to_owned())]),
    };
    changelog.ensure_topic(&spec).await.map_err(kafka_err)?;
    let sink = changelog
        .sink(&SinkOptions::default())
        .await
        .map_err(kafka_err)?;
    let reader = changelog
        .reader(&input, IsolationLevel::ReadUncommitted)
        .await
        .map_err(kafka_err)?;
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
    // One wave per join, one for the static member's restart, one for the leave.
    let waves = options.instances + 2;
    println!(
        "group {application_id}: {} purchases in {waves} waves over {} partitions, {} instances ({}), \
         exactly-once, commit every {} ms",
        options.purchases,
        options.partitions,
        options.instances,
        options.backend.name(),
        COMMIT_INTERVAL.as_millis()
    );
    println!(
        "  each partition has two stores, {REWARDS} and {VISITS}; each instance writes every store \
         of every partition it owns through one transactional producer, and each commit is one \
         transaction holding both stores' changelog records and the input offsets"
    );
    let mut demo = Demo {
        options,
        application_id,
        input,
        config,
        changelog,
        sink,
        reader,
        root,
        instances: Vec::new(),
        positions: Positions::default(),
        ends: vec![0; options.partitions.max(1) as usize],
        owners: BTreeMap::new(),
        produced: 0,
        moves: Moves::default(),
        stopped: Report::default(),
        serving: BTreeMap::new(),
        endpoints: BTreeMap::new(),
    };
    let outcome = demo.scale_out(waves).await;
    match outcome {
        Ok(leaver) => demo.verify(leaver, started),
        Err(err) => {
            // Stop every thread at once, then leave: no thread outlives the error.
            demo.serving.clear();
            for instance in &demo.instances {
                instance.request_finish();
            }
            for instance in demo.instances.drain(..) {
                let _ = instance.leave();
            }
            Err(kafka_err(err))
        }
    }
}

impl Demo<'_> {
    /// Instances 1..=N join (one wave each), then instance 2 leaves (the last wave).
    /// Returns the leaver's last report.
    async fn scale_out(&mut self, waves: usize) -> Result<Report> {
        for id in 1..=self.options.instances {
            self.start_instance(id)?;
            self.step(&format!("instance {id} joined"), id, waves)
                .await?;
        }
        self.restart_static_member(waves).await?;
        let leaver = self.instances.remove(1);
        let report = leaver.report();
        let id = leaver.id;
        self.serving.remove(&id);
        let closing = Instant::now();
        leaver.leave()?;
        let label = format!(
            "instance {id} left cleanly (close took {:.2?})",
            closing.elapsed()
        );
        self.step(&label, waves, waves).await?;
        Ok(report)
    }

    /// Instance 1, the group's static member, stops and starts again with the same
    /// `group.instance.id` and directory within the session timeout: the group hands its
    /// partitions back without a rebalance, and it replays only their changelog tails.
    async fn restart_static_member(&mut self, waves: usize) -> Result<()> {
        let id = STATIC_MEMBER;
        let others = |demo: &Self| -> u64 {
            demo.instances
                .iter()
                .filter(|i| i.id != id)
                .map(Instance::rebalance_callbacks)
                .sum()
        };
        let callbacks_before = others(self);
        let restarting = self.instances.remove(id - 1);
        self.serving.remove(&id);
        let stopping = Instant::now();
        let report = restarting.report();
        restarting.leave()?;
        self.stopped.processed += report.processed;
        self.stopped.refused_commits += report.refused_commits;
        self.start_instance(id)?;
        // Back in its place in the list, which is ordered by id.
        let restarted = self.instances.pop().ok_or_else(|| {
            Error::internal(format!("instance {id} was started but is not listed"))
        })?;
        self.instances.insert(id - 1, restarted);
        let label = format!(
            "instance {id} restarted with its group.instance.id (down for {:.2?})",
            stopping.elapsed()
        );
        self.step(&label, self.options.instances + 1, waves).await?;
        let instance = &self.instances[id - 1];
        for p in instance.report().ready {
            let how = match instance.arrival(p).and_then(|a| a.summary) {
                Some(s) if s.from > 0 => format!(
                    "kept directory: tail from offset {}, {} records",
                    s.from, s.restored
                ),
                Some(s) => format!("whole changelog, {} records", s.restored),
                None => "no restore".to_owned(),
            };
            println!("    p{p}: reopened by instance {id}, {how}");
        }
        println!(
            "  rebalance callbacks on the other instances during the restart: {}",
            others(self) - callbacks_before
        );
        Ok(())
    }

    /// After a join or leave: waits for the rebalance, produces wave `wave` (1-based),
    /// waits until it is processed, and prints where everything is.
    async fn step(&mut self, label: &str, wave: usize, waves: usize) -> Result<()> {
        let settled = self.settle(label).await?;
        let started = Instant::now();
        let produced = self.produce_wave(wave - 1, waves).await?;
        self.settle(&format!("{label}, wave {wave} produced"))
            .await?;
        let processed = started.elapsed();
        println!(
            "\n{label}: group settled in {settled:.2?} (each instance serving its share, every partition caught up); wave {wave} ({produced} purchases) produced and processed in {processed:.2?}"
        );
        self.print_step();
        self.print_queries().await;
        Ok(())
    }

    /// With `--serve`: one customer's total read through every instance.
    async fn print_queries(&self) {
        let customer = workload::customer_name(QUERIED_CUSTOMER);
        for (id, serving) in &self.serving {
            let mut answer = serve::read_total(serving.endpoint(), &customer).await;
            for (other, endpoint) in &self.endpoints {
                answer = answer.replace(endpoint, &format!("instance {other}"));
            }
            println!("  {customer} through instance {id}: {answer}");
        }
    }

    fn start_instance(&mut self, id: usize) -> Result<()> {
        let rewards = StoreBuilder::new(
            self.options.backend.supplier(REWARDS),
            Serdes::string(),
            Serdes::f64(),
        )
        .with_logging_enabled(HashMap::new());
        let visits = StoreBuilder::new(
            self.options.backend.supplier(VISITS),
            Serdes::string(),
            Serdes::i64(),
        )
        .with_logging_enabled(HashMap::new());
        let context = StoreContext::new(
            &self.application_id,
            0,
            self.options.partitions,
            self.root.join(format!("instance-{id}")),
        )?
        .with_changelog(self.changelog.clone())
        .with_guarantee(ProcessingGuarantee::ExactlyOnce);
        let mut manager = StoreManager::new(context);
        let stores = Stores {
            rewards: manager.add_store(rewards)?,
            visits: manager.add_store(visits)?,
        };
        let mut group = GroupConfig::new(self.config.clone(), &self.application_id, &self.input)
            .with_commit_interval(COMMIT_INTERVAL)
            .with_session_timeout(SESSION_TIMEOUT);
        if id == STATIC_MEMBER {
            group = group.with_instance_id(format!("{}-instance-{id}", self.application_id));
        }
        let mut listener = None;
        if self.options.serve {
            // A restarted instance serves where it did: the group lists it there.
            let address = self
                .endpoints
                .get(&id)
                .map_or("127.0.0.1:0", String::as_str);
            let (bound, endpoint) = serve::bind(address)?;
            group = group.with_endpoint(endpoint.clone());
            self.endpoints.insert(id, endpoint);
            listener = Some(bound);
        }
        let manager = Arc::new(manager);
        let instance = Instance::start(
            id,
            group.clone(),
            (manager.clone(), stores.clone()),
            Handle::current(),
            self.positions.clone(),
        )?;
        if let (Some(listener), Some(endpoint)) = (listener, self.endpoints.get(&id)) {
            let serving = serve::start(listener, endpoint, manager, &stores, &group)?;
            println!(
                "  instance {id} serves queries: curl http://{endpoint}/stores/{REWARDS}/keys/{}",
                workload::customer_name(QUERIED_CUSTOMER)
            );
            self.serving.insert(id, serving);
        }
        self.instances.push(instance);
        Ok(())
    }

    /// Produces wave `wave` of `waves` and reads the new end offsets; returns its size.
    async fn produce_wave(&mut self, wave: usize, waves: usize) -> Result<u64> {
        let (from, to) = wave_bounds(self.options.purchases, wave, waves);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        for i in from..to {
            let (customer, amount) = workload::purchase(i);
            // Kafka's default partitioner, as a Java producer of this topic would: a query
            // finds each customer where its purchases went.
            let key = workload::customer_name(customer);
            let partition = state_core::partition_for_key(key.as_bytes(), self.options.partitions)?;
            let record = ChangelogRecord::put(key, amount.to_be_bytes().to_vec(), now);
            self.sink
                .append(&self.input, partition, &record)
                .map_err(|err| {
                    err.context(format!(
                        "producing purchase {i} to input topic {}",
                        self.input
                    ))
                })?;
        }
        self.sink
            .commit(&SourceOffsets::none())
            .await
            .map_err(|err| err.context(format!("flushing input topic {}", self.input)))?;
        for (p, end) in self.ends.iter_mut().enumerate() {
            *end = self.reader.offsets(p as i32).await?.end;
        }
        self.produced += to - from;
        Ok(to - from)
    }

    /// Waits until the assignment is balanced, every partition is served by exactly
    /// one instance and every input record is processed; returns how long it took.
    async fn settle(&self, label: &str) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let reports: Vec<Report> = self.instances.iter().map(Instance::report).collect();
            for (instance, report) in self.instances.iter().zip(&reports) {
                if let Some(failed) = &report.failed {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!("instance {} stopped: {failed}", instance.id),
                    ));
                }
            }
            let behind = self.behind(&reports);
            if behind.is_empty() {
                break;
            }
            if started.elapsed() > STEP_DEADLINE {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "step \"{label}\" did not settle within {STEP_DEADLINE:?}: {}",
                        behind.join("; ")
                    ),
                ));
            }
            tokio::time::sleep(LOOK_EVERY).await;
        }
        Ok(started.elapsed())
    }

    /// What keeps the group from being settled; empty when it is.
    fn behind(&self, reports: &[Report]) -> Vec<String> {
        let mut behind = Vec::new();
        let partitions = self.ends.len();
        let n = reports.len().max(1);
        let (low, high) = (partitions / n, partitions.div_ceil(n));
        for (instance, report) in self.instances.iter().zip(reports) {
            if !(low..=high).contains(&report.ready.len()) {
                behind.push(format!(
                    "instance {} serves {} partitions, expected {low}..={high}",
                    instance.id,
                    report.ready.len()
                ));
            }
        }
        let positions = self.positions.lock().map(|p| p.clone()).unwrap_or_default();
        for (p, &end) in self.ends.iter().enumerate() {
            let p = p as i32;
            let servers = reports.iter().filter(|r| r.ready.contains(&p)).count();
            let at = positions.get(&p).copied().unwrap_or(0);
            if servers != 1 {
                behind.push(format!("partition {p} is served by {servers} instances"));
            } else if at < end {
                behind.push(format!(
                    "partition {p} processed up to offset {at} of {end}"
                ));
            }
        }
        behind
    }

    /// Who owns what now, and how each partition that moved in this step got there.
    fn print_step(&mut self) {
        let mut owners = BTreeMap::new();
        for instance in &self.instances {
            let report = instance.report();
            let list: Vec<String> = report.ready.iter().map(i32::to_string).collect();
            println!(
                "  instance {}  partitions {:<12} processed {}",
                instance.id,
                list.join(","),
                report.processed
            );
            owners.extend(report.ready.iter().map(|&p| (p, instance.id)));
        }
        for (&p, &owner) in &owners {
            let before = self.owners.get(&p).copied();
            if before == Some(owner) {
                continue;
            }
            let Some(instance) = self.instances.iter().find(|i| i.id == owner) else {
                continue;
            };
            let origin = before.map_or("new".to_owned(), |b| format!("instance {b}"));
            let arrival = instance.arrival(p);
            let summary = arrival.as_ref().and_then(|a| a.summary.clone());
            let how = match &summary {
                Some(s) if s.wiped.is_some() => format!(
                    "wiped ({}), restored from offset {}",
                    s.wiped
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    s.from
                ),
                Some(s) if s.from == 0 && s.end == 0 => "cold, empty changelog".to_owned(),
                Some(s) if s.from == 0 => "cold: whole changelog".to_owned(),
                Some(s) => format!("kept directory: tail from offset {}", s.from),
                None => "no restore".to_owned(),
            };
            if before.is_some() {
                let cold = summary.as_ref().is_none_or(|s| s.from == 0);
                if cold {
                    self.moves.cold += 1;
                } else {
                    self.moves.warm += 1;
                }
                self.moves.restored += summary.as_ref().map_or(0, |s| s.restored);
            }
            let counters = instance
                .manager
                .progress()
                .get(REWARDS, p)
                .map(|c| format!("; {c} in {:.0?}", c.elapsed))
                .unwrap_or_default();
            let ready = arrival
                .as_ref()
                .and_then(|a| Some(a.ready_at?.duration_since(a.assigned_at)))
                .map(|d| format!("{d:.0?}"))
                .unwrap_or_else(|| "?".to_owned());
            println!(
                "    p{p}: {origin} -> instance {owner}, {how}{counters}; assigned->ready {ready}"
            );
        }
        self.owners = owners;
    }

    /// Reads every remaining instance's totals and compares them with an independent
    /// computation; prints the summary.
    fn verify(mut self, leaver: Report, started: Instant) -> Result<bool> {
        let (mut processed, mut refused) = (
            leaver.processed + self.stopped.processed,
            leaver.refused_commits + self.stopped.refused_commits,
        );
        for instance in &self.instances {
            let report = instance.report();
            processed += report.processed;
            refused += report.refused_commits;
            instance.request_finish();
        }
        let mut actual = BTreeMap::new();
        let mut visits = BTreeMap::new();
        let mut served_twice = 0;
        for instance in self.instances.drain(..) {
            let id = instance.id;
            let served = instance
                .finish()
                .map_err(|err| err.context(format!("finishing instance {id}")))?;
            for (customer, total) in served.totals {
                if actual.insert(customer, total).is_some() {
                    served_twice += 1;
                }
            }
            visits.extend(served.visits);
        }
        let expected = workload::expected_totals(self.options.purchases);
        let differing: Vec<&String> = expected
            .iter()
            .filter(|(customer, total)| actual.get(*customer) != Some(*total))
            .map(|(customer, _)| customer)
            .chain(actual.keys().filter(|c| !expected.contains_key(*c)))
            .collect();
        let expected_visits = workload::expected_visits(self.options.purchases);
        let visits_differ = expected_visits
            .iter()
            .filter(|(customer, count)| visits.get(*customer) != Some(*count))
            .count()
            + visits
                .keys()
                .filter(|c| !expected_visits.contains_key(*c))
                .count();
        let verified = differing.is_empty() && served_twice == 0 && visits_differ == 0;
        let replayed = processed.saturating_sub(self.produced);
        println!();
        println!(
            "  purchases          {:>10}  in {} waves",
            self.produced,
            self.options.instances + 2
        );
        println!("  records processed  {processed:>10}  ({replayed} processed twice)");
        println!(
            "  partition moves    {:>10}  ({} cold, {} from a kept directory)",
            self.moves.cold + self.moves.warm,
            self.moves.cold,
            self.moves.warm
        );
        println!(
            "  records restored   {:>10}  by moved partitions",
            self.moves.restored
        );
        println!("  commits refused    {refused:>10}  (mid-rebalance; aborted and retried)");
        println!("  total time         {:>10.1?}", started.elapsed());
        println!(
            "  verified           {:>10}",
            if verified { "yes" } else { "NO" }
        );
        if verified {
            println!(
                "verified: the points and visits of {} customers over the remaining instances \
                 equal an independent computation over all {} purchases",
                actual.len(),
                self.produced
            );
        } else {
            let sample: Vec<String> = differing
                .iter()
                .take(3)
                .map(|c| format!("{c}: {:?}, expected {:?}", actual.get(*c), expected.get(*c)))
                .collect();
            println!(
                "NOT verified: {} customers' points and {visits_differ} customers' visits differ \
                 from an independent computation and {served_twice} were served by two \
                 instances (e.g. {})",
                differing.len(),
                sample.join("; ")
            );
        }
        Ok(verified)
    }
}

/// Purchases `from..to` of wave `wave` (0-based) of `waves` equal waves.
fn wave_bounds(purchases: u64, wave: usize, waves: usize) -> (u64, u64) {
    let waves = waves.max(1) as u64;
    let wave = wave as u64;
    (purchases * wave / waves, purchases * (wave + 1) / waves)
}

/// The cluster's client settings. librdkafka's mock cluster is refused: tried with
/// this demo, its cooperative rebalances took 10-15 s and refused input-offset commits,
/// so moved partitions reprocessed records and the totals came out wrong.
fn cluster(options: &ScaleOutOptions) -> Result<(KafkaChangelogConfig, String)> {
    let Some(servers) = &options.bootstrap_servers else {
        return Err(Error::invalid_input(
            "--instances needs --bootstrap-servers (a real Kafka cluster): librdkafka's embedded \
             mock cluster does not run consumer-group rebalances faithfully enough (slow \
             cooperative rebalances, refused offset commits, records processed twice)",
        ));
    };
    println!("cluster: Kafka at {servers}");
    let config = kafka::changelog(servers, options.timeout)?.config().clone();
    Ok((config, servers.clone()))
}
