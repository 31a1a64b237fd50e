//! Behaviour of the in-process changelog: offsets, read-back, transactions, compaction,
//! truncation, recreation and every fault knob.

use std::collections::BTreeMap;

use futures::executor::block_on;
use state_core::changelog::in_memory::{InMemoryChangelog, InMemorySink, RecordStatus, TxnMarker};
use state_core::{
    Changelog, ChangelogRecord, ChangelogSink, ConsumedRecord, ErrorKind, InputBinding,
    IsolationLevel, LogOffsets, Offset, Partition, Position, ProcessingGuarantee, RestoreCursor,
    SinkOptions, SourceCommit, SourceOffsets, TopicSpec,
};

const TOPIC: &str = "app-rewards-changelog";

fn changelog(partitions: i32) -> InMemoryChangelog {
    let changelog = InMemoryChangelog::new();
    let spec = TopicSpec::changelog(TOPIC, partitions, &BTreeMap::new());
    block_on(changelog.ensure_topic(&spec)).unwrap();
    changelog
}

fn plain_sink(changelog: &InMemoryChangelog) -> InMemorySink {
    changelog.sink_now(&SinkOptions::default()).unwrap()
}

fn eos_sink(changelog: &InMemoryChangelog, id: &str) -> InMemorySink {
    changelog
        .sink_now(&SinkOptions::new(ProcessingGuarantee::ExactlyOnce, id))
        .unwrap()
}

/// What a commit without input offsets acknowledged on `TOPIC`.
fn commit(sink: &InMemorySink) -> state_core::Result<Position> {
    block_on(sink.commit(&SourceOffsets::none())).map(|done| done.positions.topic(TOPIC))
}

/// Delivers what is pending (an exactly-once sink: into its open transaction; a plain
/// one: commits), returning what `TOPIC` acknowledged.
fn flush(sink: &InMemorySink) -> state_core::Result<Position> {
    if sink.transactional_id().is_none() {
        return commit(sink);
    }
    sink.flush_pending()?;
    Ok(sink.acknowledged().topic(TOPIC))
}

fn put(key: &str, value: &str) -> ChangelogRecord {
    ChangelogRecord::put(key.as_bytes(), value.as_bytes(), 0)
}

fn offsets(
    changelog: &InMemoryChangelog,
    isolation: IsolationLevel,
    partition: Partition,
) -> LogOffsets {
    let reader = block_on(changelog.reader(TOPIC, isolation)).unwrap();
    block_on(reader.offsets(partition)).unwrap()
}

fn open(
    changelog: &InMemoryChangelog,
    isolation: IsolationLevel,
    partition: Partition,
    from: Offset,
) -> Box<dyn RestoreCursor> {
    let reader = block_on(changelog.reader(TOPIC, isolation)).unwrap();
    block_on(reader.open(partition, from)).unwrap()
}

/// Reads from `from` to the end offset in batches of `max`, returning `(offset, key)`s.
fn read_all(
    changelog: &InMemoryChangelog,
    isolation: IsolationLevel,
    partition: Partition,
    from: Offset,
    max: usize,
) -> Vec<(Offset, String)> {
    let end = offsets(changelog, isolation, partition).end;
    let mut cursor = open(changelog, isolation, partition, from);
    let mut out = Vec::new();
    while cursor.position() < end {
        let before = cursor.position();
        let batch = block_on(cursor.next_batch(max)).unwrap();
        assert!(batch.len() <= max);
        assert!(cursor.position() > before, "no progress at {before}");
        out.extend(batch.into_iter().map(key_of));
    }
    assert_eq!(cursor.position(), end);
    out
}

fn key_of(consumed: ConsumedRecord) -> (Offset, String) {
    (
        consumed.offset,
        String::from_utf8(consumed.record.key).unwrap(),
    )
}

fn keys(pairs: &[(Offset, &str)]) -> Vec<(Offset, String)> {
    pairs.iter().map(|&(o, k)| (o, k.to_owned())).collect()
}

#[test]
fn flush_assigns_offsets_from_zero_and_reports_acknowledged() {
    let changelog = changelog(2);
    let sink = plain_sink(&changelog);
    for key in ["a", "b", "c"] {
        sink.append(TOPIC, 0, &put(key, "v")).unwrap();
    }
    sink.append(TOPIC, 1, &put("x", "v")).unwrap();
    assert_eq!(
        changelog.end_offset(TOPIC, 0).unwrap(),
        0,
        "append only buffers"
    );
    let position = flush(&sink).unwrap();
    assert_eq!(position, [(0, 2), (1, 0)].into_iter().collect());
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 3);
    assert_eq!(changelog.end_offset(TOPIC, 1).unwrap(), 1);
    assert_eq!(changelog.log_start(TOPIC, 0).unwrap(), 0);

    sink.append(TOPIC, 0, &put("d", "v")).unwrap();
    let position = flush(&sink).unwrap();
    assert_eq!(
        position,
        [(0, 3), (1, 0)].into_iter().collect(),
        "highest so far"
    );
    assert_eq!(sink.acknowledged().topic(TOPIC), position);
}

#[test]
fn read_back_in_order_with_tombstones_in_batches() {
    let changelog = changelog(1);
    let sink = plain_sink(&changelog);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    sink.append(TOPIC, 0, &ChangelogRecord::tombstone(b"a".to_vec(), 7))
        .unwrap();
    sink.append(TOPIC, 0, &put("b", "2")).unwrap();
    flush(&sink).unwrap();

    let mut cursor = open(&changelog, IsolationLevel::ReadUncommitted, 0, 0);
    let first = block_on(cursor.next_batch(2)).unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].record, put("a", "1"));
    assert!(first[1].record.is_tombstone());
    assert_eq!(first[1].record.timestamp, 7);
    assert_eq!(first[1].offset, 1);
    assert_eq!(cursor.position(), 2);
    let second = block_on(cursor.next_batch(10)).unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].partition, second[0].offset), (0, 2));
    assert_eq!(cursor.position(), 3);
    assert!(
        block_on(cursor.next_batch(10)).unwrap().is_empty(),
        "nothing more, no wait"
    );
    assert_eq!(cursor.position(), 3);
    assert!(block_on(cursor.next_batch(0)).unwrap().is_empty());
}

#[test]
fn dropped_sink_loses_pending_records() {
    let changelog = changelog(1);
    let sink = plain_sink(&changelog);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    drop(sink);
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 0);
    assert!(changelog.records(TOPIC, 0).unwrap().is_empty());
}

#[test]
fn unknown_topic_and_partition_are_rejected() {
    let changelog = changelog(2);
    let err = plain_sink(&changelog)
        .append("missing", 0, &put("a", "1"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing"), "{err}");
    let err = block_on(changelog.reader("missing", IsolationLevel::ReadCommitted))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let sink = plain_sink(&changelog);
    let err = sink.append(TOPIC, 2, &put("a", "1")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(TOPIC) && err.to_string().contains('2'),
        "{err}"
    );
    assert_eq!(
        sink.append(TOPIC, -1, &put("a", "1")).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let reader = block_on(changelog.reader(TOPIC, IsolationLevel::ReadCommitted)).unwrap();
    assert_eq!(
        block_on(reader.offsets(5)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn ensure_topic_keeps_spec_and_rejects_other_partition_count() {
    let changelog = InMemoryChangelog::new();
    let user = BTreeMap::from([("min.insync.replicas".to_owned(), "2".to_owned())]);
    let spec = TopicSpec::changelog(TOPIC, 3, &user);
    block_on(changelog.ensure_topic(&spec)).unwrap();
    block_on(changelog.ensure_topic(&spec)).unwrap();
    assert_eq!(changelog.topic_config(TOPIC), Some(spec.clone()));
    assert_eq!(changelog.topic_config("other"), None);

    let err = block_on(changelog.ensure_topic(&TopicSpec::changelog(TOPIC, 5, &user))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.to_string();
    assert!(
        message.contains(TOPIC) && message.contains('3') && message.contains('5'),
        "{message}"
    );
    let zero = TopicSpec::changelog("zero", 0, &user);
    assert_eq!(
        block_on(changelog.ensure_topic(&zero)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn exactly_once_sink_needs_a_transactional_id_and_begins_its_own_transactions() {
    let changelog = changelog(1);
    let options = SinkOptions {
        guarantee: ProcessingGuarantee::ExactlyOnce,
        transactional_id: None,
        source: None,
    };
    let err = block_on(changelog.sink(&options)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let sink = eos_sink(&changelog, "t1");
    assert!(!sink.in_transaction());
    assert_eq!(
        commit(&sink).unwrap(),
        Position::empty(),
        "nothing appended: no transaction to commit"
    );
    assert!(changelog.markers(TOPIC, 0).unwrap().is_empty());
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    assert!(
        sink.in_transaction(),
        "the first append begins the transaction"
    );
    commit(&sink).unwrap();
    assert!(!sink.in_transaction());
    sink.append(TOPIC, 0, &put("b", "1")).unwrap();
    assert!(
        sink.in_transaction(),
        "and the first after a commit, the next"
    );
    assert!(!plain_sink(&changelog).in_transaction());
}

#[test]
fn open_transaction_is_invisible_to_read_committed_until_commit() {
    let changelog = changelog(2);
    let plain = plain_sink(&changelog);
    plain.append(TOPIC, 0, &put("before", "1")).unwrap();
    flush(&plain).unwrap();

    let sink = eos_sink(&changelog, "t1");
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    sink.append(TOPIC, 0, &put("b", "2")).unwrap();
    assert_eq!(flush(&sink).unwrap(), Position::of(0, 2));

    // Flushed records of an open transaction are in the log (read-uncommitted sees them),
    // but the last stable offset stops read-committed readers before them.
    assert_eq!(changelog.last_stable_offset(TOPIC, 0).unwrap(), 1);
    assert_eq!(
        offsets(&changelog, IsolationLevel::ReadCommitted, 0),
        LogOffsets {
            start: 0,
            end: 1,
            log_end: 3
        }
    );
    assert_eq!(
        offsets(&changelog, IsolationLevel::ReadUncommitted, 0).end,
        3
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(0, "before")])
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "before"), (1, "a"), (2, "b")])
    );
    assert_eq!(
        changelog.records(TOPIC, 0).unwrap()[1].status,
        RecordStatus::Open
    );
    let err = block_on(
        block_on(changelog.reader(TOPIC, IsolationLevel::ReadCommitted))
            .unwrap()
            .open(0, 2),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.kind(),
        ErrorKind::OutOfRange,
        "past the last stable offset"
    );

    let position = commit(&sink).unwrap();
    assert_eq!(position, Position::of(0, 2));
    assert!(!sink.in_transaction());
    // The COMMIT marker takes offset 3; partition 1 was not touched and gets none.
    assert_eq!(
        changelog.markers(TOPIC, 0).unwrap(),
        vec![TxnMarker {
            offset: 3,
            commit: true
        }]
    );
    assert!(changelog.markers(TOPIC, 1).unwrap().is_empty());
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 4);
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 1),
        keys(&[(0, "before"), (1, "a"), (2, "b")]),
    );
    assert_eq!(
        changelog.records(TOPIC, 0).unwrap()[2].status,
        RecordStatus::Committed
    );
    assert!(
        changelog.records(TOPIC, 0).unwrap()[0]
            .status
            .is_visible_committed()
    );
}

#[test]
fn commit_flushes_pending_records() {
    let changelog = changelog(1);
    let sink = eos_sink(&changelog, "t1");
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    assert_eq!(commit(&sink).unwrap(), Position::of(0, 0));
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(0, "a")])
    );
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 2);
}

#[test]
fn aborted_records_are_skipped_by_read_committed_but_the_position_advances() {
    let changelog = changelog(1);
    let sink = eos_sink(&changelog, "t1");
    sink.append(TOPIC, 0, &put("gone", "1")).unwrap();
    flush(&sink).unwrap();
    sink.append(TOPIC, 0, &put("never-flushed", "1")).unwrap();
    block_on(sink.abort()).unwrap();
    assert_eq!(
        sink.acknowledged().topic(TOPIC),
        Position::empty(),
        "after an abort, back at the last commit: nothing of the aborted one counts"
    );

    sink.append(TOPIC, 0, &put("kept", "2")).unwrap();
    commit(&sink).unwrap();

    // gone@0, ABORT@1, kept@2, COMMIT@3
    assert_eq!(changelog.markers(TOPIC, 0).unwrap().len(), 2);
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 1),
        keys(&[(2, "kept")])
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "gone"), (2, "kept")])
    );
    // A cursor at the aborted record moves over it and the marker in one read.
    let mut cursor = open(&changelog, IsolationLevel::ReadCommitted, 0, 0);
    let batch = block_on(cursor.next_batch(10)).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(cursor.position(), 4);
    let statuses: Vec<_> = changelog
        .records(TOPIC, 0)
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        vec![RecordStatus::Aborted, RecordStatus::Committed]
    );
}

#[test]
fn new_sink_with_same_transactional_id_fences_the_old_one() {
    let changelog = changelog(2);
    let old = eos_sink(&changelog, "t1");
    old.append(TOPIC, 0, &put("a", "1")).unwrap();
    old.append(TOPIC, 1, &put("b", "1")).unwrap();
    flush(&old).unwrap();
    old.append(TOPIC, 0, &put("pending", "1")).unwrap();

    let new = eos_sink(&changelog, "t1");
    // The old open transaction was aborted with a marker in each partition it wrote.
    for partition in [0, 1] {
        assert_eq!(
            changelog.markers(TOPIC, partition).unwrap(),
            vec![TxnMarker {
                offset: 1,
                commit: false
            }]
        );
        assert_eq!(changelog.last_stable_offset(TOPIC, partition).unwrap(), 2);
        assert!(read_all(&changelog, IsolationLevel::ReadCommitted, partition, 0, 10).is_empty());
    }
    assert!(!old.in_transaction());
    assert_eq!(
        old.append(TOPIC, 0, &put("x", "1")).unwrap_err().kind(),
        ErrorKind::Fenced
    );
    assert_eq!(flush(&old).unwrap_err().kind(), ErrorKind::Fenced);
    assert_eq!(commit(&old).unwrap_err().kind(), ErrorKind::Fenced);
    let err = block_on(old.abort()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced);
    assert!(err.to_string().contains("t1"), "{err}");
    assert_eq!(
        changelog.end_offset(TOPIC, 0).unwrap(),
        2,
        "old pending never delivered"
    );

    new.append(TOPIC, 0, &put("c", "2")).unwrap();
    commit(&new).unwrap();
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(2, "c")])
    );
}

#[test]
fn abort_open_transactions_times_out_a_dead_producer() {
    let changelog = changelog(1);
    let dead = eos_sink(&changelog, "t1");
    dead.append(TOPIC, 0, &put("a", "1")).unwrap();
    flush(&dead).unwrap();
    let plain = plain_sink(&changelog);
    plain.append(TOPIC, 0, &put("after", "1")).unwrap();
    flush(&plain).unwrap();
    assert_eq!(
        changelog.last_stable_offset(TOPIC, 0).unwrap(),
        0,
        "open txn holds LSO"
    );
    assert!(read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10).is_empty());

    assert_eq!(changelog.abort_open_transactions(), 1);
    assert_eq!(changelog.abort_open_transactions(), 0);
    assert_eq!(changelog.last_stable_offset(TOPIC, 0).unwrap(), 3);
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(1, "after")])
    );
    assert_eq!(
        dead.append(TOPIC, 0, &put("x", "1")).unwrap_err().kind(),
        ErrorKind::Fenced
    );
}

#[test]
fn oldest_open_transaction_bounds_the_last_stable_offset() {
    let changelog = changelog(1);
    let first = eos_sink(&changelog, "t1");
    let second = eos_sink(&changelog, "t2");
    first.append(TOPIC, 0, &put("first", "1")).unwrap();
    flush(&first).unwrap();
    second.append(TOPIC, 0, &put("second", "1")).unwrap();
    commit(&second).unwrap();
    assert_eq!(changelog.last_stable_offset(TOPIC, 0).unwrap(), 0);
    commit(&first).unwrap();
    assert_eq!(changelog.last_stable_offset(TOPIC, 0).unwrap(), 4);
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(0, "first"), (1, "second")])
    );
}

#[test]
fn compaction_keeps_latest_per_key_with_offsets_and_tombstones_until_purged() {
    let changelog = changelog(1);
    let sink = plain_sink(&changelog);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap(); // 0
    sink.append(TOPIC, 0, &put("b", "1")).unwrap(); // 1
    sink.append(TOPIC, 0, &put("a", "2")).unwrap(); // 2
    sink.append(TOPIC, 0, &put("c", "1")).unwrap(); // 3
    sink.append(TOPIC, 0, &ChangelogRecord::tombstone(b"b".to_vec(), 0))
        .unwrap(); // 4
    sink.append(TOPIC, 0, &put("d", "1")).unwrap(); // 5
    flush(&sink).unwrap();

    assert_eq!(changelog.compact(TOPIC, 0).unwrap(), 2);
    assert_eq!(changelog.log_start(TOPIC, 0).unwrap(), 0);
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 6);
    let kept = |changelog: &InMemoryChangelog| -> Vec<_> {
        changelog
            .records(TOPIC, 0)
            .unwrap()
            .into_iter()
            .map(|r| (r.offset, r.record))
            .collect()
    };
    let tombstone = ChangelogRecord::tombstone(b"b".to_vec(), 0);
    assert_eq!(
        kept(&changelog),
        vec![
            (2, put("a", "2")),
            (3, put("c", "1")),
            (4, tombstone),
            (5, put("d", "1"))
        ],
        "within delete.retention.ms the tombstone stays so lagging stores see the delete"
    );
    assert_eq!(
        changelog.compact(TOPIC, 0).unwrap(),
        0,
        "compaction is idempotent"
    );

    assert_eq!(changelog.compact_purging_tombstones(TOPIC, 0).unwrap(), 1);
    assert_eq!(
        kept(&changelog),
        vec![(2, put("a", "2")), (3, put("c", "1")), (5, put("d", "1"))]
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 1),
        keys(&[(2, "a"), (3, "c"), (5, "d")])
    );
    // A cursor opened in a gap reads on from the next kept record.
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 1, 10),
        keys(&[(2, "a"), (3, "c"), (5, "d")])
    );
}

#[test]
fn compaction_drops_aborted_records_and_markers_but_leaves_open_transactions() {
    let changelog = changelog(1);
    let sink = eos_sink(&changelog, "t1");
    sink.append(TOPIC, 0, &put("a", "aborted")).unwrap(); // 0, ABORT 1
    flush(&sink).unwrap();
    block_on(sink.abort()).unwrap();
    sink.append(TOPIC, 0, &put("b", "1")).unwrap(); // 2, COMMIT 3
    commit(&sink).unwrap();
    sink.append(TOPIC, 0, &put("b", "open")).unwrap(); // 4, open
    sink.append(TOPIC, 0, &put("b", "open2")).unwrap(); // 5, open
    flush(&sink).unwrap();

    assert_eq!(changelog.compact(TOPIC, 0).unwrap(), 3);
    let kept: Vec<_> = changelog
        .records(TOPIC, 0)
        .unwrap()
        .into_iter()
        .map(|r| (r.offset, r.status))
        .collect();
    assert_eq!(
        kept,
        vec![
            (2, RecordStatus::Committed),
            (4, RecordStatus::Open),
            (5, RecordStatus::Open)
        ]
    );
    assert!(changelog.markers(TOPIC, 0).unwrap().is_empty());
    commit(&sink).unwrap();
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(2, "b"), (4, "b"), (5, "b")])
    );
}

#[test]
fn truncation_raises_log_start_and_older_offsets_are_out_of_range() {
    let changelog = changelog(1);
    let sink = plain_sink(&changelog);
    for key in ["a", "b", "c", "d"] {
        sink.append(TOPIC, 0, &put(key, "1")).unwrap();
    }
    flush(&sink).unwrap();
    let mut early = open(&changelog, IsolationLevel::ReadUncommitted, 0, 0);

    changelog.truncate_before(TOPIC, 0, 2).unwrap();
    assert_eq!(changelog.log_start(TOPIC, 0).unwrap(), 2);
    assert_eq!(
        offsets(&changelog, IsolationLevel::ReadCommitted, 0),
        LogOffsets {
            start: 2,
            end: 4,
            log_end: 4
        }
    );
    let reader = block_on(changelog.reader(TOPIC, IsolationLevel::ReadUncommitted)).unwrap();
    let err = block_on(reader.open(0, 1)).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
    let message = err.to_string();
    assert!(
        message.contains(TOPIC) && message.contains("partition 0") && message.contains("offset 1"),
        "{message}"
    );
    assert_eq!(
        block_on(early.next_batch(10)).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 2, 10),
        keys(&[(2, "c"), (3, "d")])
    );

    changelog.truncate_before(TOPIC, 0, 1).unwrap();
    assert_eq!(
        changelog.log_start(TOPIC, 0).unwrap(),
        2,
        "never lowers the start"
    );
    assert_eq!(
        changelog.truncate_before(TOPIC, 0, 5).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    changelog.truncate_before(TOPIC, 0, 4).unwrap();
    assert_eq!(
        offsets(&changelog, IsolationLevel::ReadUncommitted, 0),
        LogOffsets {
            start: 4,
            end: 4,
            log_end: 4
        }
    );
}

#[test]
fn opening_past_the_end_is_out_of_range() {
    let changelog = changelog(1);
    let reader = block_on(changelog.reader(TOPIC, IsolationLevel::ReadUncommitted)).unwrap();
    assert!(
        block_on(reader.open(0, 0)).is_ok(),
        "end of an empty log is readable"
    );
    assert_eq!(
        block_on(reader.open(0, 1)).err().unwrap().kind(),
        ErrorKind::OutOfRange
    );
}

#[test]
fn recreated_topic_restarts_offsets_at_zero() {
    let changelog = changelog(2);
    let spec = changelog.topic_config(TOPIC).unwrap();
    let sink = plain_sink(&changelog);
    for key in ["a", "b", "c"] {
        sink.append(TOPIC, 0, &put(key, "1")).unwrap();
    }
    flush(&sink).unwrap();
    let mut cursor = open(&changelog, IsolationLevel::ReadUncommitted, 0, 3);

    changelog.recreate_topic(TOPIC).unwrap();
    assert_eq!(changelog.topic_config(TOPIC), Some(spec));
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 0);
    assert_eq!(
        block_on(cursor.next_batch(10)).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    sink.append(TOPIC, 0, &put("new", "1")).unwrap();
    assert_eq!(
        flush(&sink).unwrap(),
        Position::of(0, 0),
        "stale acks forgotten"
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "new")])
    );
    assert_eq!(
        changelog.recreate_topic("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn fail_next_flush_delivers_nothing_and_loses_pending() {
    let changelog = changelog(1);
    let sink = plain_sink(&changelog);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    flush(&sink).unwrap();
    changelog.fail_next_flush(TOPIC).unwrap();
    sink.append(TOPIC, 0, &put("b", "1")).unwrap();
    let err = flush(&sink).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retriable());
    assert!(err.to_string().contains(TOPIC), "{err}");
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 1);
    assert_eq!(sink.acknowledged().topic(TOPIC), Position::of(0, 0));

    // One-shot: the next flush works, and the lost record is not resent.
    sink.append(TOPIC, 0, &put("c", "1")).unwrap();
    assert_eq!(flush(&sink).unwrap(), Position::of(0, 1));
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "a"), (1, "c")])
    );
}

#[test]
fn fail_flush_after_delivers_a_prefix_then_fails() {
    let changelog = changelog(2);
    let sink = changelog.sink_now(&SinkOptions::default()).unwrap();
    changelog.fail_flush_after(TOPIC, 3).unwrap();
    for (partition, key) in [(0, "a"), (1, "b"), (0, "c"), (1, "d"), (0, "e")] {
        sink.append(TOPIC, partition, &put(key, "1")).unwrap();
    }
    assert_eq!(flush(&sink).unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(
        sink.acknowledged().topic(TOPIC),
        [(0, 1), (1, 0)].into_iter().collect()
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "a"), (1, "c")])
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 1, 0, 10),
        keys(&[(0, "b")])
    );
    assert_eq!(sink.pending(), 0);
}

#[test]
fn failed_commit_aborts_the_transaction() {
    let changelog = changelog(1);
    let sink = eos_sink(&changelog, "t1");
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    flush(&sink).unwrap();
    sink.append(TOPIC, 0, &put("b", "1")).unwrap();
    sink.append(TOPIC, 0, &put("c", "1")).unwrap();
    changelog.fail_flush_after(TOPIC, 1).unwrap();
    let err = commit(&sink).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!sink.in_transaction());
    // a@0, b@1, ABORT@2: nothing of the transaction is committed.
    assert_eq!(
        changelog.markers(TOPIC, 0).unwrap(),
        vec![TxnMarker {
            offset: 2,
            commit: false
        }]
    );
    assert!(read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10).is_empty());
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "a"), (1, "b")])
    );
    block_on(sink.abort()).unwrap();
    sink.append(TOPIC, 0, &put("d", "1")).unwrap();
    commit(&sink).unwrap();
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(3, "d")])
    );
}

#[test]
fn fail_appends_after_fails_until_cleared() {
    let changelog = changelog(1);
    let one = plain_sink(&changelog);
    let two = plain_sink(&changelog);
    changelog.fail_appends_after(TOPIC, 2).unwrap();
    one.append(TOPIC, 0, &put("a", "1")).unwrap();
    two.append(TOPIC, 0, &put("b", "1")).unwrap();
    assert_eq!(
        one.append(TOPIC, 0, &put("c", "1")).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        two.append(TOPIC, 0, &put("c", "1")).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    changelog.clear_faults(TOPIC).unwrap();
    one.append(TOPIC, 0, &put("c", "1")).unwrap();
    flush(&one).unwrap();
    flush(&two).unwrap();
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadUncommitted, 0, 0, 10),
        keys(&[(0, "a"), (1, "c"), (2, "b")])
    );
    assert_eq!(
        changelog.fail_next_flush("missing").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn clones_share_topics() {
    let changelog = changelog(1);
    let clone = changelog.clone();
    let sink = plain_sink(&clone);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    flush(&sink).unwrap();
    assert_eq!(changelog.end_offset(TOPIC, 0).unwrap(), 1);
    assert!(changelog.has_topic(TOPIC));
}

const VISITS: &str = "app-visits-changelog";

fn two_topics() -> InMemoryChangelog {
    let changelog = changelog(2);
    let spec = TopicSpec::changelog(VISITS, 2, &BTreeMap::new());
    block_on(changelog.ensure_topic(&spec)).unwrap();
    changelog
}

fn bound_sink(changelog: &InMemoryChangelog, guarantee: ProcessingGuarantee) -> InMemorySink {
    let options = SinkOptions::new(guarantee, "app-instance-1").with_source(input());
    changelog.sink_now(&options).unwrap()
}

fn input() -> InputBinding {
    InputBinding::new("app", "purchases")
}

fn offsets_of(pairs: &[(Partition, Offset)]) -> SourceOffsets {
    pairs.iter().copied().collect()
}

#[test]
fn one_transaction_spans_every_topic_and_carries_the_input_offsets() {
    let changelog = two_topics();
    let sink = bound_sink(&changelog, ProcessingGuarantee::ExactlyOnce);
    sink.append(TOPIC, 0, &put("alice", "1")).unwrap();
    sink.append(VISITS, 1, &put("alice", "1")).unwrap();
    sink.flush_pending().unwrap();
    assert_eq!(changelog.last_stable_offset(TOPIC, 0).unwrap(), 0);
    assert_eq!(changelog.last_stable_offset(VISITS, 1).unwrap(), 0);
    assert!(changelog.committed_offsets(&input()).is_empty());

    let done = block_on(sink.commit(&offsets_of(&[(0, 7), (1, 3)]))).unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(done.positions.applied(TOPIC, 0), Some(0));
    assert_eq!(done.positions.applied(VISITS, 1), Some(0));
    for (topic, partition) in [(TOPIC, 0), (VISITS, 1)] {
        assert_eq!(
            changelog.markers(topic, partition).unwrap(),
            vec![TxnMarker {
                offset: 1,
                commit: true
            }],
            "{topic} {partition}"
        );
    }
    assert!(changelog.markers(TOPIC, 1).unwrap().is_empty(), "untouched");
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(0, 7), (1, 3)])
    );
}

#[test]
fn offsets_of_an_aborted_or_failed_transaction_are_not_committed() {
    let changelog = two_topics();
    let sink = bound_sink(&changelog, ProcessingGuarantee::ExactlyOnce);
    sink.append(TOPIC, 0, &put("a", "1")).unwrap();
    block_on(sink.commit(&offsets_of(&[(0, 1)]))).unwrap();
    let acknowledged = sink.acknowledged();

    sink.append(TOPIC, 0, &put("b", "1")).unwrap();
    sink.flush_pending().unwrap();
    block_on(sink.abort()).unwrap();
    assert_eq!(sink.acknowledged(), acknowledged, "back at the last commit");

    sink.append(VISITS, 0, &put("c", "1")).unwrap();
    changelog.fail_next_flush(VISITS).unwrap();
    let err = block_on(sink.commit(&offsets_of(&[(0, 3)]))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        !sink.in_transaction(),
        "a failed commit leaves no transaction open"
    );
    assert_eq!(sink.acknowledged(), acknowledged);
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(0, 1)])
    );
    assert_eq!(
        read_all(&changelog, IsolationLevel::ReadCommitted, 0, 0, 10),
        keys(&[(0, "a")])
    );

    // Offsets alone still need a transaction, and get one.
    let done = block_on(sink.commit(&offsets_of(&[(0, 4)]))).unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(0, 4)])
    );
}

#[test]
fn at_least_once_commits_the_offsets_after_the_records() {
    let changelog = two_topics();
    let sink = bound_sink(&changelog, ProcessingGuarantee::AtLeastOnce);
    sink.append(TOPIC, 1, &put("a", "1")).unwrap();
    changelog.fail_next_flush(TOPIC).unwrap();
    assert_eq!(
        block_on(sink.commit(&offsets_of(&[(1, 5)])))
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    assert!(changelog.committed_offsets(&input()).is_empty());
    sink.append(TOPIC, 1, &put("a", "2")).unwrap();
    let done = block_on(sink.commit(&offsets_of(&[(1, 6)]))).unwrap();
    assert_eq!(done.source, SourceCommit::Committed);
    assert_eq!(done.positions.applied(TOPIC, 1), Some(0));
    assert_eq!(
        changelog.committed_offsets(&input()),
        BTreeMap::from([(1, 6)])
    );
    assert!(changelog.markers(TOPIC, 1).unwrap().is_empty());
}

#[test]
fn input_offsets_need_a_bound_sink() {
    let changelog = changelog(1);
    for sink in [plain_sink(&changelog), eos_sink(&changelog, "t1")] {
        sink.append(TOPIC, 0, &put("a", "1")).unwrap();
        let err = block_on(sink.commit(&offsets_of(&[(0, 1)]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(sink.pending(), 1, "nothing was committed");
    }
}
