//! `restore` interrupted in the middle of its work, with the real binary on the
//! three-broker cluster (a one-replica topic, whose broker alone is stopped, so the single
//! broker other tests use stays up), on every durable backend:
//!
//! - the topic's broker lost mid-restore: the stall is reported within seconds, with the
//!   limit `--stall-timeout` set; the command fails within that limit and keeps what it
//!   restored, durable, with its position; after the broker returns, a rerun replays only
//!   the rest and `verify` passes;
//! - SIGTERM and SIGINT mid-restore: exit 143 and 130 after making what was restored
//!   durable; a rerun resumes there.
//!
//! The tests share one changelog (produced once) and take turns: a broker stop would stall
//! the others. They wait on what the binary prints, never on a fixed sleep; `SIGSTOP`
//! holds a restore still while the broker goes, so it cannot finish first.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{BIN, STORE, args, assert_exit, durable_backends, location, run_owned, text};
use statestore::{
    Changelog, ChangelogRecord, Serde, Serdes, SinkOptions, TopicSpec, changelog_topic_name,
};
use test_support::{cluster, try_eventually, unique_name};

/// Records in the changelog: far more than a restore reads ahead (about 60,000 of these),
/// and a million-record restore takes about a second here, so a signal sent when the first
/// records arrive lands long before the end.
const RECORDS: u32 = 1_000_000;
/// Distinct keys among them.
const KEYS: u32 = 100_000;
/// The stall limit the lost-broker test sets with `--stall-timeout`.
const STALL_SECS: u64 = 8;

/// The shared changelog: cluster servers, application id, the partition leader's node.
struct Topic {
    servers: String,
    app: String,
    leader: i32,
}

/// One test at a time: a stopped broker stalls every restore of the topic.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The changelog, produced by the first test that asks; `None` when the cluster is down
/// (skipped outside CI).
fn topic() -> Option<&'static Topic> {
    static TOPIC: OnceLock<Option<Topic>> = OnceLock::new();
    TOPIC
        .get_or_init(|| {
            let servers = cluster()?;
            let app = unique_name("cli-faults");
            let leader = produce(&servers, &app);
            Some(Topic {
                servers,
                app,
                leader,
            })
        })
        .as_ref()
}

/// Creates `<app>-rewards-changelog` with one partition and one replica, writes
/// `customer-N -> i` for every `i` of [`RECORDS`] (key `i % KEYS`) and returns the
/// partition's leader.
fn produce(servers: &str, app: &str) -> i32 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let topic = changelog_topic_name(app, STORE);
    runtime.block_on(async {
        let changelog = changelog_kafka::KafkaChangelog::new(
            changelog_kafka::KafkaChangelogConfig::new(servers)
                .with_client_id("statestore-cli-tests"),
        )
        .unwrap();
        let mut spec = TopicSpec::changelog(&topic, 1, &BTreeMap::new());
        spec.replication_factor = Some(1);
        changelog.ensure_topic(&spec).await.unwrap();
        let sink = changelog.sink(&SinkOptions::default()).await.unwrap();
        for i in 0..RECORDS {
            let key = Serdes::string()
                .serialize(&format!("customer-{:06}", i % KEYS))
                .unwrap();
            let value = Serdes::f64().serialize(&f64::from(i)).unwrap();
            sink.append(&topic, 0, &ChangelogRecord::put(key, value, 0))
                .unwrap();
        }
        sink.commit(&state_core::SourceOffsets::none())
            .await
            .unwrap();
    });
    leader_of(servers, &topic)
}

fn leader_of(servers: &str, topic: &str) -> i32 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .unwrap();
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let leader = metadata.topics()[0].partitions()[0].leader();
    assert!((1..=3).contains(&leader), "unexpected leader {leader}");
    leader
}

fn kafka_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kafka.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stopped broker, started again when dropped, even when the test fails.
struct StoppedBroker(Option<i32>);

impl StoppedBroker {
    fn stop(node: i32) -> Self {
        kafka_sh(&["stop-broker", &node.to_string()]);
        Self(Some(node))
    }

    fn start(mut self) {
        if let Some(node) = self.0.take() {
            kafka_sh(&["start-broker", &node.to_string()]);
        }
    }
}

impl Drop for StoppedBroker {
    fn drop(&mut self) {
        if let Some(node) = self.0.take() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
            let _ = Command::new("bash")
                .arg(script)
                .args(["start-broker", &node.to_string()])
                .status();
        }
    }
}

/// A running `statestore` whose stderr lines are collected as they come.
struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Running {
    fn spawn(args: &[String]) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut pipe = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut out = String::new();
            let _ = pipe.read_to_string(&mut out);
            out
        });
        Self {
            child,
            stderr,
            stdout: Some(stdout),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn line(&mut self, needle: &str, within: Duration) -> String {
        let found = try_eventually(within, &format!("a line with {needle:?}"), || {
            let lines = self.stderr.lock().unwrap();
            match lines.iter().find(|line| line.contains(needle)) {
                Some(line) => Ok(line.clone()),
                None => Err(lines.join(" | ")),
            }
        });
        found.unwrap_or_else(|timed_out| {
            let _ = self.child.kill();
            panic!("{timed_out}")
        })
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Waits for the exit; returns it with stdout.
    fn exit(&mut self, within: Duration) -> (ExitStatus, String) {
        let exited = try_eventually(within, "the restore to exit", || {
            self.child.try_wait().unwrap()
        });
        let status = exited.unwrap_or_else(|timed_out| {
            let _ = self.child.kill();
            panic!("{timed_out}; stderr: {}", self.stderr())
        });
        let stdout = self.stdout.take().unwrap().join().unwrap();
        (status, stdout)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn restore_args(topic: &Topic, dir: &Path, backend: &str, extra: &[&str]) -> Vec<String> {
    let mut out = args(&[
        &[
            "restore",
            "--bootstrap-servers",
            &topic.servers,
            "--timeout",
            "30",
            "--partitions",
            "0",
            "--json",
        ],
        extra,
    ]);
    out.extend(location(dir, &topic.app, backend));
    out
}

/// The offset the store says it applied up to, from `statestore inspect`.
fn position(topic: &Topic, dir: &Path, backend: &str) -> i64 {
    let mut inspect = args(&[&["inspect", "--partition", "0"]]);
    inspect.extend(location(dir, &topic.app, backend));
    let output = run_owned(&inspect);
    assert_exit(&output, 0);
    let text = text(&output);
    text.lines()
        .find_map(|line| line.strip_prefix("position: changelog partition 0 applied up to offset "))
        .and_then(|offset| offset.trim().parse().ok())
        .unwrap_or_else(|| panic!("{backend}: no position: {text}"))
}

/// A `"name":number` field of the restore's JSON.
fn json_number(json: &str, name: &str) -> i64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {json}"));
    json[at + name.len() + 3..]
        .split([',', '}'])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {json}"))
}

/// Reruns the restore after an interrupted one that kept offsets `..=kept`: it must
/// replay exactly the rest.
fn rerun_resumes(topic: &Topic, dir: &Path, backend: &str, kept: i64) {
    let output = run_owned(&restore_args(topic, dir, backend, &[]));
    assert_exit(&output, 0);
    let json = String::from_utf8_lossy(&output.stdout).to_string();
    assert_eq!(json_number(&json, "from"), kept + 1, "{backend}: {json}");
    assert_eq!(
        json_number(&json, "records"),
        i64::from(RECORDS) - kept - 1,
        "{backend}: the rerun must replay only the rest: {json}"
    );
}

#[test]
fn on_the_cluster_a_lost_broker_is_reported_and_the_rerun_resumes_where_it_stopped() {
    let _serial = serial();
    let Some(topic) = topic() else {
        return;
    };
    let stall = STALL_SECS.to_string();
    let backends = durable_backends();
    let dirs: Vec<_> = backends
        .iter()
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    // Every backend's restore at once, so the broker stops once for all of them.
    let mut running: Vec<_> = backends
        .iter()
        .zip(&dirs)
        .map(|(backend, dir)| {
            Running::spawn(&restore_args(
                topic,
                dir.path(),
                backend,
                &["--stall-timeout", &stall],
            ))
        })
        .collect();
    for restore in &mut running {
        restore.line("records arriving", Duration::from_secs(60));
        // Held still until the broker is gone: it cannot finish first.
        restore.signal("STOP");
    }
    let stopped = StoppedBroker::stop(topic.leader);
    let resumed = Instant::now();
    for restore in &running {
        restore.signal("CONT");
    }
    for (restore, backend) in running.iter_mut().zip(&backends) {
        let line = restore.line("cannot reach the broker", Duration::from_secs(20));
        let after = resumed.elapsed();
        assert!(
            after < Duration::from_secs(10),
            "{backend}: the stall was reported {after:?} after the broker went"
        );
        assert!(
            line.contains(&format!("waiting up to {STALL_SECS}s (--stall-timeout)")),
            "{backend}: {line}"
        );
    }
    for (restore, backend) in running.iter_mut().zip(&backends) {
        let (status, _) = restore.exit(Duration::from_secs(STALL_SECS + 30));
        let after = resumed.elapsed();
        let stderr = restore.stderr();
        assert_eq!(status.code(), Some(1), "{backend}: {stderr}");
        assert!(
            after < Duration::from_secs(STALL_SECS + 10),
            "{backend}: failed {after:?} after the broker went, with --stall-timeout {STALL_SECS}"
        );
        assert!(
            stderr.contains("error: timeout: restoring store")
                && stderr.contains(&format!("read nothing for {STALL_SECS}s"))
                && stderr.contains("the broker is unreachable"),
            "{backend}: {stderr}"
        );
        assert!(
            stderr.contains("durable up to offset")
                && stderr.contains("running restore again resumes at offset"),
            "{backend}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let kept: Vec<i64> = backends
        .iter()
        .zip(&dirs)
        .map(|(backend, dir)| position(topic, dir.path(), backend))
        .collect();
    for (kept, backend) in kept.iter().zip(&backends) {
        assert!(
            *kept > 0 && *kept < i64::from(RECORDS) - 1,
            "{backend}: kept up to offset {kept}"
        );
    }

    stopped.start();
    for ((backend, dir), kept) in backends.iter().zip(&dirs).zip(kept) {
        rerun_resumes(topic, dir.path(), backend, kept);
        let mut verify = args(&[&[
            "verify",
            "--partition",
            "0",
            "--bootstrap-servers",
            &topic.servers,
            "--timeout",
            "30",
        ]]);
        verify.extend(location(dir.path(), &topic.app, backend));
        let output = run_owned(&verify);
        assert_exit(&output, 0);
        assert!(text(&output).contains("verified"), "{}", text(&output));
    }
}

/// Interrupts a restore with `signal` once records arrive; it must exit with `code`,
/// keeping what it restored, and a rerun must resume there.
fn interrupted_restore_keeps_its_work(signal: &str, code: i32) {
    let _serial = serial();
    let Some(topic) = topic() else {
        return;
    };
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let mut restore = Running::spawn(&restore_args(topic, dir.path(), backend, &[]));
        restore.line("records arriving", Duration::from_secs(60));
        restore.signal(signal);
        let (status, _) = restore.exit(Duration::from_secs(30));
        let stderr = restore.stderr();
        assert_eq!(status.code(), Some(code), "{backend}: {stderr}");
        assert!(
            stderr.contains("interrupted") && stderr.contains("durable up to offset"),
            "{backend}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        let kept = position(topic, dir.path(), backend);
        assert!(
            kept > 0 && kept < i64::from(RECORDS) - 1,
            "{backend}: kept up to offset {kept}"
        );
        rerun_resumes(topic, dir.path(), backend, kept);
    }
}

#[test]
fn on_the_cluster_sigterm_mid_restore_exits_143_and_keeps_what_was_restored() {
    interrupted_restore_keeps_its_work("TERM", 143);
}

#[test]
fn on_the_cluster_sigint_mid_restore_exits_130_and_keeps_what_was_restored() {
    interrupted_restore_keeps_its_work("INT", 130);
}
