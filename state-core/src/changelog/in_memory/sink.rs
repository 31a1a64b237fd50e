//! The write side: a producer for every topic of the changelog, buffering until commit,
//! optionally transactional.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::state::{State, lock};
use crate::changelog::{
    ChangelogPositions, ChangelogRecord, ChangelogSink, InputBinding, ProcessingGuarantee,
    SinkCommit, SourceCommit, SourceOffsets,
};
use crate::{Error, Partition, Result};

/// A [`ChangelogSink`] writing to any topic of an
/// [`InMemoryChangelog`](super::InMemoryChangelog).
///
/// [`append`](ChangelogSink::append) only buffers inside the sink; dropping the sink
/// loses the buffer, which is how tests simulate a crash. A commit moves the buffer into
/// the logs in append order. An exactly-once sink wraps each interval in one transaction
/// across every topic it writes, with the input offsets of its commit; a newer sink with
/// the same transactional id fences this one (every call then fails with
/// [`ErrorKind::Fenced`](crate::ErrorKind::Fenced)). A sink made with an
/// [`InputBinding`] commits input offsets into the changelog's consumer-group offsets
/// ([`committed_offsets`](super::InMemoryChangelog::committed_offsets)).
///
/// A failed commit inside a transaction aborts that transaction (ABORT markers for what
/// it had delivered), as a Kafka producer's abortable error would end in an abort; the
/// caller writes again in the next one.
#[derive(Debug)]
pub struct InMemorySink {
    shared: Arc<Mutex<State>>,
    guarantee: ProcessingGuarantee,
    /// `(transactional id, epoch)` of an exactly-once sink.
    producer: Option<(String, u64)>,
    source: Option<InputBinding>,
    /// Lock order: `local` before `shared`, everywhere.
    local: Mutex<Local>,
}

#[derive(Debug, Default)]
struct Local {
    pending: Vec<(String, Partition, ChangelogRecord)>,
    acked: ChangelogPositions,
    /// `acked` at the last commit, which an abort goes back to.
    committed: ChangelogPositions,
    /// The topic generation `acked` refers to, per topic.
    generations: HashMap<String, u64>,
}

impl InMemorySink {
    pub(super) fn new(
        shared: Arc<Mutex<State>>,
        guarantee: ProcessingGuarantee,
        producer: Option<(String, u64)>,
        source: Option<InputBinding>,
    ) -> Self {
        Self {
            shared,
            guarantee,
            producer,
            source,
            local: Mutex::default(),
        }
    }

    /// Number of appended records not yet delivered.
    pub fn pending(&self) -> usize {
        lock(&self.local).pending.len()
    }

    /// The transactional id, for an exactly-once sink.
    pub fn transactional_id(&self) -> Option<&str> {
        self.producer.as_ref().map(|(id, _)| id.as_str())
    }

    /// Whether a transaction of this sink is open (exactly-once, between the first append
    /// of an interval and its commit or abort).
    pub fn in_transaction(&self) -> bool {
        let Some(id) = self.transactional_id() else {
            return false;
        };
        let state = lock(&self.shared);
        self.check_live(&state).is_ok() && state.open_txn(id).is_some()
    }

    /// Delivers the pending records into the logs now, without committing — as a Kafka
    /// producer sends records as they are produced: inside a transaction they then sit in
    /// the log uncommitted, holding the last stable offset back. Injected flush faults
    /// apply.
    pub fn flush_pending(&self) -> Result<()> {
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        self.deliver(&mut local, &mut state)
    }

    /// Fails with `Fenced` when a newer sink took this one's transactional id over.
    fn check_live(&self, state: &State) -> Result<()> {
        match &self.producer {
            Some((id, epoch)) => state.check_epoch(id, *epoch),
            None => Ok(()),
        }
    }

    /// Moves the pending records into the logs, honouring injected flush faults: a topic
    /// whose next flush fails delivers only its first `n` pending records and loses the
    /// rest (other topics deliver theirs). On a fault inside a transaction the
    /// transaction is aborted.
    fn deliver(&self, local: &mut Local, state: &mut State) -> Result<()> {
        let txn = self.transactional_id().and_then(|id| state.open_txn(id));
        let pending = std::mem::take(&mut local.pending);
        let mut faults: HashMap<String, usize> = HashMap::new();
        for (topic, _, _) in &pending {
            if faults.contains_key(topic) {
                continue;
            }
            let log = state.topic_mut(topic)?;
            if local.generations.get(topic) != Some(&log.generation) {
                local.acked.forget(topic);
                local.committed.forget(topic);
                local.generations.insert(topic.clone(), log.generation);
            }
            faults.insert(
                topic.clone(),
                log.faults.flush_fails_after.take().unwrap_or(usize::MAX),
            );
        }
        let mut lost: Vec<(String, usize, usize)> = Vec::new();
        let mut delivered: HashMap<String, usize> = HashMap::new();
        for (topic, partition, record) in pending {
            let count = delivered.entry(topic.clone()).or_default();
            if *count >= faults.get(&topic).copied().unwrap_or(usize::MAX) {
                match lost.iter_mut().find(|(t, _, _)| *t == topic) {
                    Some((_, _, missing)) => *missing += 1,
                    None => lost.push((topic, *count, 1)),
                }
                continue;
            }
            *count += 1;
            let offset = state
                .topic_mut(&topic)?
                .partition_mut(partition)?
                .append_data(record, txn);
            local.acked.set(&topic, partition, offset);
        }
        let failed: Vec<String> = faults
            .iter()
            .filter(|(_, n)| **n != usize::MAX)
            .map(|(topic, _)| topic.clone())
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        let mut message = format!(
            "flush to topic {} failed (injected fault)",
            failed.join(", ")
        );
        for (topic, kept, missing) in &lost {
            message.push_str(&format!(
                "; topic {topic}: delivered {kept} records, the next {missing} are lost"
            ));
        }
        if let (Some(id), Some(_)) = (self.transactional_id(), txn) {
            state.abort_producer_txn(id);
            local.acked = local.committed.clone();
            message.push_str("; the open transaction was aborted");
        }
        Err(Error::unavailable(message))
    }

    /// The binding input offsets are committed for, or an error when there is none.
    fn bound_source(&self, source: &SourceOffsets) -> Result<Option<&InputBinding>> {
        if source.is_empty() {
            return Ok(None);
        }
        self.source.as_ref().map(Some).ok_or_else(|| {
            Error::invalid_input(
                "input offsets handed to an in-memory sink made without an input binding \
                 (SinkOptions::source): there is no consumer group to commit them for",
            )
        })
    }
}

#[async_trait]
impl ChangelogSink for InMemorySink {
    fn guarantee(&self) -> ProcessingGuarantee {
        self.guarantee
    }

    fn append(&self, topic: &str, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        let log = state.topic_mut(topic)?;
        log.partition(partition)?;
        if let Some(left) = &mut log.faults.appends_left {
            if *left == 0 {
                return Err(Error::unavailable(format!(
                    "append to topic {topic} partition {partition} failed (injected fault)"
                )));
            }
            *left -= 1;
        }
        if let Some(id) = self.transactional_id() {
            state.open_or_begin_txn(id);
        }
        drop(state);
        local
            .pending
            .push((topic.to_owned(), partition, record.clone()));
        Ok(())
    }

    async fn commit(&self, source: &SourceOffsets) -> Result<SinkCommit> {
        let binding = self.bound_source(source)?;
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        let Some(id) = self.transactional_id() else {
            self.deliver(&mut local, &mut state)?;
            local.committed = local.acked.clone();
            let source = match binding {
                Some(binding) => {
                    state.commit_offsets(binding, source);
                    SourceCommit::Committed
                }
                None => SourceCommit::Nothing,
            };
            return Ok(SinkCommit {
                positions: local.acked.clone(),
                source,
            });
        };
        if state.open_txn(id).is_none() && binding.is_none() {
            // Nothing was appended and no offset is due: there is no transaction to commit.
            return Ok(SinkCommit {
                positions: local.acked.clone(),
                source: SourceCommit::Nothing,
            });
        }
        state.open_or_begin_txn(id);
        self.deliver(&mut local, &mut state)?;
        if let Some(binding) = binding {
            state.send_offsets_to_txn(id, binding, source);
        }
        state.end_producer_txn(id, true);
        local.committed = local.acked.clone();
        Ok(SinkCommit {
            positions: local.acked.clone(),
            source: if binding.is_some() {
                SourceCommit::Committed
            } else {
                SourceCommit::Nothing
            },
        })
    }

    async fn abort(&self) -> Result<()> {
        let mut local = lock(&self.local);
        let mut state = lock(&self.shared);
        self.check_live(&state)?;
        match self.transactional_id() {
            Some(id) => {
                local.pending.clear();
                state.abort_producer_txn(id);
                local.acked = local.committed.clone();
                Ok(())
            }
            // Plain records cannot be taken back: what was appended goes out, as a Kafka
            // producer sends what it has queued.
            None => self.deliver(&mut local, &mut state),
        }
    }

    fn acknowledged(&self) -> ChangelogPositions {
        lock(&self.local).acked.clone()
    }
}
