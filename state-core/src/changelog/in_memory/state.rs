//! The shared state behind one `InMemoryChangelog`: topics, producers, transactions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::log::{PartitionLog, TxnId};
use crate::changelog::{InputBinding, SourceOffsets, TopicSpec};
use crate::{Error, ErrorKind, Offset, Partition, Result};

/// Locks `mutex`, recovering from poisoning: library code never panics while holding an
/// in-memory changelog lock, and every update leaves the state consistent.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a transaction ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxnStatus {
    Open,
    Committed,
    Aborted,
}

/// Injected failures for one topic (see the knobs on `InMemoryChangelog`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Faults {
    /// The next flush or commit delivers this many pending records, loses the rest and
    /// fails.
    pub(super) flush_fails_after: Option<usize>,
    /// Appends that may still succeed before every append fails.
    pub(super) appends_left: Option<u64>,
}

/// One topic.
#[derive(Debug)]
pub(super) struct Topic {
    pub(super) spec: TopicSpec,
    /// Bumped by `recreate_topic`, so a sink notices its acknowledged offsets are stale.
    pub(super) generation: u64,
    pub(super) partitions: Vec<PartitionLog>,
    pub(super) faults: Faults,
}

impl Topic {
    pub(super) fn new(spec: TopicSpec, generation: u64) -> Self {
        let count = usize::try_from(spec.partitions).unwrap_or(0);
        Self {
            spec,
            generation,
            partitions: (0..count).map(|_| PartitionLog::default()).collect(),
            faults: Faults::default(),
        }
    }

    /// The log of `partition`, or an `InvalidInput` error naming the topic.
    pub(super) fn partition(&self, partition: Partition) -> Result<&PartitionLog> {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partitions.get(index))
            .ok_or_else(|| self.no_partition(partition))
    }

    /// The log of `partition`, mutably.
    pub(super) fn partition_mut(&mut self, partition: Partition) -> Result<&mut PartitionLog> {
        let error = self.no_partition(partition);
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partitions.get_mut(index))
            .ok_or(error)
    }

    fn no_partition(&self, partition: Partition) -> Error {
        Error::invalid_input(format!(
            "topic {} has no partition {partition} (it has {} partitions)",
            self.spec.name, self.spec.partitions
        ))
    }
}

/// A transactional id's current owner and its open transaction.
#[derive(Debug)]
pub(super) struct Producer {
    /// The epoch of the newest sink with this id; older sinks are fenced.
    pub(super) epoch: u64,
    /// The open transaction; it may write to any topic.
    pub(super) open_txn: Option<TxnId>,
    /// Input offsets sent into the open transaction: committed with it or dropped.
    pub(super) pending_offsets: Vec<(InputBinding, SourceOffsets)>,
}

/// Everything behind the changelog's one lock.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) topics: HashMap<String, Topic>,
    pub(super) producers: HashMap<String, Producer>,
    pub(super) txns: HashMap<TxnId, TxnStatus>,
    /// Committed input offsets per consumer group and input topic, as Kafka's
    /// `__consumer_offsets`.
    pub(super) group_offsets: HashMap<InputBinding, BTreeMap<Partition, Offset>>,
    next_txn: TxnId,
}

impl State {
    /// `topic`, or a `NotFound` error naming it.
    pub(super) fn topic(&self, topic: &str) -> Result<&Topic> {
        self.topics.get(topic).ok_or_else(|| unknown_topic(topic))
    }

    /// `topic` mutably, or a `NotFound` error naming it.
    pub(super) fn topic_mut(&mut self, topic: &str) -> Result<&mut Topic> {
        self.topics
            .get_mut(topic)
            .ok_or_else(|| unknown_topic(topic))
    }

    /// How `txn` stands; a transaction the changelog never saw counts as aborted.
    pub(super) fn txn_status(&self, txn: TxnId) -> TxnStatus {
        self.txns.get(&txn).copied().unwrap_or(TxnStatus::Aborted)
    }

    /// Registers a new sink for `transactional_id`: aborts the previous owner's open
    /// transaction and bumps the epoch, which fences the previous owner. Returns the new
    /// epoch.
    pub(super) fn register_producer(&mut self, transactional_id: &str) -> u64 {
        self.abort_producer_txn(transactional_id);
        let producer = self
            .producers
            .entry(transactional_id.to_owned())
            .or_insert(Producer {
                epoch: 0,
                open_txn: None,
                pending_offsets: Vec::new(),
            });
        producer.epoch += 1;
        producer.epoch
    }

    /// Fails with `Fenced` unless `epoch` is still the current one of `transactional_id`.
    pub(super) fn check_epoch(&self, transactional_id: &str, epoch: u64) -> Result<()> {
        let current = self.producers.get(transactional_id).map(|p| p.epoch);
        if current == Some(epoch) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Fenced,
            format!(
                "sink with transactional id {transactional_id} (epoch {epoch}) was fenced: a \
                 newer producer (epoch {}) took over or its transaction timed out",
                current.unwrap_or(0)
            ),
        ))
    }

    /// The open transaction of `transactional_id`, if any.
    pub(super) fn open_txn(&self, transactional_id: &str) -> Option<TxnId> {
        self.producers
            .get(transactional_id)
            .and_then(|producer| producer.open_txn)
    }

    /// The open transaction of `transactional_id`, opened now if there is none.
    pub(super) fn open_or_begin_txn(&mut self, transactional_id: &str) -> TxnId {
        if let Some(txn) = self.open_txn(transactional_id) {
            return txn;
        }
        self.next_txn += 1;
        let txn = self.next_txn;
        self.txns.insert(txn, TxnStatus::Open);
        if let Some(producer) = self.producers.get_mut(transactional_id) {
            producer.open_txn = Some(txn);
        }
        txn
    }

    /// Adds `offsets` of `input` to the open transaction of `transactional_id`.
    pub(super) fn send_offsets_to_txn(
        &mut self,
        transactional_id: &str,
        input: &InputBinding,
        offsets: &SourceOffsets,
    ) {
        if let Some(producer) = self.producers.get_mut(transactional_id) {
            producer
                .pending_offsets
                .push((input.clone(), offsets.clone()));
        }
    }

    /// Stores `offsets` as the committed input offsets of `input`.
    pub(super) fn commit_offsets(&mut self, input: &InputBinding, offsets: &SourceOffsets) {
        self.group_offsets
            .entry(input.clone())
            .or_default()
            .extend(offsets.iter());
    }

    /// Ends the open transaction of `transactional_id` (if any) with COMMIT or ABORT
    /// markers in every partition of every topic it wrote to; a commit also commits the
    /// input offsets sent into it.
    pub(super) fn end_producer_txn(&mut self, transactional_id: &str, commit: bool) {
        let Some(producer) = self.producers.get_mut(transactional_id) else {
            return;
        };
        let Some(txn) = producer.open_txn.take() else {
            return;
        };
        let offsets = std::mem::take(&mut producer.pending_offsets);
        // A recreated topic has fresh partitions that never saw the transaction, so no
        // marker lands there; that is what `end_txn` checks.
        for topic in self.topics.values_mut() {
            for log in &mut topic.partitions {
                log.end_txn(txn, commit);
            }
        }
        if commit {
            for (input, offsets) in &offsets {
                self.commit_offsets(input, offsets);
            }
        }
        let status = if commit {
            TxnStatus::Committed
        } else {
            TxnStatus::Aborted
        };
        self.txns.insert(txn, status);
    }

    /// Aborts the open transaction of `transactional_id`, if any.
    pub(super) fn abort_producer_txn(&mut self, transactional_id: &str) {
        self.end_producer_txn(transactional_id, false);
    }

    /// Aborts every open transaction and fences its producer, as the coordinator does when
    /// `transaction.timeout.ms` expires. Returns how many transactions were aborted.
    pub(super) fn abort_all_open_txns(&mut self) -> usize {
        let open: Vec<String> = self
            .producers
            .iter()
            .filter(|(_, producer)| producer.open_txn.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &open {
            self.abort_producer_txn(id);
            if let Some(producer) = self.producers.get_mut(id) {
                producer.epoch += 1;
            }
        }
        open.len()
    }
}

fn unknown_topic(topic: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("changelog topic {topic} does not exist in the in-memory changelog"),
    )
}
