//! One sink for every changelog topic of an instance, on the real single broker: one
//! transaction spans topics and carries the input offsets, at-least-once commits the
//! offsets after the flush, readers see past an open transaction, and a new owner's
//! settle waits for another producer's pending offsets (held at a gate the test opens).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig, KafkaSink};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogRecord, ChangelogSink, InputBinding, IsolationLevel, ProcessingGuarantee,
    SinkOptions, SourceCommit, SourceOffsets, TopicSpec,
};
use test_support::eventually;

struct Setup {
    changelog: KafkaChangelog,
    bootstrap: String,
    rewards: String,
    visits: String,
    input: InputBinding,
}

/// Two changelog topics and an input topic of 2 partitions each.
async fn setup(prefix: &str) -> Option<Setup> {
    let bootstrap = test_support::single_broker()?;
    let changelog = KafkaChangelog::new(
        KafkaChangelogConfig::new(&bootstrap).with_client_id("changelog-kafka-eos-tests"),
    )
    .unwrap();
    let [rewards, visits, input] = ["rewards", "visits", "input"]
        .map(|name| test_support::unique_name(&format!("{prefix}-{name}")));
    for topic in [&rewards, &visits, &input] {
        changelog
            .ensure_topic(&TopicSpec::changelog(topic, 2, &BTreeMap::new()))
            .await
            .unwrap();
    }
    let input = InputBinding::new(test_support::unique_name("eos-group"), input);
    Some(Setup {
        changelog,
        bootstrap,
        rewards,
        visits,
        input,
    })
}

impl Setup {
    async fn sink(&self, guarantee: ProcessingGuarantee) -> KafkaSink {
        let options = SinkOptions::new(guarantee, test_support::unique_name("eos-txn"))
            .with_source(self.input.clone());
        self.changelog.kafka_sink(&options).await.unwrap()
    }

    /// The group's committed offsets of the input, stable ones only.
    fn committed(&self) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.input.group_id)
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.input.topic, 0);
        list.add_partition(&self.input.topic, 1);
        consumer
            .committed_offsets(list, Duration::from_secs(30))
            .unwrap()
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                KafkaOffset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }

    /// Whether a transaction still pending holds offsets of `partition` of the input, as
    /// a settle sees it: a read-committed fetch of the group's committed offsets gets no
    /// stable answer within `within` (the broker answers UNSTABLE_OFFSET_COMMIT, KIP-447,
    /// and librdkafka asks again until the fetch times out).
    fn pending(&self, partition: i32, within: Duration) -> bool {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.input.group_id)
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.input.topic, partition);
        let unstable = Some(RDKafkaErrorCode::UnstableOffsetCommit);
        match consumer.committed_offsets(list, within) {
            Ok(list) => list
                .elements()
                .iter()
                .any(|e| e.error().err().and_then(|err| err.rdkafka_error_code()) == unstable),
            Err(err) if err.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut) => {
                true
            }
            Err(err) => panic!(
                "fetching the committed offsets of {}: {err}",
                self.input.topic
            ),
        }
    }

    async fn committed_keys(&self, topic: &str, partition: i32) -> Vec<String> {
        let reader = self
            .changelog
            .reader(topic, IsolationLevel::ReadCommitted)
            .await
            .unwrap();
        let (records, _) = common::read_all(reader.as_ref(), partition).await.unwrap();
        records
            .iter()
            .map(|r| String::from_utf8_lossy(&r.record.key).into_owned())
            .collect()
    }
}

fn put(key: &str) -> ChangelogRecord {
    ChangelogRecord::put(key, "v", 1_700_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_spans_topics_and_carries_the_input_offsets() {
    let Some(setup) = setup("eos-span").await else {
        return;
    };
    let sink = setup.sink(ProcessingGuarantee::ExactlyOnce).await;
    sink.append(&setup.rewards, 0, &put("r0")).unwrap();
    sink.append(&setup.visits, 1, &put("v1")).unwrap();
    let done = sink
        .commit(&SourceOffsets::from_iter([(0, 5), (1, 8)]))
        .await
        .unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(done.positions.applied(&setup.rewards, 0), Some(0));
    assert_eq!(done.positions.applied(&setup.visits, 1), Some(0));
    assert_eq!(setup.committed(), BTreeMap::from([(0, 5), (1, 8)]));
    assert_eq!(setup.committed_keys(&setup.rewards, 0).await, ["r0"]);
    assert_eq!(setup.committed_keys(&setup.visits, 1).await, ["v1"]);

    // An aborted interval: neither topic's records nor its offsets count.
    sink.append(&setup.rewards, 0, &put("gone")).unwrap();
    sink.append(&setup.visits, 1, &put("gone")).unwrap();
    sink.flush_pending().await.unwrap();
    sink.abort().await.unwrap();
    assert_eq!(sink.acknowledged().applied(&setup.rewards, 0), Some(0));
    // Offsets alone still commit, in a transaction of their own.
    let done = sink
        .commit(&SourceOffsets::from_iter([(0, 6)]))
        .await
        .unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(setup.committed(), BTreeMap::from([(0, 6), (1, 8)]));
    assert_eq!(setup.committed_keys(&setup.rewards, 0).await, ["r0"]);
    assert_eq!(setup.committed_keys(&setup.visits, 1).await, ["v1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_commits_the_input_offsets_after_the_records() {
    let Some(setup) = setup("alos-offsets").await else {
        return;
    };
    let sink = setup.sink(ProcessingGuarantee::AtLeastOnce).await;
    assert!(!sink.in_transaction());
    sink.append(&setup.rewards, 1, &put("a")).unwrap();
    sink.append(&setup.visits, 0, &put("b")).unwrap();
    let done = sink
        .commit(&SourceOffsets::from_iter([(1, 3)]))
        .await
        .unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(done.positions.applied(&setup.rewards, 1), Some(0));
    assert_eq!(done.positions.applied(&setup.visits, 0), Some(0));
    assert_eq!(setup.committed(), BTreeMap::from([(1, 3)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_committed_reader_sees_the_log_end_past_an_open_transaction() {
    let Some(setup) = setup("eos-log-end").await else {
        return;
    };
    let sink = setup.sink(ProcessingGuarantee::ExactlyOnce).await;
    sink.append(&setup.rewards, 0, &put("committed")).unwrap();
    sink.commit(&SourceOffsets::none()).await.unwrap();
    sink.append(&setup.rewards, 0, &put("open")).unwrap();
    sink.flush_pending().await.unwrap();
    let reader = setup
        .changelog
        .reader(&setup.rewards, IsolationLevel::ReadCommitted)
        .await
        .unwrap();
    let offsets = reader.offsets(0).await.unwrap();
    // committed@0, COMMIT@1, open@2: the stable end stops at the open transaction.
    assert_eq!((offsets.start, offsets.end, offsets.log_end), (0, 2, 3));
    sink.commit(&SourceOffsets::none()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_waits_for_another_producers_pending_offsets() {
    let Some(setup) = setup("eos-settle").await else {
        return;
    };
    // Another producer — a previous owner — sent offsets of partition 0 into its
    // transaction and has not committed yet.
    let other: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &setup.bootstrap)
        .set(
            "transactional.id",
            test_support::unique_name("previous-owner"),
        )
        .create()
        .unwrap();
    other.init_transactions(Duration::from_secs(30)).unwrap();
    other.begin_transaction().unwrap();
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &setup.bootstrap)
        .set("group.id", &setup.input.group_id)
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&setup.input.topic, 0, KafkaOffset::Offset(42))
        .unwrap();
    other
        .send_offsets_to_transaction(
            &offsets,
            &group.group_metadata().unwrap(),
            Duration::from_secs(30),
        )
        .unwrap();

    let sink = setup.sink(ProcessingGuarantee::ExactlyOnce).await;
    // The other producer commits only when the test opens this gate: the commit comes
    // after settle is seen waiting, by construction rather than by a time window.
    let (open_gate, gate) = mpsc::channel::<()>();
    let committer = std::thread::spawn(move || {
        if gate.recv().is_ok() {
            other.commit_transaction(Duration::from_secs(30)).unwrap();
        }
    });
    let started = Arc::new(AtomicBool::new(false));
    let settling = tokio::spawn({
        let started = started.clone();
        async move {
            started.store(true, Ordering::SeqCst);
            sink.settle_input(0).await
        }
    });
    eventually(Duration::from_secs(30), "the settle starting", || {
        started.load(Ordering::SeqCst)
    });
    // Settle is held at the condition it waits out: a read-committed fetch of the group's
    // offsets made after settle started (the fetch settle makes) gets no stable answer,
    // and settle has still not returned. A settle that did not wait for a stable answer
    // would have returned on its first one; a waiting one cannot return while the gate
    // holds the commit back.
    eventually(
        Duration::from_secs(30),
        "a fetch of the group's offsets finding partition 0 pending",
        || setup.pending(0, Duration::from_secs(5)),
    );
    assert!(
        !settling.is_finished(),
        "settle returned while another producer's offsets of partition 0 were pending: {:?}",
        settling.await
    );
    open_gate.send(()).unwrap();
    // Released, it returns (within its own timeout), and what it waited for is there.
    settling.await.unwrap().unwrap();
    committer.join().unwrap();
    // A fetch that needs a stable answer gets one now (`committed` fails on a timeout).
    assert_eq!(setup.committed().get(&0), Some(&42));
}
