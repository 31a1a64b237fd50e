//! Fault cases: a failing sink, a truncated or recreated changelog, a crash during
//! restore, undecodable records.

use std::collections::HashMap;
use std::sync::Arc;

use state_core::serde::Serdes;
use state_core::{
    Changelog, ChangelogRecord, ChangelogSink, ErrorKind, Partition, ProcessingGuarantee,
    SinkOptions, StoreBuilder, StoreContext, WipeReason,
};

use crate::crash_points::FailingReader;
use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::support::{self, PARTITION, RecordingListener, TOPIC};

/// The sink fails mid-flush: commit returns an error, the store is unchanged, nothing
/// committed is lost, the next commit succeeds, and (at-least-once) the changelog holds
/// each record exactly once.
pub fn sink_failing_mid_flush(backend: &dyn BackendFactory, guarantee: ProcessingGuarantee) {
    let f = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let mut logged = support::logged(&changelog, f.open(), guarantee);
    support::write_and_commit(&mut logged, 0..3);
    let before = contents(logged.inner().as_ref());
    for i in 3..8u32 {
        logged
            .put(format!("key-{i:03}").as_bytes(), &i.to_be_bytes())
            .unwrap();
    }
    changelog.fail_flush_after(TOPIC, 2).unwrap();
    let err = block_on(logged.commit()).unwrap_err();
    assert!(
        err.to_string().contains(TOPIC),
        "error should name the changelog: {err}"
    );
    assert_eq!(
        contents(logged.inner().as_ref()),
        before,
        "a failed commit changed the store"
    );
    assert_eq!(
        logged.get(b"key-007").unwrap(),
        Some(7u32.to_be_bytes().to_vec()),
        "uncommitted writes stay readable"
    );
    block_on(logged.commit()).unwrap();
    let expected: Vec<_> = (0..8u32)
        .map(|i| (format!("key-{i:03}").into_bytes(), i.to_be_bytes().to_vec()))
        .collect();
    assert_eq!(contents(logged.inner().as_ref()), expected);
    assert_eq!(support::replay(&changelog, guarantee), expected);
    if guarantee == ProcessingGuarantee::AtLeastOnce {
        let logged_records = changelog.records(TOPIC, PARTITION).unwrap();
        assert_eq!(
            logged_records.len(),
            8,
            "the retry must append only what the changelog lacked"
        );
    }
}

/// The changelog's log start moved past the store's position (delete-records,
/// retention): restore wipes, reports why, and rebuilds from the new log start.
pub fn log_start_truncated_above_position(backend: &dyn BackendFactory) {
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let f = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let mut first = support::logged(&changelog, f.open(), guarantee);
    support::write_and_commit(&mut first, 0..10);
    first.inner().close().unwrap();
    drop(first);
    // Another instance takes over and writes on.
    let other = Fixture::new(backend, "store");
    let other_store = other.open();
    support::restore_with(
        other_store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &RecordingListener::default(),
    )
    .unwrap();
    let mut second = support::logged(&changelog, other_store, guarantee);
    support::write_and_commit(&mut second, 10..20);
    drop(second);
    changelog.truncate_before(TOPIC, PARTITION, 15).unwrap();

    let store = f.open();
    let listener = RecordingListener::default();
    let summary = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &listener,
    )
    .unwrap();
    if store.capability().durable {
        assert_eq!(
            summary.wiped,
            Some(WipeReason::PositionBelowLogStart {
                applied: 9,
                log_start: 15
            })
        );
        assert_eq!(
            listener.heard().wiped.len(),
            1,
            "the wipe must be reported to the listener"
        );
    }
    assert_eq!(summary.from, 15);
    assert_eq!(summary.restored, 5);
    assert_eq!(
        contents(store.as_ref()),
        support::replay(&changelog, guarantee)
    );
}

/// The topic was deleted and recreated with fewer records than the store's position:
/// restore wipes, reports why, and rebuilds from the new topic.
pub fn topic_recreated_below_position(backend: &dyn BackendFactory) {
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let f = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let mut logged = support::logged(&changelog, f.open(), guarantee);
    support::write_and_commit(&mut logged, 0..10);
    logged.inner().close().unwrap();
    drop(logged);
    changelog.recreate_topic(TOPIC).unwrap();
    let mut fresh = support::logged(&changelog, Fixture::new(backend, "store").open(), guarantee);
    support::write_and_commit(&mut fresh, 100..103);
    drop(fresh);

    let store = f.open();
    let listener = RecordingListener::default();
    let summary = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &listener,
    )
    .unwrap();
    if store.capability().durable {
        assert_eq!(
            summary.wiped,
            Some(WipeReason::PositionAboveLogEnd {
                applied: 9,
                log_end: 3
            })
        );
        assert_eq!(listener.heard().wiped.len(), 1);
    }
    assert_eq!(summary.restored, 3);
    assert_eq!(
        contents(store.as_ref()),
        support::replay(&changelog, guarantee)
    );
}

/// Restore fails half-way: the listener hears a suspension, the store keeps what it
/// applied with a matching position, and the next restore resumes there — no record
/// applied twice, none skipped.
pub fn crash_during_restore_resumes(backend: &dyn BackendFactory, guarantee: ProcessingGuarantee) {
    let source = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let mut logged = support::logged(&changelog, source.open(), guarantee);
    support::write_and_commit(&mut logged, 0..25);
    support::write_and_commit(&mut logged, 25..50);
    drop(logged);

    let f = Fixture::new(backend, "store");
    let store = f.open();
    let listener = RecordingListener::default();
    let failing = FailingReader::new(support::reader(&changelog, guarantee), 3);
    let err = support::restore_with(store.as_ref(), &failing, &listener).unwrap_err();
    assert!(err.to_string().contains("restoring store"), "{err}");
    let heard = listener.heard();
    assert_eq!(heard.suspended.len(), 1, "suspension must be reported");
    let applied_first = heard.suspended[0];
    assert!(
        applied_first > 0 && applied_first < 50,
        "restored {applied_first} before the crash"
    );
    let position = store.position().unwrap().applied(PARTITION).unwrap();
    assert_eq!(
        contents(store.as_ref()).len() as u64,
        applied_first,
        "data and position must match"
    );
    assert_eq!(
        position + 1,
        applied_first as i64,
        "position must cover exactly what was applied"
    );

    let summary = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &listener,
    )
    .unwrap();
    assert_eq!(
        summary.restored + applied_first,
        50,
        "resumed restore must apply each record once"
    );
    assert_eq!(
        contents(store.as_ref()),
        support::replay(&changelog, guarantee)
    );
}

/// Appends failing (a full or broken producer) surface as errors from the write itself.
pub fn failing_appends_surface_as_errors(backend: &dyn BackendFactory) {
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let f = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let mut logged = support::logged(&changelog, f.open(), guarantee);
    changelog.fail_appends_after(TOPIC, 2).unwrap();
    logged.put(b"a", b"1").unwrap();
    logged.put(b"b", b"2").unwrap();
    let err = logged.put(b"c", b"3").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        logged.get(b"c").unwrap(),
        None,
        "a write whose append failed must not be visible"
    );
    changelog.clear_faults(TOPIC).unwrap();
    block_on(logged.commit()).unwrap();
    assert_eq!(support::replay(&changelog, guarantee).len(), 2);
}

/// Stores commit together only through the sink they log through: a store of another
/// sink in the list is refused before anything is committed, and its writes stay.
pub fn commit_together_refuses_another_sinks_store(backend: &dyn BackendFactory) {
    let (f, g) = (
        Fixture::new(backend, "store"),
        Fixture::new(backend, "other"),
    );
    let changelog = support::changelog();
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let mut ours = support::logged(&changelog, f.open(), guarantee);
    let mut theirs = support::logged(&changelog, g.open(), guarantee);
    ours.put(b"a", b"1").unwrap();
    theirs.put(b"b", b"2").unwrap();
    let sink = ours.sink().clone();
    let err = block_on(state_core::commit_together(
        sink.as_ref(),
        &mut [&mut ours, &mut theirs],
        &state_core::SourceOffsets::none(),
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("another sink"), "{err}");
    assert!(
        support::replay(&changelog, guarantee).is_empty(),
        "nothing committed"
    );
    assert_eq!((ours.uncommitted(), theirs.uncommitted()), (1, 1));
}

/// A changelog record the store's serdes cannot decode stops restore with an error that
/// names topic, partition and offset; nothing after it is applied silently.
pub fn undecodable_record_is_reported(backend: &dyn BackendFactory) {
    let changelog = support::changelog();
    // The topic does not exist yet: the builder creates it, so write after a first build.
    assert!(
        changelog
            .sink_now(&SinkOptions::default())
            .unwrap()
            .append(
                "shop-rewards-changelog",
                PARTITION,
                &ChangelogRecord::put(b"k".to_vec(), b"v".to_vec(), 0)
            )
            .is_err(),
        "an append to a missing topic must fail"
    );
    undecodable_record_stops_restore(backend, Arc::new(changelog), "shop", PARTITION);
}

/// [`undecodable_record_is_reported`] on any changelog: builds store `rewards` (String ->
/// f64) of `application_id`, commits a record, appends 3 bytes no `Double` serde reads at
/// offset 1, and expects building the store elsewhere to fail naming where.
pub fn undecodable_record_stops_restore(
    backend: &dyn BackendFactory,
    changelog: Arc<dyn Changelog>,
    application_id: &str,
    partition: Partition,
) {
    let topic = format!("{application_id}-rewards-changelog");
    let f = Fixture::new(backend, "rewards");
    let context = StoreContext::new(application_id, partition, partition + 1, f.root())
        .unwrap()
        .with_changelog(changelog.clone());
    let builder = StoreBuilder::new(backend.supplier("rewards"), Serdes::string(), Serdes::f64())
        .with_logging_enabled(HashMap::new());
    let mut store = block_on(builder.build(&context)).unwrap();
    store.put(&"alice".to_owned(), &1.0).unwrap();
    block_on(store.commit()).unwrap();
    drop(store);
    let raw = block_on(changelog.sink(&SinkOptions::default())).unwrap();
    raw.append(
        &topic,
        partition,
        &ChangelogRecord::put(b"bob".to_vec(), vec![1, 2, 3], 0),
    )
    .unwrap();
    block_on(raw.commit(&state_core::SourceOffsets::none())).unwrap();

    let elsewhere = Fixture::new(backend, "rewards");
    let context = StoreContext::new(application_id, partition, partition + 1, elsewhere.root())
        .unwrap()
        .with_changelog(changelog);
    let err = match block_on(builder.build(&context)) {
        Ok(_) => panic!("restoring an undecodable record from {topic} must fail"),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
    let message = err.to_string();
    for part in [
        topic.as_str(),
        &format!("partition {partition}"),
        "offset 1",
        "Double",
    ] {
        assert!(message.contains(part), "error must name {part}: {message}");
    }
}
