//! Reaching the changelog: the Kafka client settings every command uses.

use std::time::Duration;

use changelog_kafka::{KafkaChangelog, KafkaChangelogConfig, KafkaReader};
use state_core::{
    ChangelogReader, IsolationLevel, LogOffsets, Partition, Result, changelog_topic_name,
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

/// A reader of `location`'s changelog topic, after checking that the topic exists and
/// every partition in `partitions` answers; returns each partition's offsets. Nothing
/// is created: a missing topic is an error.
pub async fn existing_reader(
    servers: &str,
    timeout: Duration,
    location: &Location,
    partitions: &[Partition],
    exactly_once: bool,
) -> Result<(KafkaReader, Vec<LogOffsets>)> {
    let topic = changelog_topic_name(&location.application_id, &location.store);
    let isolation = if exactly_once {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
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
