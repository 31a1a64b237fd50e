//! The write side: a producer that buffers until flush, optionally transactional.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::state::{State, lock};
use crate::changelog::{ChangelogRecord, ChangelogSink, ProcessingGuarantee};
use crate::{Error, Partition, Position, Result};

/// A [`ChangelogSink`] writing to one topic of an
/// [`InMemoryChangelog`](super::InMemoryChangelog).
///
/// [`append`](ChangelogSink::append) only buffers inside the sink; dropping the sink
/// loses the buffer, which is how tests simulate a crash. [`flush`](ChangelogSink::flush)
/// moves the buffer into the log in append order. An exactly-once sink wraps its writes
/// in transactions; a newer sink with the same transactional id fences this one (every
/// call then fails with [`ErrorKind::Fenced`](crate::ErrorKind::Fenced)).
///
/// A failed flush or commit inside a transaction aborts that transaction (ABORT markers
/// for what it had delivered), as a Kafka producer's abortable error would end in an
/// abort; the caller starts a new transaction and writes again.
#[derive(Debug)]
pub struct InMemorySink {
    shared: Arc<Mutex<State>>,
    topic: String,
    guarantee: ProcessingGuarantee,
    /// `(transactional id, epoch)` of an exactly-once sink.
    producer: Option<(String, u64)>,
    /// Lock order: `local` before `shared`, everywhere.
    local: Mutex<Local>,
}

#[derive(Debug)]
struct Local {
    pending: Vec<(Partition, ChangelogRecord)>,
    acked: Position,
    /// The topic generation `acked` refers to.
    generation: u64,
}

impl InMemorySink {
    pub(super) fn new(
        shared: Arc<Mutex<State>>,
        topic: String,
        guarantee: ProcessingGuarantee,
        producer: Option<(String, u64)>,
        generation: u64,
    ) -> Self {
        Self {
            shared,
            topic,
            guarantee,
            producer,
            local: Mutex::new(Local {
                pending: Vec::new(),
                acked: Position::empty(),
                generation,
            }),
        }
    }

    /// Number of appended records not yet flushed.
    pub fn pending(&self) -> usize {
        lock(&self.local).pending.len()
    }

    /// The transactional id, for an exactly-once sink.
    pub fn transactional_id(&self) -> Option<&str> {
        self.producer.as_ref().map(|(id, _)| id.as_str())
    }

    /// Fails with `Fenced` when a newer sink took this one's transactional id over.
    fn check_live(&self, state: &State) -> Result<()> {
        match &self.producer {
            Some((id, epoch)) => state.check_epoch(id, *epoch, &self.topic),
            None => Ok(()),
        }
    }

    /// The transactional id, or an error for an at-least-once sink.
    fn require_transactional(&self, what: &str) -> Result<&str> {
        self.transactional_id().ok_or_else(|| {
            Error::invalid_input(format!(
                "{what} on the at-least-once sink of topic {}: transactions need an \
                 exactly-once sink with a transactional id",
                self.topic
            ))
        })
    }

    /// Moves the pending records into the log, honouring an injected flush fault. On a
    /// fault inside a transaction the transaction is aborted.
    fn deliver(&self, local: &mut Local, state: &mut State) -> Result<()> {
        let txn = self.transactional_id().and_then(|id| state.open_txn(id));
        let pending = std::mem::take(&mut local.pending);
        let total = pending.len();
        let topic = state.topic_mut(&self.topic)?;
        if topic.generation != local.generation {
            local.acked = Position::empty();
            local.generation = topic.generation;
        }
        let fault = topic.faults.flush_fails_after.take();
        let delivered = fault.map_or(total, |n| n.min(total));
        for (partition, record) in pending.into_iter().take(delivered) {
            let offset = topic.partition_mut(partition)?.append_data(record, txn);
            local.acked.set(partition, offset);
        }
        if fault.is_none() {
            return Ok(());
        }
        let mut message = format!(
            "flush to topic {} failed (injected fault): delivered {delivered} of {total} \
             records, the other {} are lost",
            self.topic,
            total - delivered
        );
        if let (Some(id), Some(_)) = (self.transactional_id(), txn) {
            state.abort_producer_txn(id);
            message.push_str("; the open transaction was aborted");
        }
        Err(Error::unavailable(message))
    }
}

#[async_trait]
impl ChangelogSink for InMemorySink {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn guarantee(&self) -> ProcessingGuarantee {
        self.guarantee
    }

    fn append(&self, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        if let Some(id) = self.transactional_id()
            && state.open_txn(id).is_none()
        {
            return Err(Error::invalid_input(format!(
                "append to topic {} partition {partition} outside a transaction on an \
                 exactly-once sink; call begin_transaction first",
                self.topic
            )));
        }
        let topic = state.topic_mut(&self.topic)?;
        topic.partition(partition)?;
        if let Some(left) = &mut topic.faults.appends_left {
            if *left == 0 {
                return Err(Error::unavailable(format!(
                    "append to topic {} partition {partition} failed (injected fault)",
                    self.topic
                )));
            }
            *left -= 1;
        }
        drop(state);
        local.pending.push((partition, record.clone()));
        Ok(())
    }

    async fn flush(&self) -> Result<Position> {
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        self.deliver(&mut local, &mut state)?;
        Ok(local.acked.clone())
    }

    fn acknowledged(&self) -> Position {
        lock(&self.local).acked.clone()
    }

    fn begin_transaction(&self) -> Result<()> {
        let id = self.require_transactional("begin_transaction")?;
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        state.topic(&self.topic)?;
        if state.open_txn(id).is_some() {
            return Err(Error::invalid_input(format!(
                "begin_transaction on topic {} with transactional id {id}: a transaction is \
                 already open",
                self.topic
            )));
        }
        state.begin_txn(id, &self.topic);
        Ok(())
    }

    async fn commit_transaction(&self) -> Result<Position> {
        let id = self.require_transactional("commit_transaction")?;
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        if state.open_txn(id).is_none() {
            return Err(Error::invalid_input(format!(
                "commit_transaction on topic {} with transactional id {id}: no transaction \
                 is open",
                self.topic
            )));
        }
        self.deliver(&mut local, &mut state)?;
        state.end_producer_txn(id, true);
        Ok(local.acked.clone())
    }

    async fn abort_transaction(&self) -> Result<()> {
        let id = self.require_transactional("abort_transaction")?;
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        local.pending.clear();
        state.abort_producer_txn(id);
        Ok(())
    }

    fn in_transaction(&self) -> bool {
        let Some(id) = self.transactional_id() else {
            return false;
        };
        let state = lock(&self.shared);
        self.check_live(&state).is_ok() && state.open_txn(id).is_some()
    }
}
