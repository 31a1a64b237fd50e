//! Tests against librdkafka's mock cluster: always run, no broker needed.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use changelog_kafka::EmbeddedKafka;
use changelog_kafka::mock::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use state_core::{
    Changelog, ChangelogReader, ChangelogRecord, ChangelogSink, ConsumedRecord, ErrorKind,
    IsolationLevel, ProcessingGuarantee, ReadAhead, SinkOptions, TopicSpec,
};
use test_support::eventually_async;

fn spec(topic: &str, partitions: i32) -> TopicSpec {
    TopicSpec::changelog(topic, partitions, &BTreeMap::new())
}

fn with_header(mut record: ChangelogRecord, key: &str, value: &[u8]) -> ChangelogRecord {
    record.headers.push((key.to_owned(), value.to_vec()));
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_append_flush_and_read_back_puts_tombstones_timestamps_headers() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-roundtrip");
    changelog.ensure_topic(&spec(&topic, 2)).await.unwrap();

    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    let p0 = vec![
        with_header(
            ChangelogRecord::put("a", "1", 1_700_000_000_001),
            "origin",
            b"test",
        ),
        ChangelogRecord::tombstone("a", 1_700_000_000_002),
        with_header(
            with_header(
                ChangelogRecord::put("b", vec![0u8, 255, 7], 1_700_000_000_003),
                "h1",
                b"",
            ),
            "h2",
            &[1, 2, 3],
        ),
    ];
    let p1 = vec![ChangelogRecord::put("c", "3", 1_700_000_000_004)];
    for record in &p0 {
        sink.append(&topic, 0, &record.clone()).unwrap();
    }
    for record in &p1 {
        sink.append(&topic, 1, &record.clone()).unwrap();
    }
    let position = common::commit(&sink).await.unwrap();
    assert_eq!(position.applied(&topic, 0), Some(2));
    assert_eq!(position.applied(&topic, 1), Some(0));

    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let offsets = reader.offsets(0).await.unwrap();
    assert_eq!((offsets.start, offsets.end), (0, 3));
    let (records, end) = common::read_all(reader.as_ref(), 0).await.unwrap();
    assert_eq!(end, 3);
    let read: Vec<_> = records.iter().map(|r| r.record.clone()).collect();
    assert_eq!(read, p0);
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(records.iter().all(|r| r.partition == 0));
    assert!(records[1].record.is_tombstone());

    let (records, _) = common::read_all(reader.as_ref(), 1).await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
        p1
    );

    // Reading from the middle starts there.
    let (records, end) = common::read_until(reader.as_ref(), 0, 2, 3).await.unwrap();
    assert_eq!((records.len(), records[0].offset, end), (1, 2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_ensure_topic_is_idempotent_and_rejects_another_partition_count() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-layout");
    changelog.ensure_topic(&spec(&topic, 3)).await.unwrap();
    changelog.ensure_topic(&spec(&topic, 3)).await.unwrap();
    let err = changelog.ensure_topic(&spec(&topic, 5)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains('3') && text.contains('5'),
        "{text}"
    );
    let err = changelog.ensure_topic(&spec(&topic, 0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_retriable_produce_errors_are_retried_and_succeed() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-retry");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    kafka
        .inject_request_errors(
            RDKafkaApiKey::Produce,
            &[
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            ],
        )
        .unwrap();
    for i in 0..10 {
        sink.append(
            &topic,
            0,
            &ChangelogRecord::put(format!("k{i}"), format!("v{i}"), 1_000 + i),
        )
        .unwrap();
    }
    let position = common::commit(&sink).await.unwrap();
    assert_eq!(position.applied(&topic, 0), Some(9));
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let (records, _) = common::read_all(reader.as_ref(), 0).await.unwrap();
    let keys: Vec<_> = records.iter().map(|r| r.record.key.clone()).collect();
    let expected: Vec<Vec<u8>> = (0..10).map(|i| format!("k{i}").into_bytes()).collect();
    assert_eq!(
        keys, expected,
        "no record lost, duplicated or reordered by the retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_fatal_produce_error_makes_flush_fail_clearly() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-fatal");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    // Warm up so the error hits a produce request, not the first metadata round.
    sink.append(&topic, 0, &ChangelogRecord::put("warm", "up", 1))
        .unwrap();
    common::commit(&sink).await.unwrap();
    kafka
        .inject_request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_RECORD],
        )
        .unwrap();
    sink.append(&topic, 0, &ChangelogRecord::put("key", "value", 2))
        .unwrap();
    let err = common::commit(&sink).await.unwrap_err();
    assert!(!err.is_retriable(), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("partition 0"),
        "{text}"
    );
    assert!(text.contains("key of 3 bytes"), "{text}");
    // The failed record has no offset: only the warm-up record is acknowledged.
    assert_eq!(sink.acknowledged().applied(&topic, 0), Some(0));
    // The failure is reported once; the next flush is clean again.
    kafka.clear_request_errors(RDKafkaApiKey::Produce).unwrap();
    sink.append(&topic, 0, &ChangelogRecord::put("key", "again", 3))
        .unwrap();
    assert_eq!(
        common::commit(&sink).await.unwrap().applied(&topic, 0),
        Some(1)
    );
    assert_eq!(sink.acknowledged().applied(&topic, 0), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_reading_past_the_end_is_out_of_range() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-range");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    sink.append(&topic, 0, &ChangelogRecord::put("k", "v", 1))
        .unwrap();
    common::commit(&sink).await.unwrap();
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let mut cursor = reader.open(0, 50).await.unwrap();
    let err = eventually_async(
        Duration::from_secs(20),
        "an out-of-range error reading past the end",
        async || match cursor.next_batch(10).await {
            Err(err) => Some(err),
            Ok(records) => {
                assert!(records.is_empty(), "read {records:?} past the end");
                None
            }
        },
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::OutOfRange, "{err}");
    assert!(err.to_string().contains(&topic), "{err}");
    let err = reader.open(0, -1).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// A one-partition topic on `kafka` holding `keyed` records with keys, then one without a
/// key (offset `keyed`), written by a plain producer; and a reader of it.
async fn topic_with_a_keyless_record_after(
    kafka: &EmbeddedKafka,
    keyed: u32,
) -> (String, std::sync::Arc<dyn ChangelogReader>) {
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-nullkey");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .unwrap();
    for i in 0..keyed {
        let key = format!("key-{i}");
        producer
            .send(BaseRecord::to(&topic).partition(0).key(&key).payload("v"))
            .map_err(|(err, _)| err)
            .unwrap();
    }
    producer
        .send(
            BaseRecord::<(), [u8]>::to(&topic)
                .partition(0)
                .payload(b"orphan".as_slice()),
        )
        .map_err(|(err, _)| err)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    (topic, reader)
}

/// `err` is corruption naming `topic` partition 0 and `offset`.
fn assert_corruption_at(err: &state_core::Error, topic: &str, offset: i64) {
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(topic) && text.contains(&format!("partition 0 offset {offset}")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_record_without_key_is_corruption_naming_its_offset() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let (topic, reader) = topic_with_a_keyless_record_after(&kafka, 0).await;
    let err = common::read_all(reader.as_ref(), 0).await.unwrap_err();
    assert_corruption_at(&err, &topic, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_exactly_once_sink_rules() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-eos");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let eos = SinkOptions {
        guarantee: ProcessingGuarantee::ExactlyOnce,
        transactional_id: None,
        source: None,
    };
    let err = changelog.kafka_sink(&eos).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    let eos = SinkOptions {
        transactional_id: Some(test_support::unique_name("txn")),
        ..eos
    };
    let sink = changelog.kafka_sink(&eos).await.unwrap();
    assert!(!sink.in_transaction());
    sink.append(&topic, 0, &ChangelogRecord::put("k", "v", 1))
        .unwrap();
    assert!(
        sink.in_transaction(),
        "the first append begins the transaction"
    );
    let position = common::commit(&sink).await.unwrap();
    assert_eq!(position.applied(&topic, 0), Some(0));
    assert!(!sink.in_transaction());
    sink.append(&topic, 0, &ChangelogRecord::put("k", "w", 2))
        .unwrap();
    sink.abort().await.unwrap();
    assert!(!sink.in_transaction());
    // An abort forgets the aborted offsets: the position stays at the last commit.
    assert_eq!(sink.acknowledged().applied(&topic, 0), Some(0));
    assert_eq!(
        common::commit(&sink).await.unwrap().applied(&topic, 0),
        Some(0)
    );

    let plain = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    assert!(!plain.in_transaction());
    plain
        .append(&topic, 0, &ChangelogRecord::put("k", "x", 3))
        .unwrap();
    assert!(
        !plain.in_transaction(),
        "an at-least-once sink never opens one"
    );
    let err = plain
        .commit(&state_core::SourceOffsets::from_iter([(0, 1)]))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidInput,
        "offsets without an input: {err}"
    );
}

/// Reads `partition` of `reader` from 0 to `end` through a cursor opened with `read_ahead`,
/// checking that the position follows every chunk.
async fn read_with(
    reader: &dyn ChangelogReader,
    end: i64,
    read_ahead: ReadAhead,
) -> Result<Vec<ConsumedRecord>, state_core::Error> {
    let mut cursor = reader.open_with(0, 0, read_ahead).await?;
    let mut records: Vec<ConsumedRecord> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cursor.position() < end {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} records, position {}",
            records.len(),
            cursor.position()
        );
        let batch = cursor.next_batch(1000).await?;
        assert!(batch.len() <= read_ahead.chunk_records, "{}", batch.len());
        if let Some(last) = batch.last() {
            assert_eq!(cursor.position(), last.offset + 1);
        }
        records.extend(batch);
    }
    Ok(records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_chunks_smaller_than_a_fetch_hand_out_each_record_once_in_order() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let changelog = kafka.changelog().unwrap();
    let topic = test_support::unique_name("mock-chunks");
    changelog.ensure_topic(&spec(&topic, 1)).await.unwrap();
    let sink = changelog.kafka_sink(&SinkOptions::default()).await.unwrap();
    // Many records per fetch, handed out seven at a time: most of them come from a batch
    // the cursor took earlier, across chunk boundaries.
    let written: Vec<ChangelogRecord> = (0..3000i64)
        .map(|i| match i % 10 {
            9 => ChangelogRecord::tombstone(format!("key-{}", i % 700), 1_700_000_000_000 + i),
            _ => ChangelogRecord::put(
                format!("key-{}", i % 700),
                format!("value-{i}"),
                1_700_000_000_000 + i,
            ),
        })
        .collect();
    for record in &written {
        sink.append(&topic, 0, record).unwrap();
    }
    common::commit(&sink).await.unwrap();
    let reader = changelog
        .reader(&topic, IsolationLevel::ReadUncommitted)
        .await
        .unwrap();
    let mut read_ahead = ReadAhead {
        chunk_records: 7,
        max_bytes: 1 << 20,
        headers: false,
    };
    let batched = read_with(reader.as_ref(), 3000, read_ahead).await.unwrap();
    assert_eq!(
        batched.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..3000).collect::<Vec<_>>()
    );
    assert_eq!(
        batched.iter().map(|r| r.record.clone()).collect::<Vec<_>>(),
        written
    );
    // The same records when the cursor reads their headers too.
    read_ahead.headers = true;
    let polled = read_with(reader.as_ref(), 3000, read_ahead).await.unwrap();
    assert_eq!(polled, batched);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_record_without_key_behind_others_is_corruption_naming_its_offset() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let (topic, reader) = topic_with_a_keyless_record_after(&kafka, 50).await;
    let read_ahead = ReadAhead {
        chunk_records: 1000,
        max_bytes: 1 << 20,
        headers: false,
    };
    let err = read_with(reader.as_ref(), 51, read_ahead)
        .await
        .unwrap_err();
    assert_corruption_at(&err, &topic, 50);
}
