//! Helpers shared by the integration tests: broker discovery, unique topic names,
//! reading a partition to its end, and a guard that restarts stopped brokers.
#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use state_core::{
    ChangelogPositions, ChangelogReader, ChangelogSink, ConsumedRecord, Offset, Partition, Result,
    SourceOffsets,
};

/// How long a broker may take to accept a TCP connection before it counts as down.
const REACHABLE_WITHIN: Duration = Duration::from_secs(5);

/// The single-broker bootstrap servers, or `None` (after a skip notice) when the broker
/// is down. Under `CI=true` a missing broker fails the test instead.
pub fn single_broker() -> Option<String> {
    broker("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "single")
}

/// The three-broker cluster's bootstrap servers, as [`single_broker`].
pub fn cluster() -> Option<String> {
    broker(
        "KAFKA_CLUSTER_BOOTSTRAP_SERVERS",
        "127.0.0.1:9192,127.0.0.1:9292,127.0.0.1:9392",
        "cluster",
    )
}

fn broker(var: &str, default: &str, which: &str) -> Option<String> {
    let servers = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    if reachable(&servers) {
        return Some(servers);
    }
    let message = format!(
        "no Kafka broker reachable at {servers} ({var}) within {REACHABLE_WITHIN:?}; \
         start it with `scripts/kafka.sh start {which}`"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Whether every listed `host:port` accepts a TCP connection before the deadline.
fn reachable(servers: &str) -> bool {
    let deadline = Instant::now() + REACHABLE_WITHIN;
    servers.split(',').all(|server| {
        let Ok(mut addrs) = server.trim().to_socket_addrs() else {
            return false;
        };
        let Some(addr) = addrs.next() else {
            return false;
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if TcpStream::connect_timeout(&addr, left.max(Duration::from_millis(50))).is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Reads `partition` from `from` until the cursor's position reaches `end`, with a
/// deadline. Returns the records and the final position.
pub async fn read_until(
    reader: &dyn ChangelogReader,
    partition: Partition,
    from: Offset,
    end: Offset,
) -> Result<(Vec<ConsumedRecord>, Offset)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cursor = reader.open(partition, from).await?;
    let mut records = Vec::new();
    while cursor.position() < end {
        assert!(
            Instant::now() < deadline,
            "reading {} partition {partition} stuck at position {} before end {end} ({} records read)",
            reader.topic(),
            cursor.position(),
            records.len()
        );
        records.extend(cursor.next_batch(100).await?);
    }
    Ok((records, cursor.position()))
}

/// Reads `partition` from its start to the end offset it has now.
pub async fn read_all(
    reader: &dyn ChangelogReader,
    partition: Partition,
) -> Result<(Vec<ConsumedRecord>, Offset)> {
    let offsets = reader.offsets(partition).await?;
    read_until(reader, partition, offsets.start, offsets.end).await
}

/// Runs `scripts/kafka.sh` with `args`, panicking with its output on failure.
pub fn kafka_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running kafka.sh {args:?}: {err}"));
    assert!(
        output.status.success(),
        "kafka.sh {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops cluster brokers on request and starts every one it stopped again when dropped,
/// so a failing test never leaves the cluster degraded.
#[derive(Default)]
pub struct BrokerGuard {
    stopped: Vec<u32>,
}

impl BrokerGuard {
    /// Stops cluster broker `n` (`scripts/kafka.sh stop-broker n`).
    pub fn stop(&mut self, n: u32) {
        self.stopped.push(n);
        kafka_sh(&["stop-broker", &n.to_string()]);
    }

    /// Starts every broker this guard stopped.
    pub fn restart_all(&mut self) {
        for n in std::mem::take(&mut self.stopped) {
            kafka_sh(&["start-broker", &n.to_string()]);
        }
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        for n in std::mem::take(&mut self.stopped) {
            // Best effort: panicking inside a drop during a panic would abort.
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
            let status = Command::new("bash")
                .arg(script)
                .args(["start-broker", &n.to_string()])
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("could not restart cluster broker {n}: {status:?}");
            }
        }
    }
}

/// Commits `sink` without input offsets; returns the acknowledged offsets.
pub async fn commit(sink: &(impl ChangelogSink + ?Sized)) -> Result<ChangelogPositions> {
    Ok(sink.commit(&SourceOffsets::none()).await?.positions)
}
