//! Replica-loss test against the real three-broker cluster
//! (`scripts/kafka.sh start cluster`). Without it the test prints a skip notice, or
//! fails under `CI=true`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use state_core::{
    Changelog, ChangelogRecord, ChangelogSink, IsolationLevel, SinkOptions, TopicSpec,
};
use test_support::eventually_async;

/// librdkafka gives up on a record after this long (`message.timeout.ms`).
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// A flush must report the failure within this bound.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);

async fn append_batch(
    sink: &dyn ChangelogSink,
    topic: &str,
    phase: &str,
    count: usize,
) -> Vec<String> {
    let keys: Vec<String> = (0..count).map(|i| format!("{phase}-{i}")).collect();
    for key in &keys {
        sink.append(
            topic,
            0,
            &ChangelogRecord::put(key.as_str(), phase, 1_700_000_000_000),
        )
        .unwrap();
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_one_lost_replica_and_fails_clearly_below_min_insync() {
    let Some(bootstrap) = test_support::cluster() else {
        return;
    };
    let config = KafkaChangelogConfig::new(&bootstrap)
        .with_client_id("changelog-kafka-cluster-test")
        .with_producer_setting(
            "message.timeout.ms",
            MESSAGE_TIMEOUT.as_millis().to_string(),
        )
        .with_flush_timeout(FLUSH_TIMEOUT)
        .with_metadata_timeout(Duration::from_secs(30));
    let changelog = KafkaChangelog::new(config).unwrap();
    let topic = test_support::unique_name("cluster-isr");
    let user = BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]);
    let mut spec = TopicSpec::changelog(&topic, 1, &user);
    spec.replication_factor = Some(3);
    changelog.ensure_topic(&spec).await.unwrap();

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let described = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(&topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
    assert_eq!(value("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(value("min.insync.replicas").as_deref(), Some("2"));

    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut guard = common::BrokerGuard::default();

    acknowledged.extend(append_batch(&sink, &topic, "all-up", 20).await);
    common::commit(&sink).await.unwrap();

    // One replica lost: two in-sync replicas still satisfy min.insync.replicas=2.
    guard.stop(3);
    let batch = append_batch(&sink, &topic, "one-down", 20).await;
    common::commit(&sink).await.unwrap();
    acknowledged.extend(batch);

    // Two lost: acks=all cannot be met; the flush fails in bounded time, naming why.
    guard.stop(2);
    append_batch(&sink, &topic, "two-down", 5).await;
    let started = Instant::now();
    let err = common::commit(&sink).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("flush with two brokers down failed after {took:?}: {err}");
    assert!(
        took < FLUSH_TIMEOUT + Duration::from_secs(5),
        "took {took:?}"
    );
    assert!(err.is_retriable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("in-sync replicas") || text.contains("timed out"),
        "the error names the cause: {text}"
    );
    assert!(text.contains(&topic), "{text}");

    // Both back: appends and flushes succeed again (after leader election settles).
    guard.restart_all();
    let mut attempt = 0;
    let batch = eventually_async(
        Duration::from_secs(180),
        "a flush succeeding after the brokers' restart",
        async || {
            attempt += 1;
            let batch = append_batch(&sink, &topic, &format!("recovered{attempt}"), 10).await;
            match common::commit(&sink).await {
                Ok(_) => Ok(batch),
                Err(err) => {
                    eprintln!("flush attempt {attempt} after restart failed: {err}");
                    Err(err)
                }
            }
        },
    )
    .await;
    acknowledged.extend(batch);

    // Every acknowledged record is in the log (unacknowledged ones may be too).
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let (records, end) = common::read_all(reader.as_ref(), 0).await.unwrap();
    assert_eq!(end, reader.offsets(0).await.unwrap().end);
    let read: BTreeSet<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.key).into_owned())
        .collect();
    let missing: Vec<_> = acknowledged.difference(&read).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}
