//! Helpers shared by the integration tests: reading a partition to its end, and a guard
//! that restarts stopped brokers (the brokers, names and waits are `test_support`'s).
#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use state_core::{
    ChangelogPositions, ChangelogReader, ChangelogSink, ConsumedRecord, Offset, Partition, Result,
    SourceOffsets,
};
use test_support::eventually_async;

/// Reads `partition` from `from` until the cursor's position reaches `end`, failing the
/// test if it stops short for 30 s. Returns the records and the final position.
pub async fn read_until(
    reader: &dyn ChangelogReader,
    partition: Partition,
    from: Offset,
    end: Offset,
) -> Result<(Vec<ConsumedRecord>, Offset)> {
    let mut cursor = reader.open(partition, from).await?;
    let mut records = Vec::new();
    let mut failed = None;
    eventually_async(
        Duration::from_secs(30),
        &format!(
            "reading {} partition {partition} up to {end}",
            reader.topic()
        ),
        // Reads while batches come; an empty one means nothing more for now.
        async || {
            while cursor.position() < end {
                match cursor.next_batch(100).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => records.extend(batch),
                    Err(err) => {
                        failed = Some(err);
                        return Ok(());
                    }
                }
            }
            if cursor.position() < end {
                Err(format!(
                    "position {} ({} records read)",
                    cursor.position(),
                    records.len()
                ))
            } else {
                Ok(())
            }
        },
    )
    .await;
    match failed {
        Some(err) => Err(err),
        None => Ok((records, cursor.position())),
    }
}

/// Reads `partition` from its start to the end offset it has now.
pub async fn read_all(
    reader: &dyn ChangelogReader,
    partition: Partition,
) -> Result<(Vec<ConsumedRecord>, Offset)> {
    let offsets = reader.offsets(partition).await?;
    read_until(reader, partition, offsets.start, offsets.end).await
}

/// Runs `scripts/kafka.sh` with `args`, panicking with its output on failure.
pub fn kafka_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("running kafka.sh {args:?}: {err}"));
    assert!(
        output.status.success(),
        "kafka.sh {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops cluster brokers on request and starts every one it stopped again when dropped,
/// so a failing test never leaves the cluster degraded.
#[derive(Default)]
pub struct BrokerGuard {
    stopped: Vec<u32>,
}

impl BrokerGuard {
    /// Stops cluster broker `n` (`scripts/kafka.sh stop-broker n`).
    pub fn stop(&mut self, n: u32) {
        self.stopped.push(n);
        kafka_sh(&["stop-broker", &n.to_string()]);
    }

    /// Starts every broker this guard stopped.
    pub fn restart_all(&mut self) {
        for n in std::mem::take(&mut self.stopped) {
            kafka_sh(&["start-broker", &n.to_string()]);
        }
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        for n in std::mem::take(&mut self.stopped) {
            // Best effort: panicking inside a drop during a panic would abort.
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
            let status = Command::new("bash")
                .arg(script)
                .args(["start-broker", &n.to_string()])
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("could not restart cluster broker {n}: {status:?}");
            }
        }
    }
}

/// Commits `sink` without input offsets; returns the acknowledged offsets.
pub async fn commit(sink: &(impl ChangelogSink + ?Sized)) -> Result<ChangelogPositions> {
    Ok(sink.commit(&SourceOffsets::none()).await?.positions)
}
