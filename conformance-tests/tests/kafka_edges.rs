//! Restore edge cases on a real Kafka broker, for every backend compiled in.
#![cfg(feature = "kafka")]

use conformance_tests::kafka_edges::{self, Broker};

fn each_backend(case: fn(&Broker, &dyn conformance_tests::BackendFactory)) {
    let Some(broker) = Broker::connect() else {
        return;
    };
    conformance_tests::for_each_backend(&conformance_tests::backends(), |backend| {
        case(&broker, backend);
    });
}

#[test]
fn kafka_empty_changelog_restores_nothing() {
    each_backend(kafka_edges::empty_changelog);
}

#[test]
fn kafka_tombstone_only_changelog_restores_empty() {
    each_backend(kafka_edges::only_tombstones);
}

#[test]
fn kafka_delete_records_past_the_position_wipes_and_restores() {
    each_backend(kafka_edges::delete_records_past_position);
}

#[test]
fn kafka_topic_recreated_under_the_store_wipes_and_restores() {
    each_backend(kafka_edges::topic_recreated);
}

#[test]
fn kafka_real_compaction_restores_the_same_state() {
    each_backend(kafka_edges::real_compaction);
}

#[test]
fn kafka_undecodable_record_is_reported_with_its_offset() {
    each_backend(kafka_edges::undecodable_record);
}
