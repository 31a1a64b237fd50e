//! A restore interrupted by a broker stop: its listener hears of the stall within
//! `STALL_NOTICE_AFTER`, it fails within its stall timeout with a clear error, keeps what it
//! applied (data and position together), and a restore after the
//! broker returns resumes there — every record applied exactly once. Runs on the
//! three-broker cluster of `scripts/kafka.sh` (a topic with one replica, whose broker is
//! stopped), so the single broker other tests use stays up.
#![cfg(feature = "kafka")]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use conformance_tests::{Fixture, block_on, contents};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use state_core::{
    Changelog, ChangelogRecord, ErrorKind, ProcessingGuarantee, RestoreListener, RestoreOptions,
    RestoreTarget, SinkOptions, TopicSpec, restore,
};

const RECORDS: u32 = 20_000;

/// 512-byte values: 10 MB in all, far more than the consumer may buffer (64 KiB).
fn value(i: u32) -> Vec<u8> {
    let mut value = vec![0u8; 512];
    value[..4].copy_from_slice(&i.to_be_bytes());
    value
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

/// Restarts the stopped broker even when the test fails.
struct Restart(Mutex<Option<i32>>);

impl Drop for Restart {
    fn drop(&mut self) {
        if let Some(node) = self.0.lock().map(|mut n| n.take()).unwrap_or(None) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
            let _ = Command::new("bash")
                .arg(script)
                .args(["start-broker", &node.to_string()])
                .status();
        }
    }
}

/// Stops the leader's broker after the first restored batch; records the stall notices.
struct StopAfterFirstBatch {
    leader: i32,
    stopped: Mutex<bool>,
    restart: Restart,
    /// When the broker was stopped, and each stall notice: (time since, offset, limit).
    stopped_at: Mutex<Option<Instant>>,
    notices: Mutex<Vec<(Duration, i64, Duration)>>,
}

impl RestoreListener for StopAfterFirstBatch {
    fn on_batch_restored(&self, _: RestoreTarget<'_>, _: i64, _: u64) {
        let mut stopped = self.stopped.lock().unwrap();
        if !*stopped {
            kafka_sh(&["stop-broker", &self.leader.to_string()]);
            *self.restart.0.lock().unwrap() = Some(self.leader);
            *self.stopped_at.lock().unwrap() = Some(Instant::now());
            *stopped = true;
        }
    }

    fn on_restore_stalled(&self, _: RestoreTarget<'_>, at: i64, _: Duration, limit: Duration) {
        let since = self.stopped_at.lock().unwrap().map(|t| t.elapsed());
        self.notices
            .lock()
            .unwrap()
            .push((since.unwrap_or_default(), at, limit));
    }
}

#[test]
fn kafka_restore_interrupted_by_a_broker_stop_resumes() {
    let Some(cluster) = test_support::cluster() else {
        return;
    };
    // Small fetches, so the consumer cannot have the whole partition buffered before the
    // broker goes away.
    let config = KafkaChangelogConfig::new(cluster.clone())
        .with_consumer_setting("message.max.bytes", "65536")
        .with_consumer_setting("fetch.max.bytes", "65536")
        .with_consumer_setting("max.partition.fetch.bytes", "65536")
        .with_consumer_setting("queued.max.messages.kbytes", "64")
        .with_consumer_setting("queued.min.messages", "100")
        .with_poll_timeout(Duration::from_millis(200));
    let changelog = KafkaChangelog::new(config).unwrap();
    let topic = test_support::unique_name("outage");
    let mut spec = TopicSpec::changelog(&topic, 1, &BTreeMap::new());
    spec.replication_factor = Some(1);
    block_on(changelog.ensure_topic(&spec)).unwrap();
    let sink = block_on(changelog.sink(&SinkOptions::default())).unwrap();
    for i in 0..RECORDS {
        let key = format!("key-{:05}", i % 5_000).into_bytes();
        sink.append(&topic, 0, &ChangelogRecord::put(key, value(i), 0))
            .unwrap();
    }
    block_on(sink.commit(&state_core::SourceOffsets::none())).unwrap();

    let metadata_client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster)
        .create()
        .unwrap();
    let metadata = metadata_client
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    let leader = metadata.topics()[0].partitions()[0].leader();
    assert!((1..=3).contains(&leader), "unexpected leader {leader}");

    // A durable backend when there is one: what it applied stays with its position.
    let backend = conformance_tests::durable_backends()
        .into_iter()
        .next()
        .unwrap_or_else(|| conformance_tests::backends().remove(0));
    let f = Fixture::new(backend.as_ref(), "store");
    let store = f.open();
    let reader =
        block_on(changelog.reader(&topic, ProcessingGuarantee::AtLeastOnce.isolation())).unwrap();
    let listener = StopAfterFirstBatch {
        leader,
        stopped: Mutex::new(false),
        restart: Restart(Mutex::new(None)),
        stopped_at: Mutex::new(None),
        notices: Mutex::new(Vec::new()),
    };
    let options = RestoreOptions {
        batch_size: Some(100),
        stall_timeout: Duration::from_secs(5),
        ..RestoreOptions::default()
    };
    let started = Instant::now();
    let err = block_on(restore(
        store.as_ref(),
        reader.as_ref(),
        0,
        &options,
        &listener,
    ))
    .expect_err("restore must fail while the partition's only broker is down");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the failure took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Unavailable),
        "{err}"
    );
    assert!(
        err.to_string().contains(&topic),
        "the error must name the topic: {err}"
    );
    let applied = store
        .position()
        .unwrap()
        .applied(0)
        .expect("a first batch was applied");
    assert!(
        applied + 1 < i64::from(RECORDS),
        "restore finished before the broker stopped"
    );

    let notices = listener.notices.lock().unwrap().clone();
    let (since, at, limit) = *notices
        .first()
        .unwrap_or_else(|| panic!("no stall notice before the timeout: {err}"));
    assert!(
        since < state_core::STALL_NOTICE_AFTER + Duration::from_secs(3),
        "the stall was told {since:?} after the broker stopped"
    );
    assert_eq!((at, limit), (applied + 1, options.stall_timeout));

    kafka_sh(&["start-broker", &leader.to_string()]);
    *listener.restart.0.lock().unwrap() = None;
    let resumed = block_on(restore(
        store.as_ref(),
        reader.as_ref(),
        0,
        &RestoreOptions::default(),
        &state_core::NoopRestoreListener,
    ))
    .unwrap();
    assert_eq!(
        resumed.from,
        applied + 1,
        "restore must resume after the position"
    );
    assert_eq!(resumed.restored as i64, i64::from(RECORDS) - applied - 1);

    let expected: Vec<_> = (RECORDS - 5_000..RECORDS)
        .map(|i| (format!("key-{:05}", i % 5_000).into_bytes(), value(i)))
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let restored = contents(store.as_ref());
    assert_eq!(restored.len(), expected.len());
    assert!(
        restored == expected,
        "restored state differs from the last value per key"
    );
}
