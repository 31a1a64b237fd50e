//! Restore edge cases on a real Kafka broker: what the in-process log only models —
//! empty and tombstone-only changelogs, delete-records past a store's position, a topic
//! deleted and recreated under a store, real log compaction, undecodable records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{ClientConfig, Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Changelog, ChangelogReader, ChangelogRecord, ChangelogSink, LoggedStore, NoopRestoreListener,
    ProcessingGuarantee, RestoreOptions, RestoreSummary, SinkOptions, SourceOffsets, TopicSpec,
    WipeReason, restore,
};
use test_support::{eventually, unique_name};

use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::support;

const PARTITION: i32 = 0;

/// A broker, a changelog service on it, and an admin client for what stores never do.
pub struct Broker {
    changelog: Arc<KafkaChangelog>,
    admin: AdminClient<DefaultClientContext>,
}

impl Broker {
    /// The broker at `KAFKA_BOOTSTRAP_SERVERS`, or `None` (skip notice; a failure under
    /// `CI=true`) when none answers.
    pub fn connect() -> Option<Self> {
        let bootstrap = test_support::single_broker()?;
        let changelog =
            Arc::new(KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap.clone())).unwrap());
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        Some(Self { changelog, admin })
    }

    fn topic(&self, prefix: &str, config: &[(&str, &str)]) -> String {
        let topic = unique_name(prefix);
        let config: BTreeMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        block_on(
            self.changelog
                .ensure_topic(&TopicSpec::changelog(&topic, 1, &config)),
        )
        .unwrap();
        topic
    }

    fn sink(&self) -> Arc<dyn ChangelogSink> {
        block_on(self.changelog.sink(&SinkOptions::default())).unwrap()
    }

    fn reader(&self, topic: &str) -> Arc<dyn ChangelogReader> {
        block_on(
            self.changelog
                .reader(topic, ProcessingGuarantee::AtLeastOnce.isolation()),
        )
        .unwrap()
    }

    fn restore(&self, store: &dyn state_core::KeyValueStore, topic: &str) -> RestoreSummary {
        let options = RestoreOptions {
            batch_size: Some(7),
            ..RestoreOptions::default()
        };
        block_on(restore(
            store,
            self.reader(topic).as_ref(),
            PARTITION,
            &options,
            &NoopRestoreListener,
        ))
        .unwrap()
    }

    /// Every visible record of the partition replayed onto an empty map.
    fn replay(&self, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        crate::harness::replay(self.reader(topic).as_ref(), PARTITION)
            .unwrap()
            .into_iter()
            .collect()
    }
}

fn logged(broker: &Broker, topic: &str, store: Arc<dyn state_core::KeyValueStore>) -> LoggedStore {
    LoggedStore::new(store, broker.sink(), topic, PARTITION)
}

/// An empty changelog restores to an empty store and replays nothing.
pub fn empty_changelog(broker: &Broker, backend: &dyn BackendFactory) {
    let topic = broker.topic("empty", &[]);
    let f = Fixture::new(backend, "store");
    let store = f.open();
    let summary = broker.restore(store.as_ref(), &topic);
    assert_eq!(summary.restored, 0);
    assert!(contents(store.as_ref()).is_empty());
}

/// A changelog of tombstones only (deletes of keys never written) restores to an empty
/// store, applying every tombstone.
pub fn only_tombstones(broker: &Broker, backend: &dyn BackendFactory) {
    let topic = broker.topic("tombstones", &[]);
    let sink = broker.sink();
    for i in 0..50u32 {
        sink.append(
            &topic,
            PARTITION,
            &ChangelogRecord::tombstone(i.to_be_bytes().to_vec(), 1),
        )
        .unwrap();
    }
    block_on(sink.commit(&SourceOffsets::none())).unwrap();
    let f = Fixture::new(backend, "store");
    let store = f.open();
    let summary = broker.restore(store.as_ref(), &topic);
    assert_eq!(summary.restored, 50);
    assert!(contents(store.as_ref()).is_empty());
}

/// delete-records moves the log start past a durable store's position: restore wipes,
/// reports why, and rebuilds from the new log start.
pub fn delete_records_past_position(broker: &Broker, backend: &dyn BackendFactory) {
    // Kafka refuses delete-records on a compact-only topic.
    let topic = broker.topic("delete-records", &[("cleanup.policy", "compact,delete")]);
    let f = Fixture::new(backend, "store");
    let mut first = logged(broker, &topic, f.open());
    support::write_and_commit(&mut first, 0..10);
    first.inner().close().unwrap();
    drop(first);
    let mut second = logged(broker, &topic, Fixture::new(backend, "store").open());
    support::write_and_commit(&mut second, 10..20);
    drop(second);

    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(&topic, PARTITION, KafkaOffset::Offset(15))
        .unwrap();
    let deleted = block_on(broker.admin.delete_records(&offsets, &AdminOptions::new())).unwrap();
    assert!(
        deleted.elements().iter().all(|e| e.error().is_ok()),
        "delete-records failed: {deleted:?}"
    );

    let store = f.open();
    let summary = broker.restore(store.as_ref(), &topic);
    if store.capability().durable {
        assert_eq!(
            summary.wiped,
            Some(WipeReason::PositionBelowLogStart {
                applied: 9,
                log_start: 15
            })
        );
    }
    assert_eq!(summary.from, 15);
    assert_eq!(summary.restored, 5);
    assert_eq!(contents(store.as_ref()), broker.replay(&topic));
}

/// The topic is deleted and recreated (shorter) under a durable store: restore wipes,
/// reports why, and rebuilds from the new topic.
pub fn topic_recreated(broker: &Broker, backend: &dyn BackendFactory) {
    let topic = broker.topic("recreated", &[]);
    let f = Fixture::new(backend, "store");
    let mut first = logged(broker, &topic, f.open());
    support::write_and_commit(&mut first, 0..10);
    first.inner().close().unwrap();
    drop(first);

    let deleted = block_on(broker.admin.delete_topics(&[&topic], &AdminOptions::new())).unwrap();
    assert!(
        deleted.iter().all(|r| r.is_ok()),
        "delete topic: {deleted:?}"
    );
    // Deletion is asynchronous on the broker: retry creation until it is accepted.
    let spec = TopicSpec::changelog(&topic, 1, &BTreeMap::new());
    eventually(
        Duration::from_secs(60),
        &format!("recreating {topic} empty"),
        || match block_on(broker.changelog.ensure_topic(&spec)) {
            Ok(()) => match broker_offsets_end(broker, &topic) {
                Some(0) => Ok(()),
                end => Err(format!("created, log end {end:?}")),
            },
            Err(err) => Err(err.to_string()),
        },
    );
    let mut fresh = logged(broker, &topic, Fixture::new(backend, "store").open());
    support::write_and_commit(&mut fresh, 100..103);
    drop(fresh);

    let store = f.open();
    let summary = broker.restore(store.as_ref(), &topic);
    if store.capability().durable {
        assert_eq!(
            summary.wiped,
            Some(WipeReason::PositionAboveLogEnd {
                applied: 9,
                log_end: 3
            })
        );
    }
    assert_eq!(summary.restored, 3);
    assert_eq!(contents(store.as_ref()), broker.replay(&topic));
}

fn broker_offsets_end(broker: &Broker, topic: &str) -> Option<i64> {
    block_on(broker.reader(topic).offsets(PARTITION))
        .ok()
        .map(|o| o.end)
}

/// The broker's log cleaner compacts the changelog for real (tiny segments, eager
/// cleaning); a fresh store restores the compacted log to the same state, and a store
/// whose position predates the cleaned region catches up, deletes included.
pub fn real_compaction(broker: &Broker, backend: &dyn BackendFactory) {
    let topic = broker.topic(
        "compacted",
        &[
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
            ("delete.retention.ms", "3600000"),
        ],
    );
    let lagging = Fixture::new(backend, "store");
    let mut writer = logged(broker, &topic, lagging.open());
    support::write_and_commit(&mut writer, 0..20);
    writer.inner().close().unwrap();
    drop(writer);
    // Another instance overwrites every key many times and deletes some.
    let mut other = logged(broker, &topic, Fixture::new(backend, "store").open());
    for round in 0..30u32 {
        for i in 0..20u32 {
            other
                .put(
                    format!("key-{i:03}").as_bytes(),
                    &(round * 100 + i).to_be_bytes(),
                )
                .unwrap();
        }
        block_on(other.commit()).unwrap();
    }
    for i in (0..20u32).step_by(4) {
        other.delete(format!("key-{i:03}").as_bytes()).unwrap();
    }
    block_on(other.commit()).unwrap();
    let expected = contents(other.inner().as_ref());
    drop(other);
    // Rolling a segment needs a later append (at least `segment.ms` after the segment
    // began): each check appends a filler key, until the cleaner has visibly removed
    // records.
    let filler = broker.sink();
    let written = 20 + 30 * 20 + 5;
    let mut appended = 0;
    eventually(
        Duration::from_secs(90),
        &format!("the broker compacting {topic}"),
        || {
            filler
                .append(
                    &topic,
                    PARTITION,
                    &ChangelogRecord::put(b"zz-filler".to_vec(), vec![0], 0),
                )
                .unwrap();
            block_on(filler.commit(&SourceOffsets::none())).unwrap();
            appended += 1;
            let visible = count_records(broker, &topic);
            if visible < written {
                Ok(())
            } else {
                Err(format!("{visible} of {written} records visible"))
            }
        },
    );
    let mut expected = expected;
    expected.push((b"zz-filler".to_vec(), vec![0]));
    let fresh = Fixture::new(backend, "store");
    let store = fresh.open();
    broker.restore(store.as_ref(), &topic);
    assert_eq!(
        contents(store.as_ref()),
        expected,
        "fresh restore after compaction ({appended} fillers)"
    );
    let lagging = lagging.open();
    broker.restore(lagging.as_ref(), &topic);
    assert_eq!(
        contents(lagging.as_ref()),
        expected,
        "lagging store after compaction"
    );
}

fn count_records(broker: &Broker, topic: &str) -> usize {
    let reader = broker.reader(topic);
    block_on(async {
        let offsets = reader.offsets(PARTITION).await?;
        let mut cursor = reader.open(PARTITION, offsets.start).await?;
        let mut count = 0;
        while cursor.position() < offsets.end {
            count += cursor.next_batch(1000).await?.len();
        }
        Ok::<_, state_core::Error>(count)
    })
    .unwrap()
}

/// A record the store's serdes cannot read stops restore with an error naming topic,
/// partition and offset.
pub fn undecodable_record(broker: &Broker, backend: &dyn BackendFactory) {
    let app = unique_name("app");
    crate::faults::undecodable_record_stops_restore(
        backend,
        broker.changelog.clone(),
        &app,
        PARTITION,
    );
}
