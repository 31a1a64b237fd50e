//! Reaching the changelog: the Kafka client settings every command uses.

use std::time::Duration;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig, KafkaReader};
use state_core::{
    ChangelogReader, IsolationLevel, LogOffsets, Partition, RestoreSummary, Result,
    changelog_topic_name,
};

use crate::backend::Location;
use crate::errors;

/// A changelog client for `servers` that gives up on metadata after `timeout`.
pub fn changelog(servers: &str, timeout: Duration) -> Result<KafkaChangelog> {
    let config = KafkaChangelogConfig::new(servers)
        .with_client_id("statestore-cli")
        .with_metadata_timeout(timeout)
        .with_flush_timeout(timeout.max(Duration::from_secs(30)));
    KafkaChangelog::new(config).map_err(|err| errors::kafka(err, servers, None))
}

/// Which records of a changelog the commands read: committed ones unless
/// `--read-uncommitted` says otherwise. A log written by a transactional (exactly-once)
/// producer holds aborted records too; read-committed skips them, and on a log written
/// without transactions it reads every record all the same, so it is the safe default
/// (Kafka Streams restores every exactly-once changelog this way).
pub fn isolation(read_uncommitted: bool) -> IsolationLevel {
    if read_uncommitted {
        IsolationLevel::ReadUncommitted
    } else {
        IsolationLevel::ReadCommitted
    }
}

/// A reader of `location`'s changelog topic, after checking that the topic exists and
/// every partition in `partitions` answers; returns each partition's offsets. Nothing
/// is created: a missing topic is an error.
pub async fn existing_reader(
    servers: &str,
    timeout: Duration,
    location: &Location,
    partitions: &[Partition],
    isolation: IsolationLevel,
) -> Result<(KafkaReader, Vec<LogOffsets>)> {
    let topic = changelog_topic_name(&location.application_id, &location.store);
    let reader = changelog(servers, timeout)?
        .kafka_reader(&topic, isolation)
        .map_err(|err| errors::kafka(err, servers, Some(&topic)))?;
    let mut offsets = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        offsets.push(
            reader
                .offsets(partition)
                .await
                .map_err(|err| errors::kafka(err, servers, Some(&topic)))?,
        );
    }
    Ok((reader, offsets))
}

/// Offsets a replay read past without a record to apply: transaction markers, records of
/// aborted transactions (read-committed skips them) and records removed by compaction.
pub fn skipped_offsets(summary: &RestoreSummary) -> u64 {
    u64::try_from(summary.end - summary.from)
        .unwrap_or(0)
        .saturating_sub(summary.restored)
}

/// What a replay of `partition` says about the offsets it read past without a record,
/// if there were any: a log written with transactions has them, and under
/// `--read-uncommitted` its aborted records were applied.
pub fn offsets_without_records(
    partition: Partition,
    summary: &RestoreSummary,
    read_uncommitted: bool,
) -> Option<String> {
    let skipped = skipped_offsets(summary);
    if skipped == 0 {
        return None;
    }
    Some(if read_uncommitted {
        format!(
            "partition {partition}: {skipped} offsets held no record: transaction markers or records removed by compaction; if the log was written with transactions, records of aborted ones were applied too (--read-uncommitted)"
        )
    } else {
        format!(
            "partition {partition}: {skipped} offsets held no committed record: transaction markers, records of aborted transactions (not applied) or records removed by compaction"
        )
    })
}
