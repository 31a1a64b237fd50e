//! A consumer-group member whose partitions carry their stores with them: a
//! [`StoreManager`] (every store of the instance) wired to a Kafka consumer's rebalance
//! callbacks, so adding or removing an instance moves partitions — and their state — for
//! real.
//!
//! The consumer speaks one of two group protocols, picked once from its
//! [`StandbyPolicy`] when it is built (`protocol/`):
//! - **Cooperative** (`None`, `AllUnowned`): librdkafka's cooperative-sticky assignor
//!   picks the owners and only the partitions that move pause.
//! - **Planned** (`Replicas(k)`): statestore's own plan puts each partition where its
//!   warm standby is, and each member assigns itself the plan's partitions after an
//!   eager rebalance that serves as a barrier.
//!
//! The processing loop is the caller's: [`StatefulConsumer::poll`] hands one input
//! record at a time to a closure together with its partition's stores
//! ([`ActivePartition`]), and commits every commit interval.
//!
//! ## Guarantees
//! Every store of every partition writes through one producer, the consumer's own
//! changelog sink, and a commit is one [`StoreManager::commit`]: the sink commits every
//! store's changes with the input offsets processed into them, then each store writes
//! its changes with its position.
//! - At-least-once: the changelogs are flushed, then the input offsets committed; a
//!   crash in between replays input into restored state, so updates should be
//!   idempotent or tolerate repeats.
//! - Exactly-once (Kafka Streams' exactly-once v2, KIP-447): one transactional producer
//!   per consumer (transactional id `<application.id>-<instance id>`); each commit is
//!   one transaction holding every store's changelog records and the input offsets,
//!   sent with the group's metadata so a member of an older generation is fenced. Input
//!   is read `read_committed`. A new owner waits until the input offsets of a partition
//!   are stable (the previous owner's last transaction completed, or aborted when a dead
//!   one's `transaction.timeout.ms` ran out) before it restores the partition.

mod assignment;
mod config;
mod context;
mod directory;
mod events;
mod handover;
mod member;
mod placement;
mod protocol;
mod settings;
mod updater;
mod view;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};
use state_core::{
    ActivePartition, Error, ErrorKind, Offset, Partition, Result, SinkOptions, SourceCommit,
    StoreManager,
};
use tokio::runtime::Handle;

pub use config::{GroupConfig, StandbyPolicy};
pub use context::GroupContext;
pub use directory::{GroupDirectory, GroupMember, GroupView};
pub use events::{GroupListener, NoopGroupListener};
use member::Member;
use protocol::GroupProtocol;

use crate::error::{At, kafka_error};
use crate::input::ConsumerInput;
use crate::sink::{DEFAULT_TRANSACTION_TIMEOUT, KafkaSink};

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
pub struct StatefulConsumer {
    // Declared first so it drops (leaving the group, committing revoked stores) while
    // the rest is still alive.
    consumer: Arc<BaseConsumer<GroupContext>>,
    member: Arc<Member>,
    commit_interval: Duration,
    last_commit: Instant,
    refused_commits: u64,
    stop_standbys: Arc<AtomicBool>,
    directory: Arc<GroupDirectory>,
    /// Has a `group.instance.id`: closing keeps its place in the group.
    static_member: bool,
}

impl StatefulConsumer {
    /// Joins `config`'s group and subscribes to its input topic. Every partition gets
    /// each store of `manager`, restored on `runtime`; `listener` hears partitions move.
    /// Every store logs through one producer this consumer makes (transactional under
    /// exactly-once, which fences an earlier instance with the same instance id).
    /// Blocks on a metadata request and, under exactly-once, on the producer's
    /// initialisation: call it off the runtime, like [`poll`](Self::poll).
    ///
    /// The manager must have at least one store and no changelog sink of its own yet.
    pub fn new(
        config: &GroupConfig,
        manager: Arc<StoreManager>,
        runtime: Handle,
        listener: Arc<dyn GroupListener>,
    ) -> Result<Self> {
        check_can_build(&manager)?;
        if let Some(endpoint) = &config.endpoint {
            settings::check_endpoint(endpoint)?;
        }
        let directory = Arc::new(GroupDirectory::new(
            config,
            manager.context().num_partitions(),
        )?);
        let topic = config.input_topic.as_str();
        let instance = settings::instance_id(config);
        let protocol = protocol::pick(config, &settings::identity(config, &instance))?;
        let keeps_standbys = protocol.keeps_standbys();
        let member = Arc::new(Member::new(
            manager.clone(),
            runtime.clone(),
            topic,
            listener,
        ));
        let consumer = group_consumer(config, &instance, &member, protocol)?;
        let sink = runtime.block_on(member_sink(config, &manager, &instance, &consumer))?;
        manager.use_sink(Arc::new(sink))?;
        consumer
            .subscribe(&[topic])
            .map_err(|err| kafka_error("subscribing", At::topic(topic), err))?;
        let stop_standbys = Arc::new(AtomicBool::new(false));
        if keeps_standbys {
            updater::spawn(&member, stop_standbys.clone());
        }
        Ok(Self {
            consumer,
            member,
            commit_interval: config.commit_interval,
            last_commit: Instant::now(),
            refused_commits: 0,
            stop_standbys,
            directory,
            static_member: config.instance_id.is_some(),
        })
    }

    /// Serves the group for up to `timeout`: runs rebalance callbacks, resumes partitions
    /// whose restore finished, hands at most one record to `process` with its partition's
    /// stores, and commits when the commit interval has passed. Returns the partition of
    /// the record processed, if any.
    ///
    /// An error from `process` is returned before the record counts as processed, so it
    /// is consumed again after a restart; the caller decides whether to go on.
    pub fn poll<F>(&mut self, timeout: Duration, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&InputRecord<'_>, &ActivePartition) -> Result<()>,
    {
        if Handle::try_current().is_ok() {
            return Err(Error::invalid_input(
                "StatefulConsumer::poll must run on a plain thread, not inside an async runtime \
                 (rebalance callbacks block on the runtime)",
            ));
        }
        self.resume_ready()?;
        // A restore finishing does not wake the consumer: while one runs, poll briefly
        // so its partition is resumed soon after it is ready.
        let wait = if self.member.manager.is_restoring() {
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
        if let Some(error) = self.member.take_error() {
            return Err(error);
        }
        if self.last_commit.elapsed() >= self.commit_interval {
            self.commit()?;
        }
        Ok(processed)
    }

    /// Commits every store and the input offsets processed into them (see the
    /// [module docs](self)).
    ///
    /// A commit the group refuses because it is rebalancing is not an error (Kafka
    /// Streams skips such a commit too): at-least-once the stores are committed and the
    /// offsets wait for the next commit (or the next owner replays from the previous
    /// one); exactly-once the transaction was aborted, and the stores append their
    /// changes again in the next one. Either way it counts in
    /// [`refused_commits`](Self::refused_commits).
    pub fn commit(&mut self) -> Result<()> {
        self.last_commit = Instant::now();
        match self.member.runtime.block_on(self.member.manager.commit()) {
            Ok(committed) if committed.source == SourceCommit::Refused => {
                self.refused_commits += 1;
            }
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::Rebalancing => {
                log::info!("commit refused while the group rebalances, retried next: {err}");
                self.refused_commits += 1;
            }
            Err(err) => return Err(err),
        }
        Ok(())
    }

    /// Commits the group refused because it was rebalancing (see
    /// [`commit`](Self::commit)).
    pub fn refused_commits(&self) -> u64 {
        self.refused_commits
    }

    /// Partitions served here now (restored).
    pub fn ready_partitions(&self) -> BTreeSet<Partition> {
        self.member.manager.served().into_iter().collect()
    }

    /// Partitions assigned here (restoring or served).
    pub fn assigned_partitions(&self) -> BTreeSet<Partition> {
        self.member.manager.owned().into_iter().collect()
    }

    /// Who serves which partition in this consumer's group, and where: what routes a
    /// query for a key to the instance that has it.
    pub fn directory(&self) -> &Arc<GroupDirectory> {
        &self.directory
    }

    /// The store manager this consumer drives.
    pub fn manager(&self) -> &Arc<StoreManager> {
        &self.member.manager
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
            while !self.member.manager.owned().is_empty() && Instant::now() < deadline {
                let _ = self.consumer.poll(Duration::from_millis(100));
            }
        }
        self.stop_standbys.store(true, Ordering::SeqCst);
        let closed = self.member.runtime.block_on(self.member.manager.close());
        committed.and(closed)
    }

    fn process<F>(&self, record: &InputRecord<'_>, process: F) -> Result<Option<Partition>>
    where
        F: FnOnce(&InputRecord<'_>, &ActivePartition) -> Result<()>,
    {
        let partition = record.partition;
        let manager = &self.member.manager;
        // Free at once but for a store a caller holds from another thread.
        let active = manager
            .try_active(partition)
            .or_else(|| self.member.runtime.block_on(manager.active(partition)));
        let Some(mut active) = active else {
            // Fetched before the pause took hold: read it again once the stores are ready.
            self.rewind(partition, record.offset)?;
            return Ok(None);
        };
        process(record, &active)?;
        active.record_processed(record.offset + 1);
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
    fn resume_ready(&mut self) -> Result<()> {
        for ready in self.member.manager.take_ready() {
            let partition = ready.partition;
            let restores = ready.restores.map_err(|err| {
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
            self.member.listener.on_ready(partition, &restores);
        }
        Ok(())
    }
}

impl Drop for StatefulConsumer {
    fn drop(&mut self) {
        self.stop_standbys.store(true, Ordering::SeqCst);
    }
}

/// Fails unless a consumer can be built here for `manager`: off any async runtime (it
/// blocks on one), with at least one store.
fn check_can_build(manager: &StoreManager) -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::invalid_input(
            "StatefulConsumer::new must run on a plain thread, not inside an async runtime \
             (it blocks on the runtime to initialise its producer)",
        ));
    }
    if manager.store_names().is_empty() {
        return Err(Error::invalid_input(
            "a StatefulConsumer needs a store manager with at least one store",
        ));
    }
    Ok(())
}

/// The consumer of `member` in `config`'s group, speaking `protocol`, once its input
/// topic is found to have a partition per store partition.
fn group_consumer(
    config: &GroupConfig,
    instance: &str,
    member: &Arc<Member>,
    protocol: Box<dyn GroupProtocol>,
) -> Result<Arc<BaseConsumer<GroupContext>>> {
    let topic = config.input_topic.as_str();
    let guarantee = member.manager.context().guarantee();
    let client = settings::consumer(config, instance, guarantee, protocol.as_ref());
    let context = GroupContext {
        member: member.clone(),
        protocol,
    };
    let consumer = client
        .create_with_context(context)
        .map_err(|err| kafka_error("creating the group consumer", At::topic(topic), err))?;
    check_partitions(
        &consumer,
        topic,
        member.partitions,
        config.kafka.metadata_timeout,
    )?;
    Ok(Arc::new(consumer))
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

/// The one producer every store of instance `instance` logs through, committing the
/// input offsets `consumer` processed (transactional under exactly-once, which fences an
/// earlier instance with the same instance id).
async fn member_sink(
    config: &GroupConfig,
    manager: &StoreManager,
    instance: &str,
    consumer: &Arc<BaseConsumer<GroupContext>>,
) -> Result<KafkaSink> {
    let context = manager.context();
    let options = SinkOptions::new(
        context.guarantee(),
        format!("{}-{instance}", context.application_id()),
    );
    let input = Arc::new(ConsumerInput::member(&config.input_topic, consumer));
    let transaction_timeout = DEFAULT_TRANSACTION_TIMEOUT.max(config.commit_interval * 2);
    KafkaSink::create(&config.kafka, &options, Some(input), transaction_timeout).await
}
