//! Reopen: a durable store comes back with data and position matching, and restore then
//! replays only the tail after its position.

use state_core::{KeyRange, ProcessingGuarantee};

use crate::crash_points::FailingPositionWrite;
use crate::harness::{BackendFactory, Fixture, block_on, contents};
use crate::support::{self, PARTITION, RecordingListener, TOPIC};

/// Closed cleanly or dropped without close, the reopened store's data equals a replay of
/// the changelog up to its position, and restore replays exactly the rest.
pub fn reopen_replays_only_the_tail(backend: &dyn BackendFactory, close_cleanly: bool) {
    let guarantee = ProcessingGuarantee::AtLeastOnce;
    let f = Fixture::new(backend, "store");
    let changelog = support::changelog();
    let switch = FailingPositionWrite::new(f.open());
    let mut logged = support::logged(&changelog, switch.clone(), guarantee);
    support::write_and_commit(&mut logged, 0..10);
    // The second commit reaches the changelog but the process dies before the store write.
    for i in 10..15u32 {
        logged.put(format!("key-{i:03}").as_bytes(), b"x").unwrap();
    }
    logged.delete(b"key-000").unwrap();
    switch.arm();
    assert!(block_on(logged.commit()).is_err());
    if close_cleanly {
        logged.inner().close().unwrap();
    }
    drop(logged);
    drop(switch);

    let store = f.open();
    if !store.capability().durable {
        return;
    }
    let position = store.position().unwrap().applied(PARTITION);
    let data = contents(store.as_ref());
    // Data and position must match: the data is exactly the replay up to the position.
    let expected_at_position: Vec<_> = match position {
        Some(9) => (0..10u32)
            .map(|i| (format!("key-{i:03}").into_bytes(), i.to_be_bytes().to_vec()))
            .collect(),
        None => Vec::new(),
        Some(other) => panic!("position {other} matches no commit"),
    };
    assert_eq!(
        data, expected_at_position,
        "data and position disagree after reopen"
    );
    if close_cleanly {
        assert_eq!(
            position,
            Some(9),
            "a clean close must keep the committed position"
        );
    }
    let end = changelog.end_offset(TOPIC, PARTITION).unwrap();
    let listener = RecordingListener::default();
    let summary = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &listener,
    )
    .unwrap();
    let expected_tail = end - position.map_or(0, |p| p + 1);
    assert_eq!(
        summary.restored as i64, expected_tail,
        "restore must replay only the tail"
    );
    assert_eq!(
        contents(store.as_ref()),
        support::replay(&changelog, guarantee)
    );
    assert_eq!(
        store.range(&KeyRange::prefix(b"key-000")).unwrap().count(),
        0
    );
    // Restoring again replays nothing.
    let again = support::restore_with(
        store.as_ref(),
        support::reader(&changelog, guarantee).as_ref(),
        &listener,
    )
    .unwrap();
    assert_eq!(again.restored, 0);
}
