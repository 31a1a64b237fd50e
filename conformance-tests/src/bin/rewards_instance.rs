//! One instance of the scale-out tests: a consumer-group member running the rewards
//! workload over per-partition stores, driven by its parent through stdin and reporting
//! on stdout, one event per line.
//!
//! Usage: `rewards_instance BOOTSTRAP APP_ID INPUT_TOPIC PARTITIONS BACKEND STATE_DIR
//! STANDBYS GUARANTEE` with STANDBYS `none`, `all` or `replicas:K` and GUARANTEE
//! `at_least_once`
//! (purchases already counted are skipped, the idempotent-consumer pattern) or
//! `exactly_once` (every purchase is simply added: only the transaction keeps totals
//! exact across a crash). Each partition has two stores, `rewards` (totals) and `visits`
//! (purchases counted), committed together. `STATESTORE_COMMIT_INTERVAL_MS` sets the commit interval
//! (default 200). `STATESTORE_SNAPSHOTS` (a URL) and `STATESTORE_SNAPSHOT_EVERY` (records)
//! turn on snapshots of the partitions it owns, and restores from them
//! ([`conformance_tests::instance_snapshots`]).
//!
//! Events: `assigned P..`, `ready P RESTORED FROM END SNAPSHOT` (SNAPSHOT: the changelog
//! position of the snapshot the `rewards` store started from, `-` for none),
//! `revoked LOST P..`, `served P`
//! (the first record processed since the partition became ready). Commands: `dump`
//! (commit, then `entry P CUSTOMER TOTAL LAST_OFFSET` lines and `dump-end`), `count`
//! (`count N`: records processed, without committing), `lag`
//! (`lag P LAG APPLIED` lines and `lag-end`), `owned` (`owned P..`: the partitions served,
//! then `owned-end`), `pause-standbys`, `stop` (clean close, then `closed`).
//!
//! With `STATESTORE_SERVE=HOST:PORT` (port 0: any free one) the instance also serves
//! queries of both stores over HTTP there (the `query-server` crate, routed through the
//! group's directory) and prints `serving HOST:PORT` once it has joined.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use changelog_kafka::{
    GroupConfig, GroupListener, KafkaChangelog, KafkaChangelogConfig, StandbyPolicy,
    StatefulConsumer,
};
use conformance_tests::rewards::{RewardSerde, add, apply};
use state_core::{
    Partition, PartitionRestores, ProcessingGuarantee, Serdes, StoreBuilder, StoreContext,
    StoreManager,
};

const STORE: &str = "rewards";
const VISITS: &str = "visits";

fn main() {
    if let Err(err) = run() {
        say(&format!("error {err}"));
        std::process::exit(2);
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent reads line by line; a gone parent ends the child anyway.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn list(partitions: &[Partition]) -> String {
    partitions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints partition movements and forgets what was served when a partition moves.
struct Events {
    served: Arc<Mutex<BTreeSet<Partition>>>,
}

impl GroupListener for Events {
    fn on_assigned(&self, partitions: &[Partition]) {
        say(&format!("assigned {}", list(partitions)));
    }
    fn on_ready(&self, partition: Partition, restores: &PartitionRestores) {
        let summary = restores.get(STORE).and_then(Option::as_ref);
        let (restored, from, end) = summary.map_or((0, 0, 0), |s| (s.restored, s.from, s.end));
        let snapshot = summary
            .and_then(|s| s.snapshot.as_ref())
            .map_or_else(|| "-".to_owned(), |s| s.position.to_string());
        say(&format!(
            "ready {partition} {restored} {from} {end} {snapshot}"
        ));
    }
    fn on_revoked(&self, partitions: &[Partition], lost: bool) {
        let mut served = self.served.lock().unwrap();
        for p in partitions {
            served.remove(p);
        }
        say(&format!("revoked {lost} {}", list(partitions)));
    }
}

/// `STATESTORE_COMMIT_INTERVAL_MS`, default 200.
fn commit_interval() -> Result<Duration, Box<dyn std::error::Error>> {
    Ok(Duration::from_millis(
        std::env::var("STATESTORE_COMMIT_INTERVAL_MS").map_or(Ok(200), |v| v.parse())?,
    ))
}

fn commands() -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [
        _,
        bootstrap,
        app,
        input,
        partitions,
        backend,
        dir,
        standbys,
        guarantee,
    ] = args.as_slice()
    else {
        return Err("usage: rewards_instance BOOTSTRAP APP_ID INPUT_TOPIC PARTITIONS BACKEND STATE_DIR STANDBYS GUARANTEE".into());
    };
    let exactly_once = match guarantee.as_str() {
        "exactly_once" => true,
        "at_least_once" => false,
        other => return Err(format!("unknown guarantee {other}").into()),
    };
    let backend = conformance_tests::backend(backend)?;
    let kafka =
        KafkaChangelogConfig::new(bootstrap.clone()).with_poll_timeout(Duration::from_millis(100));
    let changelog = Arc::new(KafkaChangelog::new(kafka.clone())?);
    let context = StoreContext::new(app.clone(), 0, partitions.parse()?, dir)?
        .with_changelog(changelog)
        .with_guarantee(if exactly_once {
            ProcessingGuarantee::ExactlyOnce
        } else {
            ProcessingGuarantee::AtLeastOnce
        });
    let mut manager = StoreManager::new(context);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let writer = format!("rewards-instance-{}", std::process::id());
    let mut uploads = None;
    if let Some((policy, uploader)) = conformance_tests::instance_snapshots::from_env(&writer)? {
        uploads = Some((uploader.clone(), runtime.spawn(uploader.run())));
        manager = manager.with_snapshots(policy, uploader);
    }
    // Two stores per partition, moving and committing together: rewards (totals) and
    // visits (purchases counted).
    let rewards = manager.add_store(StoreBuilder::new(
        backend.supplier(STORE),
        Serdes::string(),
        RewardSerde,
    ))?;
    let visits = manager.add_store(StoreBuilder::new(
        backend.supplier(VISITS),
        Serdes::string(),
        RewardSerde,
    ))?;
    let manager = Arc::new(manager);
    let standbys = match standbys.as_str() {
        "all" => StandbyPolicy::AllUnowned,
        "none" => StandbyPolicy::None,
        other => match other.strip_prefix("replicas:").map(str::parse) {
            Some(Ok(k)) => StandbyPolicy::Replicas(k),
            _ => return Err(format!("unknown standby policy {other}").into()),
        },
    };
    let mut config = GroupConfig::new(kafka, app.clone(), input.clone())
        .with_commit_interval(commit_interval()?)
        .with_session_timeout(Duration::from_secs(6))
        .with_standbys(standbys);
    // Static membership when the test gives the instance an id.
    if let Ok(id) = std::env::var("STATESTORE_INSTANCE_ID") {
        config = config.with_instance_id(id);
    }
    let listener = if let Ok(address) = std::env::var("STATESTORE_SERVE") {
        let listener = runtime.block_on(tokio::net::TcpListener::bind(address.as_str()))?;
        config = config.with_endpoint(listener.local_addr()?.to_string());
        Some(listener)
    } else {
        None
    };
    let served = Arc::new(Mutex::new(BTreeSet::new()));
    let events = Arc::new(Events {
        served: served.clone(),
    });
    let mut consumer =
        StatefulConsumer::new(&config, manager.clone(), runtime.handle().clone(), events)?;
    if let (Some(listener), Some(endpoint)) = (listener, config.endpoint.clone()) {
        let directory: Arc<dyn query_server::Directory> = Arc::new(consumer.directory().clone());
        let server = query_server::QueryServer::builder(manager.clone(), endpoint.clone())
            .store(&rewards)
            .store(&visits)
            .directory(directory)
            .build();
        runtime.spawn(async move {
            if let Err(err) = server.serve(listener, std::future::pending()).await {
                say(&format!("error {err}"));
            }
        });
        say(&format!("serving {endpoint}"));
    }
    let commands = commands();
    let mut count = 0u64;
    loop {
        let processed = consumer.poll(Duration::from_millis(50), |record, partition| {
            let (totals, counts) = (partition.store(&rewards)?, partition.store(&visits)?);
            let one = 1i64.to_be_bytes();
            if exactly_once {
                add(&totals, record.offset, record.key, record.value)?;
                return add(&counts, record.offset, record.key, Some(&one));
            }
            apply(&totals, record.offset, record.key, record.value)?;
            apply(&counts, record.offset, record.key, Some(&one))
        })?;
        if let Some(p) = processed {
            count += 1;
            if served.lock().unwrap().insert(p) {
                say(&format!("served {p}"));
            }
        }
        let Ok(command) = commands.try_recv() else {
            continue;
        };
        match command.as_str() {
            "dump" => {
                consumer.commit()?;
                for p in consumer.ready_partitions() {
                    let partition = runtime
                        .block_on(manager.active(p))
                        .ok_or_else(|| format!("partition {p} is ready but not active"))?;
                    for entry in partition.store(&rewards)?.all()? {
                        let (customer, reward) = entry?;
                        say(&format!(
                            "entry {p} {customer} {} {}",
                            reward.total, reward.last_offset
                        ));
                    }
                    for entry in partition.store(&visits)?.all()? {
                        let (customer, count) = entry?;
                        say(&format!("visit {p} {customer} {}", count.total));
                    }
                }
                say("dump-end");
            }
            "count" => {
                say(&format!("count {count}"));
                say("count-end");
            }
            "lag" => {
                for lag in runtime.block_on(manager.standby_lags())? {
                    say(&format!(
                        "lag {} {} {}",
                        lag.partition, lag.lag, lag.applied
                    ));
                }
                say("lag-end");
            }
            "owned" => {
                let owned: Vec<Partition> = consumer.ready_partitions().into_iter().collect();
                say(&format!("owned {}", list(&owned)));
                say("owned-end");
            }
            "pause-standbys" => {
                consumer.set_standby_updates(false);
                say("paused");
            }
            "stop" => {
                consumer.close()?;
                // The snapshots closing took are uploaded before the process ends.
                if let Some((uploader, running)) = uploads.take() {
                    uploader.close();
                    runtime.block_on(running)?;
                }
                say("closed");
                return Ok(());
            }
            other => say(&format!("error unknown command {other}")),
        }
    }
}
