//! A consumer-group member whose partitions carry their stores with them: store
//! managers ([`StoreManager`](state_core::StoreManager), one per store name) wired to a
//! Kafka consumer's rebalance callbacks, with cooperative-sticky assignment, so adding or
//! removing an instance moves partitions — and their state — for real.
//!
//! The processing loop is the caller's: [`StatefulConsumer::poll`] hands one input
//! record at a time to a closure, which reaches the record's partition in each store
//! with `manager.try_store(record.partition)`, and commits the stores and the input
//! offsets every commit interval (see the guarantees below).
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
mod placement;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    Error, ErrorKind, Offset, Partition, PartitionedStores, ProcessingGuarantee, Result,
};
use tokio::runtime::Handle;

pub use config::{GroupConfig, StandbyPolicy};
pub use context::GroupContext;
use context::OffsetCommit;
pub use events::{GroupListener, NoopGroupListener};
use member::{Assignment, Member, Placement, Restored};

use crate::error::{At, kafka_error};

/// The longest a poll waits while a partition restores.
const RESTORE_CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// How soon [`StandbyPolicy::Replicas`] placement is tried again after a rebalance whose
/// callback found the group still rebalancing (or the description failed).
const PLACEMENT_RETRY: Duration = Duration::from_secs(1);
/// How often placement is recomputed with no rebalance seen: a safety net only, since a
/// cooperative rebalance calls back every member, each of which then places again.
const PLACEMENT_INTERVAL: Duration = Duration::from_secs(30);

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
pub struct StatefulConsumer {
    // Declared first so it drops (leaving the group, committing revoked stores) while
    // the rest is still alive.
    consumer: BaseConsumer<GroupContext>,
    member: Arc<Member>,
    restored: Receiver<Restored>,
    commit_interval: Duration,
    last_commit: Instant,
    refused_commits: u64,
    stop_standbys: Arc<AtomicBool>,
    /// Has a `group.instance.id`: closing keeps its place in the group.
    static_member: bool,
}

impl StatefulConsumer {
    /// Joins `config`'s group and subscribes to its input topic. Every partition gets a
    /// store from each of `stores` (one manager per store name, e.g.
    /// `vec![rewards.clone(), visits.clone()]`), restored on `runtime`; `listener` hears
    /// partitions move. Blocks on a metadata request: call it off the runtime, like
    /// [`poll`](Self::poll).
    ///
    /// The managers must agree on the partition count and the guarantee. Exactly-once
    /// takes a single store: each store has its own changelog transaction, and input
    /// offsets committed in two transactions would not be atomic.
    pub fn new(
        config: &GroupConfig,
        stores: Vec<Arc<dyn PartitionedStores>>,
        runtime: Handle,
        listener: Arc<dyn GroupListener>,
    ) -> Result<Self> {
        let (partitions, guarantee) = check_stores(&stores)?;
        let topic = config.input_topic.as_str();
        // Under exactly-once, input written by transactional producers (another
        // exactly-once processor) counts only once committed.
        let isolation = match guarantee {
            ProcessingGuarantee::ExactlyOnce => "read_committed",
            ProcessingGuarantee::AtLeastOnce => "read_uncommitted",
        };
        let session = config.session_timeout.as_millis().to_string();
        let heartbeat = (config.session_timeout.as_millis() / 3).max(1).to_string();
        let instance = config
            .instance_id
            .clone()
            .unwrap_or_else(random_instance_id);
        let client_id = format!("{}-{instance}", config.kafka.client_id);
        let mut ours = vec![
            ("client.id", client_id.as_str()),
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
        if let Some(id) = &config.instance_id {
            ours.push(("group.instance.id", id.as_str()));
        }
        let client = config.kafka.client_config(&ours, &config.kafka.consumer);
        let describer = config
            .kafka
            .client_config(&[], &config.kafka.consumer)
            .create()
            .map_err(|err| kafka_error("creating the group describer", At::topic(topic), err))?;
        let (sender, restored) = channel();
        let member = Arc::new(Member {
            stores,
            runtime,
            topic: topic.to_owned(),
            partitions,
            standbys: config.standbys,
            listener,
            restored: Mutex::new(sender),
            standby_updates: AtomicBool::new(true),
            standby_round: tokio::sync::Mutex::new(()),
            assignment: Mutex::new(Assignment::default()),
            placement: Placement {
                // The settings may override ours: the group lists the one in effect.
                identity: client.get("client.id").unwrap_or(&client_id).to_owned(),
                group_id: config.group_id.clone(),
                describer,
                timeout: config.kafka.metadata_timeout,
                running: tokio::sync::Mutex::new(()),
                pending: AtomicBool::new(true),
            },
        });
        let consumer: BaseConsumer<GroupContext> = client
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
            static_member: config.instance_id.is_some(),
        })
    }

    /// Serves the group for up to `timeout`: runs rebalance callbacks, resumes partitions
    /// whose restore finished, hands at most one record to `process`, and commits when
    /// the commit interval has passed. Returns the partition of the record processed, if
    /// any. Inside `process`, the record's partition is restored in every store:
    /// `manager.try_store(record.partition)` returns it.
    ///
    /// An error from `process` is returned before the record counts as processed, so it
    /// is consumed again after a restart; the caller decides whether to go on.
    pub fn poll<F>(&mut self, timeout: Duration, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&InputRecord<'_>) -> Result<()>,
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
                self.member.commit().await
            })?;
        } else {
            self.member.runtime.block_on(self.member.commit())?;
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

    /// Commits, revokes (commits and closes) every partition, closes the standbys,
    /// keeping all directories, and leaves the group — except a static member
    /// ([`GroupConfig::instance_id`]), which keeps its place: its partitions wait for it
    /// until `session.timeout.ms` runs out, and an instance that comes back with the same
    /// id within it gets them back without a rebalance. (An unsubscribe would send a
    /// LeaveGroup even for a static member; closing the consumer does not: KIP-345, and
    /// `rd_kafka_cgrp_leave_maybe` in librdkafka.)
    pub fn close(mut self) -> Result<()> {
        let committed = self.commit();
        let deadline = Instant::now() + Duration::from_secs(30);
        if self.static_member {
            // Closing the consumer revokes the partitions in the callbacks that the
            // polls below serve.
            if let Err(err) = self.consumer.close_queue() {
                log::warn!("closing the consumer of {}: {err}", self.member.topic);
            }
            while !self.consumer.closed() && Instant::now() < deadline {
                let _ = self.consumer.poll(Duration::from_millis(100));
            }
        } else {
            self.consumer.unsubscribe();
            // Unsubscribing revokes the partitions in the next poll's callbacks.
            while !self.member.assignment().assigned.is_empty() && Instant::now() < deadline {
                let _ = self.consumer.poll(Duration::from_millis(100));
            }
        }
        self.stop_standbys.store(true, Ordering::SeqCst);
        let closed = self.member.runtime.block_on(self.member.close());
        committed.and(closed)
    }

    fn process<F>(&self, record: &InputRecord<'_>, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&InputRecord<'_>) -> Result<()>,
    {
        let partition = record.partition;
        if !self.member.assignment().ready.contains(&partition) {
            // Fetched before the pause took hold: read it again once the stores are ready.
            self.rewind(partition, record.offset)?;
            return Ok(None);
        }
        process(record)?;
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
            self.member.listener.on_ready(partition, &summary);
        }
        Ok(())
    }
}

impl Drop for StatefulConsumer {
    fn drop(&mut self) {
        self.stop_standbys.store(true, Ordering::SeqCst);
    }
}

/// The partition count and guarantee `stores` agree on.
fn check_stores(stores: &[Arc<dyn PartitionedStores>]) -> Result<(i32, ProcessingGuarantee)> {
    let first = stores.first().ok_or_else(|| {
        Error::invalid_input("a StatefulConsumer needs at least one store manager")
    })?;
    let (partitions, guarantee) = (
        first.context().num_partitions(),
        first.context().guarantee(),
    );
    for store in stores {
        if store.context().num_partitions() != partitions
            || store.context().guarantee() != guarantee
        {
            return Err(Error::invalid_input(format!(
                "stores {} and {} disagree on the partition count or the guarantee",
                first.store_name(),
                store.store_name()
            )));
        }
    }
    if guarantee == ProcessingGuarantee::ExactlyOnce && stores.len() > 1 {
        return Err(Error::unsupported(format!(
            "exactly-once with {} stores: each store commits its own changelog transaction, \
             so input offsets cannot be committed atomically with all of them",
            stores.len()
        )));
    }
    Ok((partitions, guarantee))
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

/// A random instance id, for a consumer not given one: the process id and 64 random
/// bits (std's hasher keys are drawn from the OS).
fn random_instance_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(std::process::id());
    format!("{:x}-{random:016x}", std::process::id())
}

/// Keeps standbys tailing their changelogs, and under [`StandbyPolicy::Replicas`] places
/// them again while a placement is pending and every [`PLACEMENT_INTERVAL`], until
/// `stop` is set.
fn spawn_standby_updates(member: &Arc<Member>, stop: Arc<AtomicBool>) {
    let member = member.clone();
    member.runtime.clone().spawn(async move {
        let mut placed = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let pending = member.placement.pending.load(Ordering::SeqCst);
            if let StandbyPolicy::Replicas(k) = member.standbys
                && (placed.elapsed() >= PLACEMENT_INTERVAL
                    || (pending && placed.elapsed() >= PLACEMENT_RETRY))
            {
                placed = Instant::now();
                if let Err(err) = member.place_replicas(k).await {
                    log::warn!("placing standbys of {}: {err}", member.topic);
                }
            }
            let paused = !member.standby_updates.load(Ordering::SeqCst);
            if paused || !member.has_standbys() {
                // Nothing to tail: an idle wait, not a synchronisation.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let started = Instant::now();
            let round = member.standby_round.lock().await;
            if !member.standby_updates.load(Ordering::SeqCst) {
                continue;
            }
            let updated = member.update_standbys().await;
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use state_core::{
        Capability, KeyValueBytesStoreSupplier, KeyValueStore, Serdes, StoreBuilder, StoreContext,
        StoreManager,
    };

    use super::*;

    /// A supplier never asked to open anything: these tests only build managers.
    struct Unopened(&'static str);

    impl KeyValueBytesStoreSupplier for Unopened {
        fn name(&self) -> &str {
            self.0
        }
        fn capability(&self) -> Capability {
            Capability::new("unopened")
        }
        fn open(&self, dir: &Path) -> Result<Arc<dyn KeyValueStore>> {
            Err(Error::unsupported(format!("not opening {}", dir.display())))
        }
        fn destroy(&self, _: &Path) -> Result<()> {
            Ok(())
        }
    }

    fn manager(
        name: &'static str,
        partitions: i32,
        guarantee: ProcessingGuarantee,
    ) -> Arc<dyn PartitionedStores> {
        let context = StoreContext::new("app", 0, partitions, "/nonexistent")
            .unwrap()
            .with_guarantee(guarantee);
        Arc::new(StoreManager::new(
            StoreBuilder::new(Unopened(name), Serdes::string(), Serdes::i64()),
            context,
        ))
    }

    #[test]
    fn stores_must_agree_and_exactly_once_takes_one() {
        use ProcessingGuarantee::{AtLeastOnce, ExactlyOnce};
        assert_eq!(
            check_stores(&[]).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let two = [manager("a", 6, AtLeastOnce), manager("b", 6, AtLeastOnce)];
        assert_eq!(check_stores(&two).unwrap(), (6, AtLeastOnce));
        let counts = [manager("a", 6, AtLeastOnce), manager("b", 4, AtLeastOnce)];
        assert_eq!(
            check_stores(&counts).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let mixed = [manager("a", 6, AtLeastOnce), manager("b", 6, ExactlyOnce)];
        assert_eq!(
            check_stores(&mixed).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            check_stores(&[manager("a", 6, ExactlyOnce)]).unwrap(),
            (6, ExactlyOnce)
        );
        let eos = [manager("a", 6, ExactlyOnce), manager("b", 6, ExactlyOnce)];
        assert_eq!(
            check_stores(&eos).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
