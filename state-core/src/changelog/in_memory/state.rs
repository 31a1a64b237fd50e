//! The shared state behind one `InMemoryChangelog`: topics, producers, transactions.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::log::{PartitionLog, TxnId};
use crate::changelog::TopicSpec;
use crate::{Error, ErrorKind, Partition, Result};

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
    /// The open transaction and the topic it writes to.
    pub(super) open_txn: Option<(TxnId, String)>,
}

/// Everything behind the changelog's one lock.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) topics: HashMap<String, Topic>,
    pub(super) producers: HashMap<String, Producer>,
    pub(super) txns: HashMap<TxnId, TxnStatus>,
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
            });
        producer.epoch += 1;
        producer.epoch
    }

    /// Fails with `Fenced` unless `epoch` is still the current one of `transactional_id`.
    pub(super) fn check_epoch(
        &self,
        transactional_id: &str,
        epoch: u64,
        topic: &str,
    ) -> Result<()> {
        let current = self.producers.get(transactional_id).map(|p| p.epoch);
        if current == Some(epoch) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Fenced,
            format!(
                "sink of topic {topic} with transactional id {transactional_id} (epoch {epoch}) \
                 was fenced: a newer producer (epoch {}) took over or its transaction timed out",
                current.unwrap_or(0)
            ),
        ))
    }

    /// The open transaction of `transactional_id`, if any.
    pub(super) fn open_txn(&self, transactional_id: &str) -> Option<TxnId> {
        self.producers
            .get(transactional_id)
            .and_then(|producer| producer.open_txn.as_ref())
            .map(|(txn, _)| *txn)
    }

    /// Opens a transaction for `transactional_id` on `topic`.
    pub(super) fn begin_txn(&mut self, transactional_id: &str, topic: &str) -> TxnId {
        self.next_txn += 1;
        let txn = self.next_txn;
        self.txns.insert(txn, TxnStatus::Open);
        if let Some(producer) = self.producers.get_mut(transactional_id) {
            producer.open_txn = Some((txn, topic.to_owned()));
        }
        txn
    }

    /// Ends the open transaction of `transactional_id` (if any) with COMMIT or ABORT
    /// markers in every partition it wrote to.
    pub(super) fn end_producer_txn(&mut self, transactional_id: &str, commit: bool) {
        let Some((txn, topic)) = self
            .producers
            .get_mut(transactional_id)
            .and_then(|producer| producer.open_txn.take())
        else {
            return;
        };
        // A recreated topic has fresh partitions that never saw the transaction, so no
        // marker lands there; that is what `end_txn` checks.
        if let Some(topic) = self.topics.get_mut(&topic) {
            for log in &mut topic.partitions {
                log.end_txn(txn, commit);
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
