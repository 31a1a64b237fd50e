//! A consumer-group member whose partitions carry their stores with them: the
//! [`StoreManager`] wired to a Kafka consumer's rebalance callbacks, with
//! cooperative-sticky assignment, so adding or removing an instance moves partitions —
//! and their state — for real.
//!
//! The processing loop is the caller's: [`StatefulConsumer::poll`] hands one input
//! record at a time to a closure together with its partition's store, and commits stores
//! and input offsets every commit interval (see the guarantees below).
//!
//! ## Guarantees
//! - At-least-once: stores are committed (changelog flushed), then the input offsets; a
//!   crash in between replays input into restored state, so updates should be idempotent
//!   or tolerate repeats.
//! - Exactly-once: each partition's input offset is sent into that partition's changelog
//!   transaction (`send_offsets_to_transaction`, with the group's metadata so a zombie of
//!   an older generation is fenced), so input position and state commit together or not
//!   at all; the input is read `read_committed`. Transactional ids are per store
//!   partition (`<application>-<store>-<partition>`), as in Kafka Streams' original
//!   exactly-once: a new owner's sink fences the old owner's before restoring.

mod config;
mod context;
mod events;
mod member;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Error, ErrorKind, Offset, Partition, PartitionRole, ProcessingGuarantee, Result, StoreManager,
    TypedKeyValueStore,
};
use tokio::runtime::Handle;

pub use config::{GroupConfig, StandbyPolicy};
pub use context::GroupContext;
use context::OffsetCommit;
pub use events::{GroupListener, NoopGroupListener};
use member::{Assignment, Member, Restored};

use crate::error::{At, kafka_error};

/// The longest a poll waits while a partition restores.
const RESTORE_CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// One input record handed to the processing closure.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    /// The input (and store) partition.
    pub partition: Partition,
    /// The record's offset in the input partition.
    pub offset: Offset,
    /// The key bytes, if any.
    pub key: Option<&'a [u8]>,
    /// The value bytes, if any.
    pub value: Option<&'a [u8]>,
}

/// A consumer-group member that processes input records against per-partition stores
/// (see the [module docs](self)).
///
/// Poll it from a plain thread, never from inside an async runtime: rebalance callbacks
/// run inside `poll` and block on the runtime to commit revoked stores.
pub struct StatefulConsumer<K: 'static, V: 'static> {
    // Declared first so it drops (leaving the group, committing revoked stores) while
    // the rest is still alive.
    consumer: BaseConsumer<GroupContext<K, V>>,
    member: Arc<Member<K, V>>,
    restored: Receiver<Restored>,
    commit_interval: Duration,
    last_commit: Instant,
    refused_commits: u64,
    stop_standbys: Arc<AtomicBool>,
}

impl<K: 'static, V: 'static> StatefulConsumer<K, V> {
    /// Joins `config`'s group and subscribes to its input topic; stores are built by
    /// `manager` and restored on `runtime`. `listener` hears partitions move. Blocks on a
    /// metadata request: call it off the runtime, like [`poll`](Self::poll).
    pub fn new(
        config: &GroupConfig,
        manager: Arc<StoreManager<K, V>>,
        runtime: Handle,
        listener: Arc<dyn GroupListener>,
    ) -> Result<Self> {
        let topic = config.input_topic.as_str();
        // Under exactly-once, input written by transactional producers (another
        // exactly-once processor) counts only once committed.
        let isolation = match manager.context().guarantee() {
            ProcessingGuarantee::ExactlyOnce => "read_committed",
            ProcessingGuarantee::AtLeastOnce => "read_uncommitted",
        };
        let session = config.session_timeout.as_millis().to_string();
        let heartbeat = (config.session_timeout.as_millis() / 3).max(1).to_string();
        let ours = [
            ("group.id", config.group_id.as_str()),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", session.as_str()),
            ("heartbeat.interval.ms", heartbeat.as_str()),
            ("enable.partition.eof", "false"),
            ("isolation.level", isolation),
        ];
        let client = config.kafka.client_config(&ours, &config.kafka.consumer);
        let partitions = manager.context().num_partitions();
        let (sender, restored) = channel();
        let member = Arc::new(Member {
            manager,
            runtime,
            topic: topic.to_owned(),
            partitions,
            standbys: config.standbys,
            listener,
            restored: Mutex::new(sender),
            standby_updates: AtomicBool::new(true),
            standby_round: tokio::sync::Mutex::new(()),
            assignment: Mutex::new(Assignment::default()),
        });
        let consumer: BaseConsumer<GroupContext<K, V>> = client
            .create_with_context(GroupContext {
                member: member.clone(),
            })
            .map_err(|err| kafka_error("creating the group consumer", At::topic(topic), err))?;
        check_partitions(&consumer, topic, partitions, config.kafka.metadata_timeout)?;
        consumer
            .subscribe(&[topic])
            .map_err(|err| kafka_error("subscribing", At::topic(topic), err))?;
        let stop_standbys = Arc::new(AtomicBool::new(false));
        if config.standbys != StandbyPolicy::None {
            spawn_standby_updates(&member, stop_standbys.clone());
        }
        Ok(Self {
            consumer,
            member,
            restored,
            commit_interval: config.commit_interval,
            last_commit: Instant::now(),
            refused_commits: 0,
            stop_standbys,
        })
    }

    /// Serves the group for up to `timeout`: runs rebalance callbacks, resumes partitions
    /// whose restore finished, hands at most one record to `process` with its partition's
    /// store, and commits when the commit interval has passed. Returns the partition of
    /// the record processed, if any.
    ///
    /// An error from `process` is returned before the record counts as processed, so it
    /// is consumed again after a restart; the caller decides whether to go on.
    pub fn poll<F>(&mut self, timeout: Duration, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&mut TypedKeyValueStore<K, V>, &InputRecord<'_>) -> Result<()>,
    {
        if Handle::try_current().is_ok() {
            return Err(Error::invalid_input(
                "StatefulConsumer::poll must run on a plain thread, not inside an async runtime \
                 (rebalance callbacks block on the runtime)",
            ));
        }
        self.resume_restored()?;
        // A restore finishing does not wake the consumer: while one runs, poll briefly
        // so its partition is resumed soon after it is ready.
        let restoring = {
            let assignment = self.member.assignment();
            assignment.assigned.len() > assignment.ready.len()
        };
        let wait = if restoring {
            timeout.min(RESTORE_CHECK_INTERVAL)
        } else {
            timeout
        };
        let processed = match self.consumer.poll(wait) {
            None => None,
            Some(Err(err)) => {
                return Err(kafka_error(
                    "polling the group",
                    At::topic(&self.member.topic),
                    err,
                ));
            }
            Some(Ok(message)) => {
                let record = InputRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key(),
                    value: message.payload(),
                };
                self.process(&record, process)?
            }
        };
        if let Some(error) = self.member.assignment().error.take() {
            return Err(error);
        }
        if self.last_commit.elapsed() >= self.commit_interval {
            self.commit()?;
        }
        Ok(processed)
    }

    /// Commits every store, then the input offsets processed into them.
    pub fn commit(&mut self) -> Result<()> {
        self.last_commit = Instant::now();
        // Only offsets that moved: an idle partition needs no transaction every interval.
        let offsets: Vec<(Partition, Offset)> = {
            let assignment = self.member.assignment();
            assignment
                .processed
                .iter()
                .filter(|(p, o)| {
                    assignment.ready.contains(p) && assignment.committed.get(p) != Some(o)
                })
                .map(|(p, o)| (*p, *o))
                .collect()
        };
        if self.member.exactly_once() {
            let group = self.consumer.group_metadata();
            self.member.runtime.block_on(async {
                self.member.attach_source_offsets(&offsets, group).await?;
                self.member.manager.commit().await.map(drop)
            })?;
        } else {
            self.member.runtime.block_on(self.member.manager.commit())?;
            if context::commit_offsets(&self.consumer, &self.member.topic, &offsets)?
                == OffsetCommit::RefusedByRebalance
            {
                self.refused_commits += 1;
                return Ok(());
            }
        }
        self.member.assignment().committed.extend(offsets);
        Ok(())
    }

    /// Input-offset commits the group refused because it was rebalancing (the offsets
    /// were committed later or replayed by the next owner).
    pub fn refused_commits(&self) -> u64 {
        self.refused_commits
    }

    /// Partitions served here now (restored and resumed).
    pub fn ready_partitions(&self) -> BTreeSet<Partition> {
        self.member.assignment().ready.clone()
    }

    /// Partitions assigned here (restoring or served).
    pub fn assigned_partitions(&self) -> BTreeSet<Partition> {
        self.member.assignment().assigned.clone()
    }

    /// The next input offset to consume of each served partition that processed a record
    /// since it was assigned here.
    pub fn processed_offsets(&self) -> BTreeMap<Partition, Offset> {
        let assignment = self.member.assignment();
        assignment
            .processed
            .iter()
            .filter(|(p, _)| assignment.ready.contains(p))
            .map(|(p, o)| (*p, *o))
            .collect()
    }

    /// Stops (`false`) or restarts (`true`) tailing the standbys' changelogs — for
    /// example to spare I/O during a load spike. Stopped standbys fall behind and a
    /// promotion replays what they lag.
    /// Returns once no update is running any more, so a stopped standby's lag is stable.
    pub fn set_standby_updates(&self, enabled: bool) {
        self.member.standby_updates.store(enabled, Ordering::SeqCst);
        // The updater holds this lock for each round of updates.
        drop(
            self.member
                .runtime
                .block_on(self.member.standby_round.lock()),
        );
    }

    /// The store manager.
    pub fn manager(&self) -> &Arc<StoreManager<K, V>> {
        &self.member.manager
    }

    /// Commits, leaves the group (revoking — committing and closing — every partition)
    /// and closes the standbys, keeping all directories.
    pub fn close(mut self) -> Result<()> {
        let committed = self.commit();
        self.consumer.unsubscribe();
        // Unsubscribing revokes the partitions in the next poll's callbacks.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.member.assignment().assigned.is_empty() && Instant::now() < deadline {
            let _ = self.consumer.poll(Duration::from_millis(100));
        }
        self.stop_standbys.store(true, Ordering::SeqCst);
        let closed = self.member.runtime.block_on(self.member.manager.close());
        committed.and(closed)
    }

    fn process<F>(&self, record: &InputRecord<'_>, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&mut TypedKeyValueStore<K, V>, &InputRecord<'_>) -> Result<()>,
    {
        let partition = record.partition;
        if !self.member.assignment().ready.contains(&partition) {
            // Fetched before the pause took hold: read it again once the store is ready.
            self.rewind(partition, record.offset)?;
            return Ok(None);
        }
        let mut store = self.member.manager.try_store(partition).ok_or_else(|| {
            Error::internal(format!(
                "partition {partition} of {} is served but its store is not active",
                self.member.topic
            ))
        })?;
        process(&mut store, record)?;
        drop(store);
        self.member
            .assignment()
            .processed
            .insert(partition, record.offset + 1);
        Ok(Some(partition))
    }

    fn rewind(&self, partition: Partition, offset: Offset) -> Result<()> {
        let topic = &self.member.topic;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, KafkaOffset::Offset(offset))
            .map_err(|err| kafka_error("rewinding", At::offset(topic, partition, offset), err))?;
        self.consumer
            .pause(&list)
            .map_err(|err| kafka_error("pausing", At::partition(topic, partition), err))?;
        self.consumer
            .seek_partitions(list, Duration::from_secs(10))
            .map(|_| ())
            .map_err(|err| kafka_error("rewinding", At::offset(topic, partition, offset), err))
    }

    /// Resumes partitions whose restore finished in their current assignment.
    fn resume_restored(&mut self) -> Result<()> {
        while let Ok(restored) = self.restored.try_recv() {
            let Restored {
                partition,
                generation,
                result,
            } = restored;
            let current = {
                let assignment = self.member.assignment();
                assignment.generations.get(&partition) == Some(&generation)
                    && assignment.assigned.contains(&partition)
            };
            if !current {
                continue;
            }
            let summary = result.map_err(|err| {
                err.context(format!(
                    "restoring partition {partition} of {}",
                    self.member.topic
                ))
            })?;
            let mut list = TopicPartitionList::new();
            list.add_partition(&self.member.topic, partition);
            self.consumer.resume(&list).map_err(|err| {
                kafka_error(
                    "resuming",
                    At::partition(&self.member.topic, partition),
                    err,
                )
            })?;
            self.member.assignment().ready.insert(partition);
            self.member.listener.on_ready(partition, summary.as_ref());
        }
        Ok(())
    }
}

impl<K: 'static, V: 'static> Drop for StatefulConsumer<K, V> {
    fn drop(&mut self) {
        self.stop_standbys.store(true, Ordering::SeqCst);
    }
}

/// Fails unless `topic` has exactly `expected` partitions: stores are per partition and
/// the changelog has as many partitions as the input.
fn check_partitions<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    expected: i32,
    timeout: Duration,
) -> Result<()> {
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|err| kafka_error("reading input topic metadata", At::topic(topic), err))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().len());
    match found {
        Some(n) if i32::try_from(n) == Ok(expected) => Ok(()),
        Some(n) => Err(Error::invalid_input(format!(
            "input topic {topic} has {n} partitions but the store context says {expected}"
        ))),
        None => Err(Error::new(
            ErrorKind::NotFound,
            format!("input topic {topic} does not exist"),
        )),
    }
}

/// Keeps standbys tailing their changelogs until `stop` is set.
fn spawn_standby_updates<K: 'static, V: 'static>(
    member: &Arc<Member<K, V>>,
    stop: Arc<AtomicBool>,
) {
    let (member, manager) = (member.clone(), member.manager.clone());
    member.runtime.clone().spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let paused = !member.standby_updates.load(Ordering::SeqCst);
            if paused || manager.partitions_in(PartitionRole::Standby).is_empty() {
                // Nothing to tail: an idle wait, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let started = Instant::now();
            let round = member.standby_round.lock().await;
            if !member.standby_updates.load(Ordering::SeqCst) {
                continue;
            }
            let updated = manager.update_standbys().await;
            drop(round);
            match updated {
                // Busy standbys (being promoted or opened) or failing ones return at
                // once; an idle one waits out the reader's poll timeout instead.
                Ok(0) if started.elapsed() < Duration::from_millis(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => {}
                Err(err) => {
                    log::warn!("updating standbys: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}
