//! Tests against the real single Kafka broker (`scripts/kafka.sh start single`).
//! Without a broker they print a skip notice, or fail under `CI=true`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::{ClientConfig, Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogRecord, ChangelogSink, ErrorKind, IsolationLevel, ProcessingGuarantee,
    ReadAhead, SinkOptions, TopicSpec,
};
use test_support::eventually_async;

fn changelog(bootstrap: &str) -> KafkaChangelog {
    KafkaChangelog::new(
        KafkaChangelogConfig::new(bootstrap).with_client_id("changelog-kafka-tests"),
    )
    .unwrap()
}

/// A changelog on `bootstrap` and a new compacted topic of `partitions` partitions.
async fn changelog_with_topic(
    bootstrap: &str,
    prefix: &str,
    partitions: i32,
) -> (KafkaChangelog, String) {
    let changelog = changelog(bootstrap);
    let topic = test_support::unique_name(prefix);
    changelog
        .ensure_topic(&TopicSpec::changelog(&topic, partitions, &BTreeMap::new()))
        .await
        .unwrap();
    (changelog, topic)
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

fn exactly_once(id: &str) -> SinkOptions {
    SinkOptions {
        guarantee: ProcessingGuarantee::ExactlyOnce,
        transactional_id: Some(id.to_owned()),
        source: None,
    }
}

fn keys(records: &[state_core::ConsumedRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.key).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_ensure_topic_creates_a_compacted_topic_with_user_config() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let changelog = changelog(&bootstrap);
    let topic = test_support::unique_name("broker-config");
    let user = BTreeMap::from([
        ("min.insync.replicas".to_owned(), "1".to_owned()),
        ("min.compaction.lag.ms".to_owned(), "12345".to_owned()),
    ]);
    let mut spec = TopicSpec::changelog(&topic, 3, &user);
    spec.replication_factor = Some(1);
    changelog.ensure_topic(&spec).await.unwrap();
    // Creating again is a no-op on a matching topic.
    changelog.ensure_topic(&spec).await.unwrap();

    let described = admin(&bootstrap)
        .describe_configs(
            [&ResourceSpecifier::Topic(&topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    let resource = described.into_iter().next().unwrap().unwrap();
    for (name, value) in [
        ("cleanup.policy", "compact"),
        ("min.insync.replicas", "1"),
        ("min.compaction.lag.ms", "12345"),
    ] {
        let entry = resource
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(entry.value.as_deref(), Some(value), "{name}");
        // Set on the topic by ensure_topic, not inherited from the broker default.
        assert_eq!(entry.source, ConfigSource::DynamicTopic, "{name}");
    }
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    for partition in 0..3 {
        let offsets = reader.offsets(partition).await.unwrap();
        assert_eq!((offsets.start, offsets.end), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_existing_topic_with_another_partition_count_is_invalid_input() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let (changelog, topic) = changelog_with_topic(&bootstrap, "broker-layout", 2).await;
    let err = changelog
        .ensure_topic(&TopicSpec::changelog(&topic, 4, &BTreeMap::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("2 partitions") && text.contains("4 are required"),
        "{text}"
    );
}

/// `min.insync.replicas` above the replicas a partition has makes every `acks=all` write
/// fail: refused, naming the topic, both numbers and the fix. With the replication factor
/// given, before anything is created; with the broker's default, once the topic shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_min_insync_replicas_above_the_replicas_is_refused() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let changelog = changelog(&bootstrap);
    let user = BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]);
    for replication_factor in [Some(1), None] {
        let topic = test_support::unique_name("broker-min-insync");
        let mut spec = TopicSpec::changelog(&topic, 1, &user);
        spec.replication_factor = replication_factor;
        let err = changelog.ensure_topic(&spec).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        for part in [
            topic.as_str(),
            "1 replica(s)",
            "min.insync.replicas=2",
            "NOT_ENOUGH_REPLICAS",
            "with_logging_enabled",
        ] {
            assert!(text.contains(part), "{replication_factor:?}: {text}");
        }
        let listed = admin(&bootstrap)
            .inner()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .unwrap();
        let exists = listed
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none());
        assert_eq!(exists, replication_factor.is_none(), "{topic}");
    }
    let mut malformed = TopicSpec::changelog(
        test_support::unique_name("broker-min-insync"),
        1,
        &BTreeMap::from([("min.insync.replicas".to_owned(), "two".to_owned())]),
    );
    malformed.replication_factor = Some(1);
    let err = changelog.ensure_topic(&malformed).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("\"two\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_append_flush_and_read_back_identically() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let (changelog, topic) = changelog_with_topic(&bootstrap, "broker-roundtrip", 2).await;
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    let mut written: BTreeMap<i32, Vec<ChangelogRecord>> = BTreeMap::new();
    for i in 0..200i64 {
        let partition = (i % 2) as i32;
        let mut record = if i % 7 == 3 {
            ChangelogRecord::tombstone(format!("key-{}", i - 1), 1_700_000_000_000 + i)
        } else {
            ChangelogRecord::put(
                format!("key-{i}"),
                format!("value-{i}"),
                1_700_000_000_000 + i,
            )
        };
        if i % 5 == 0 {
            record
                .headers
                .push(("seq".to_owned(), i.to_be_bytes().to_vec()));
        }
        sink.append(&topic, partition, &record.clone()).unwrap();
        written.entry(partition).or_default().push(record);
    }
    let position = common::commit(&sink).await.unwrap();
    assert_eq!(position.applied(&topic, 0), Some(99));
    assert_eq!(position.applied(&topic, 1), Some(99));

    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    for (partition, expected) in written {
        let offsets = reader.offsets(partition).await.unwrap();
        assert_eq!((offsets.start, offsets.end), (0, 100));
        let (records, end) = common::read_all(reader.as_ref(), partition).await.unwrap();
        assert_eq!(end, offsets.end);
        let read: Vec<_> = records.iter().map(|r| r.record.clone()).collect();
        assert_eq!(read, expected, "partition {partition}");
        let offsets: Vec<_> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..100).collect::<Vec<_>>());

        // A restore's cursor leaves headers out and keeps everything else.
        let read_ahead = ReadAhead {
            chunk_records: 30,
            max_bytes: state_core::DEFAULT_MAX_BYTES_IN_FLIGHT,
            headers: false,
        };
        let mut cursor = reader.open_with(partition, 0, read_ahead).await.unwrap();
        let mut without_headers = Vec::new();
        while cursor.position() < 100 {
            without_headers.extend(cursor.next_batch(30).await.unwrap());
        }
        let mut stripped = read.clone();
        for record in &mut stripped {
            record.headers.clear();
        }
        assert!(read.iter().any(|r| !r.headers.is_empty()), "{partition}");
        let read: Vec<_> = without_headers.iter().map(|r| r.record.clone()).collect();
        assert_eq!(read, stripped, "partition {partition}, headers left out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_aborted_transaction_is_never_read_committed() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let (changelog, topic) = changelog_with_topic(&bootstrap, "broker-abort", 1).await;
    let sink = changelog
        .kafka_sink(&exactly_once(&test_support::unique_name("txn")))
        .await
        .unwrap();
    let put = |key: &str| ChangelogRecord::put(key, "v", 1_700_000_000_000);
    for key in ["c1", "c2", "c3"] {
        sink.append(&topic, 0, &put(key)).unwrap();
    }
    assert_eq!(
        common::commit(&sink).await.unwrap().applied(&topic, 0),
        Some(2)
    );
    for key in ["aborted1", "aborted2"] {
        sink.append(&topic, 0, &put(key)).unwrap();
    }
    // Make sure the aborted records really reach the log before the abort.
    sink.flush_pending().await.unwrap();
    sink.abort().await.unwrap();
    sink.append(&topic, 0, &put("c4")).unwrap();
    let position = common::commit(&sink).await.unwrap();
    // c1..c3 at 0..2, commit marker 3, aborted 4..5, abort marker 6, c4 at 7, marker 8.
    assert_eq!(position.applied(&topic, 0), Some(7));

    let committed = changelog
        .reader(&topic, IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    let offsets = committed.offsets(0).await.unwrap();
    assert_eq!((offsets.start, offsets.end), (0, 9));
    let (records, end) = common::read_all(committed.as_ref(), 0).await.unwrap();
    assert_eq!(keys(&records), ["c1", "c2", "c3", "c4"]);
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2, 7]
    );
    assert_eq!(end, 9, "the position moves over the trailing commit marker");

    // Resuming right after the store's position reads only the marker and ends.
    let (records, end) = common::read_until(committed.as_ref(), 0, 3, 9)
        .await
        .unwrap();
    assert_eq!((keys(&records), end), (vec!["c4".to_owned()], 9));

    let uncommitted = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let (records, end) = common::read_all(uncommitted.as_ref(), 0).await.unwrap();
    assert_eq!(
        keys(&records),
        ["c1", "c2", "c3", "aborted1", "aborted2", "c4"]
    );
    assert_eq!(end, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sink_dropped_mid_transaction_leaves_nothing_visible() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let (changelog, topic) = changelog_with_topic(&bootstrap, "broker-crash", 1).await;
    let id = test_support::unique_name("txn");
    {
        let crashed = changelog.kafka_sink(&exactly_once(&id)).await.unwrap();
        for key in ["lost1", "lost2", "lost3"] {
            crashed
                .append(&topic, 0, &ChangelogRecord::put(key, "v", 1))
                .unwrap();
        }
        crashed.flush_pending().await.unwrap();
        // Dropped without commit or abort: the crash.
    }
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    let successor = changelog.kafka_sink(&exactly_once(&id)).await.unwrap();
    successor
        .append(&topic, 0, &ChangelogRecord::put("kept", "v", 1))
        .unwrap();
    common::commit(&successor).await.unwrap();

    // The broker writes the commit marker after commit_transaction returns; until then
    // the last stable offset stops before the transaction. Wait for it to reach the
    // high watermark (no transaction open any more).
    let uncommitted = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let offsets = eventually_async(
        Duration::from_secs(30),
        "the last stable offset reaching the high watermark",
        async || {
            let stable = reader.offsets(0).await.unwrap();
            let high = uncommitted.offsets(0).await.unwrap().end;
            if stable.end == high {
                Ok(stable)
            } else {
                Err(format!(
                    "last stable offset {}, high watermark {high}",
                    stable.end
                ))
            }
        },
    )
    .await;
    let (records, end) = common::read_all(reader.as_ref(), 0).await.unwrap();
    assert_eq!(keys(&records), ["kept"]);
    assert_eq!(end, offsets.end);
    assert!(
        offsets.end > records[0].offset + 1,
        "ends past the commit marker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_new_sink_with_the_same_transactional_id_fences_the_old_one() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let (changelog, topic) = changelog_with_topic(&bootstrap, "broker-fence", 1).await;
    let id = test_support::unique_name("txn");
    let zombie = changelog.kafka_sink(&exactly_once(&id)).await.unwrap();
    zombie
        .append(&topic, 0, &ChangelogRecord::put("zombie", "v", 1))
        .unwrap();
    zombie.flush_pending().await.unwrap();

    let _successor = changelog.kafka_sink(&exactly_once(&id)).await.unwrap();
    let err = common::commit(&zombie).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
    assert!(err.to_string().contains(&id), "names the producer: {err}");
    // Once fenced, the sink stays unusable.
    let err = zombie
        .append(&topic, 0, &ChangelogRecord::put("again", "v", 1))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");

    let reader = changelog
        .reader(&topic, IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    let (records, _) = common::read_all(reader.as_ref(), 0).await.unwrap();
    assert!(records.is_empty(), "{records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_open_below_log_start_is_out_of_range() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let changelog = changelog(&bootstrap);
    let topic = test_support::unique_name("broker-deleted");
    // Kafka refuses DeleteRecords on a compact-only topic (PolicyViolation); retention
    // on a `compact,delete` changelog moves the log start the same way.
    let user = BTreeMap::from([("cleanup.policy".to_owned(), "compact,delete".to_owned())]);
    changelog
        .ensure_topic(&TopicSpec::changelog(&topic, 1, &user))
        .await
        .unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    // Current timestamps: a timestamp of 1 ms would let the broker's time retention on
    // this compact,delete topic delete the records too, moving the log start past 3.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..5 {
        sink.append(&topic, 0, &ChangelogRecord::put(format!("k{i}"), "v", now))
            .unwrap();
    }
    common::commit(&sink).await.unwrap();

    let mut below = TopicPartitionList::new();
    below
        .add_partition_offset(&topic, 0, KafkaOffset::Offset(3))
        .unwrap();
    let deleted = admin(&bootstrap)
        .delete_records(
            &below,
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    let entry = deleted.find_partition(&topic, 0).unwrap();
    entry.error().unwrap();

    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let offsets = reader.offsets(0).await.unwrap();
    assert_eq!((offsets.start, offsets.end), (3, 5));
    let mut cursor = reader.open(0, 1).await.unwrap();
    let err = eventually_async(
        Duration::from_secs(20),
        "an out-of-range error reading below the log start",
        async || match cursor.next_batch(10).await {
            Err(err) => Some(err),
            Ok(records) => {
                assert!(records.is_empty(), "read {records:?} below the log start");
                None
            }
        },
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    let text = err.to_string();
    assert!(text.contains(&topic) && text.contains("offset 1"), "{text}");
    // From the log start it reads what is left.
    let (records, end) = common::read_all(reader.as_ref(), 0).await.unwrap();
    assert_eq!(
        (keys(&records), end),
        (vec!["k3".to_owned(), "k4".to_owned()], 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_sink_is_usable_through_the_trait_object() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let changelog: std::sync::Arc<dyn Changelog> = std::sync::Arc::new(changelog(&bootstrap));
    let topic = test_support::unique_name("broker-dyn");
    changelog
        .ensure_topic(&TopicSpec::changelog(&topic, 1, &BTreeMap::new()))
        .await
        .unwrap();
    let sink: std::sync::Arc<dyn ChangelogSink> =
        changelog.sink(&SinkOptions::default()).await.unwrap();
    assert_eq!(sink.guarantee(), ProcessingGuarantee::AtLeastOnce);
    sink.append(&topic, 0, &ChangelogRecord::put("k", "v", 5))
        .unwrap();
    assert_eq!(
        common::commit(sink.as_ref())
            .await
            .unwrap()
            .applied(&topic, 0),
        Some(0)
    );
    // A second commit with nothing new reports the same acknowledged offsets.
    assert_eq!(
        common::commit(sink.as_ref())
            .await
            .unwrap()
            .applied(&topic, 0),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_a_partition_the_topic_lacks_is_reported_at_once_with_the_count() {
    let Some(bootstrap) = test_support::single_broker() else {
        return;
    };
    let changelog = KafkaChangelog::new(
        KafkaChangelogConfig::new(&bootstrap)
            .with_client_id("changelog-kafka-tests")
            .with_metadata_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let topic = test_support::unique_name("broker-missing-partition");
    changelog
        .ensure_topic(&TopicSpec::changelog(&topic, 4, &BTreeMap::new()))
        .await
        .unwrap();
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    assert!(reader.offsets(3).await.is_ok());
    let started = std::time::Instant::now();
    let err = reader.offsets(7).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} of the 30 s metadata timeout",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("4 partition(s)") && text.contains("partition 7") && text.contains(&topic),
        "{text}"
    );
}

/// No broker listens at the bootstrap servers: creating the changelog topic fails as
/// `Unavailable` (retriable: the cluster may come back) and names the servers it tried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_unavailable_and_names_its_servers() {
    // A port nothing listens on: the kernel refuses each connection at once.
    let servers = "127.0.0.1:1";
    let changelog = KafkaChangelog::new(
        KafkaChangelogConfig::new(servers).with_metadata_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let spec = TopicSpec::changelog("unreachable-changelog", 1, &BTreeMap::new());
    let err = changelog.ensure_topic(&spec).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_retriable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(servers) && text.contains("unreachable-changelog"),
        "{text}"
    );
}

/// No broker takes the records: once the producer's queue is full, an append waits up to
/// the enqueue timeout for room, then fails as `Unavailable` and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_to_a_full_producer_queue_fails_after_the_enqueue_timeout() {
    let timeout = Duration::from_millis(300);
    let changelog = KafkaChangelog::new(
        KafkaChangelogConfig::new("127.0.0.1:1")
            .with_enqueue_timeout(timeout)
            .with_producer_setting("queue.buffering.max.messages", "1"),
    )
    .unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    let record = ChangelogRecord::put(b"k".to_vec(), b"v".to_vec(), 0);
    sink.append("full-queue-changelog", 0, &record).unwrap();
    let started = Instant::now();
    let err = sink.append("full-queue-changelog", 0, &record).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("producer queue full"), "{err}");
    assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
}
