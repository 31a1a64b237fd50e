//! The world one model scenario runs in: two logged stores sharing one sink, their
//! models, the input offset, and the checks after every recovery (see `model`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    Changelog, ChangelogReader, ChangelogSink, InputBinding, KeyRange, KeyValueStore, LoggedStore,
    NoopRestoreListener, Offset, Partition, ProcessingGuarantee, RestoreOptions, SinkOptions,
    SourceOffsets, TopicSpec, WriteBatch, commit_together, restore,
};
use test_support::try_eventually;

use crate::changelogs::{ChangelogUnderTest, OffsetsReader};
use crate::crash_points::{FailingPositionWrite, FailingReader};
use crate::harness::{BackendFactory, Fixture, block_on, contents, replay};
use crate::model::Op;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The input partition whose offsets every commit carries.
const INPUT_PARTITION: Partition = 0;

fn key(k: u8) -> Vec<u8> {
    // A small key space so operations collide; 0xFF keeps the top of the byte range hot.
    vec![b'k', if k % 13 == 12 { 0xFF } else { k % 13 }]
}

fn options() -> RestoreOptions {
    RestoreOptions {
        batch_size: Some(3),
        ..RestoreOptions::default()
    }
}

fn fail(err: state_core::Error) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// One store: logs to partition `partition` of the changelog topic.
struct Store {
    partition: Partition,
    fixture: Fixture,
    logged: Option<LoggedStore>,
    switch: Option<Arc<FailingPositionWrite>>,
    /// The state every committed operation produced.
    committed: Model,
    /// `committed` plus the uncommitted operations, as reads must see it.
    live: Model,
    /// Uncommitted mutations in order, each with the model state after it.
    uncommitted: Vec<Model>,
}

impl Store {
    fn logged(&self) -> &LoggedStore {
        self.logged
            .as_ref()
            .unwrap_or_else(|| unreachable!("store is running between steps"))
    }

    fn stored(&self) -> Model {
        contents(self.logged().inner().as_ref())
            .into_iter()
            .collect()
    }
}

pub(crate) struct World {
    guarantee: ProcessingGuarantee,
    changelog: Arc<dyn Changelog>,
    /// The fault and admin knobs, when the changelog is the in-process one.
    faults: Option<InMemoryChangelog>,
    topic: String,
    /// One reader for the whole case: a Kafka consumer per read would dominate the run.
    reader: Arc<dyn ChangelogReader>,
    committed_offsets: OffsetsReader,
    input: InputBinding,
    sink: Option<Arc<dyn ChangelogSink>>,
    stores: Vec<Store>,
    /// Input records processed (one per mutating operation).
    consumed: Offset,
    /// The input offset of the last successful commit.
    committed_input: Option<Offset>,
    /// A failed commit is awaiting its retry (restore-again would race it).
    retry_pending: bool,
}

impl World {
    pub(crate) fn new(
        backend: &dyn BackendFactory,
        guarantee: ProcessingGuarantee,
        cut: ChangelogUnderTest,
    ) -> Result<Self, TestCaseError> {
        let spec = TopicSpec::changelog(&cut.topic, 2, &BTreeMap::new());
        block_on(cut.changelog.ensure_topic(&spec)).map_err(fail)?;
        let reader =
            block_on(cut.changelog.reader(&cut.topic, guarantee.isolation())).map_err(fail)?;
        let stores = ["model-a", "model-b"]
            .into_iter()
            .zip(0..)
            .map(|(name, partition)| Store {
                partition,
                fixture: Fixture::new(backend, name),
                logged: None,
                switch: None,
                committed: Model::new(),
                live: Model::new(),
                uncommitted: Vec::new(),
            })
            .collect();
        // The changelog topic doubles as the input topic: offsets are numbers per group,
        // topic and partition, and it exists already (a broker refuses offsets of a
        // topic it does not have).
        let input = InputBinding::new(format!("{}-group", cut.topic), cut.topic.clone());
        let mut world = Self {
            guarantee,
            changelog: cut.changelog,
            faults: cut.faults,
            topic: cut.topic,
            reader,
            committed_offsets: cut.committed_offsets,
            input,
            sink: None,
            stores,
            consumed: 0,
            committed_input: None,
            retry_pending: false,
        };
        world.start()?;
        Ok(world)
    }

    /// Opens both stores, restores them, checks the guarantee, and starts logging.
    pub(crate) fn start(&mut self) -> Result<(), TestCaseError> {
        // As the builder does: the sink first, so a new exactly-once producer fences the
        // dead one and its last transaction is settled before restore reads the end.
        let sink_options = SinkOptions::new(self.guarantee, format!("{}-0", self.topic))
            .with_source(self.input.clone());
        let sink = block_on(self.changelog.sink(&sink_options)).map_err(fail)?;
        for index in 0..self.stores.len() {
            let store = self.stores[index].fixture.open();
            let partition = self.stores[index].partition;
            block_on(restore(
                store.as_ref(),
                self.reader.as_ref(),
                partition,
                &options(),
                &NoopRestoreListener,
            ))
            .map_err(fail)?;
            self.check_recovered(index, store.as_ref())?;
            let switch = FailingPositionWrite::new(store);
            let entry = &mut self.stores[index];
            entry.logged = Some(LoggedStore::new(
                switch.clone(),
                sink.clone(),
                &self.topic,
                partition,
            ));
            entry.switch = Some(switch);
        }
        let committed = (self.committed_offsets)(&self.input).map_err(fail)?;
        prop_assert_eq!(
            committed.get(&INPUT_PARTITION).copied(),
            self.committed_input,
            "the committed input offset is not the last successful commit's"
        );
        // Input resumes where the last commit left it.
        self.consumed = self.committed_input.unwrap_or(0);
        self.sink = Some(sink);
        Ok(())
    }

    pub(crate) fn crash(&mut self) {
        for store in &mut self.stores {
            store.logged = None;
            store.switch = None;
        }
        self.sink = None;
        self.retry_pending = false;
    }

    /// The guarantee for store `index`: recovered == replay(changelog) == model(ops[..k]).
    fn check_recovered(
        &mut self,
        index: usize,
        recovered_store: &dyn KeyValueStore,
    ) -> Result<(), TestCaseError> {
        let store = &mut self.stores[index];
        let recovered: Model = contents(recovered_store).into_iter().collect();
        let replayed = replay(self.reader.as_ref(), store.partition).map_err(fail)?;
        prop_assert_eq!(
            &recovered,
            &replayed,
            "store {}: recovered state differs from a replay of the changelog",
            index
        );
        match self.guarantee {
            ProcessingGuarantee::ExactlyOnce => {
                prop_assert_eq!(
                    &recovered,
                    &store.committed,
                    "store {}: exactly-once: recovered != state at last commit",
                    index
                );
            }
            ProcessingGuarantee::AtLeastOnce => {
                let prefix = std::iter::once(&store.committed)
                    .chain(store.uncommitted.iter())
                    .position(|state| *state == recovered);
                prop_assert!(
                    prefix.is_some(),
                    "store {}: at-least-once: recovered {:?} is no prefix state of the operations (committed {:?}, {} uncommitted)",
                    index,
                    recovered,
                    store.committed,
                    store.uncommitted.len()
                );
            }
        }
        store.committed = recovered.clone();
        store.live = recovered;
        store.uncommitted.clear();
        Ok(())
    }

    fn store(&self, s: u8) -> &Store {
        &self.stores[usize::from(s) % self.stores.len()]
    }

    fn store_mut(&mut self, s: u8) -> &mut Store {
        let count = self.stores.len();
        &mut self.stores[usize::from(s) % count]
    }

    fn uncommitted(&self) -> usize {
        self.stores.iter().map(|s| s.logged().uncommitted()).sum()
    }

    pub(crate) fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Put(s, k, v) => {
                self.store(*s).logged().put(&key(*k), &[*v]).map_err(fail)?;
                let store = self.store_mut(*s);
                store.live.insert(key(*k), vec![*v]);
                store.uncommitted.push(store.live.clone());
                self.consumed += 1;
            }
            Op::Delete(s, k) => {
                let old = self.store(*s).logged().delete(&key(*k)).map_err(fail)?;
                let store = self.store_mut(*s);
                prop_assert_eq!(old, store.live.remove(&key(*k)));
                store.uncommitted.push(store.live.clone());
                self.consumed += 1;
            }
            Op::PutIfAbsent(s, k, v) => {
                let existing = self
                    .store(*s)
                    .logged()
                    .put_if_absent(&key(*k), &[*v])
                    .map_err(fail)?;
                let store = self.store_mut(*s);
                prop_assert_eq!(&existing, &store.live.get(&key(*k)).cloned());
                if existing.is_none() {
                    store.live.insert(key(*k), vec![*v]);
                    store.uncommitted.push(store.live.clone());
                }
                self.consumed += 1;
            }
            Op::Batch(s, ops) => {
                let mut batch = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => batch.put(key(*k), vec![*v]),
                        None => batch.delete(key(*k)),
                    };
                }
                self.store(*s).logged().write(&batch).map_err(fail)?;
                // Each logged record is its own step of the changelog, so each is a
                // possible at-least-once prefix point.
                let store = self.store_mut(*s);
                for (k, v) in ops {
                    match v {
                        Some(v) => store.live.insert(key(*k), vec![*v]),
                        None => store.live.remove(&key(*k)),
                    };
                    store.uncommitted.push(store.live.clone());
                }
                self.consumed += 1;
            }
            Op::Get(s, k) => {
                let store = self.store(*s);
                prop_assert_eq!(
                    store.logged().get(&key(*k)).map_err(fail)?,
                    store.live.get(&key(*k)).cloned()
                );
            }
            Op::Range(s, a, b) => self.check_range(*s, *a, *b)?,
            Op::Commit => self.commit_ok()?,
            Op::CommitFailingFlush | Op::CommitFailingMidFlush(_) => {
                let Some(faults) = self.faults.clone() else {
                    // A real broker cannot be told to fail one flush; commit normally.
                    return self.commit_ok();
                };
                if self.uncommitted() == 0 || self.retry_pending {
                    return self.commit_ok();
                }
                match op {
                    Op::CommitFailingMidFlush(n) => {
                        faults.fail_flush_after(&self.topic, usize::from(*n))
                    }
                    _ => faults.fail_next_flush(&self.topic),
                }
                .map_err(fail)?;
                prop_assert!(
                    self.commit().is_err(),
                    "commit must fail when the flush fails"
                );
                self.retry_pending = true;
                for (index, store) in self.stores.iter().enumerate() {
                    prop_assert_eq!(
                        &store.stored(),
                        &store.committed,
                        "store {}: a failed commit changed the store",
                        index
                    );
                }
            }
            Op::CommitCrashBeforeStoreWrite | Op::CommitCrashBetweenStoreWrites => {
                if self.uncommitted() == 0 {
                    return self.commit_ok();
                }
                let armed: &[usize] = match op {
                    Op::CommitCrashBeforeStoreWrite => &[0, 1],
                    _ => &[1],
                };
                // A store with nothing to write does not write, so only those with
                // changes hit their crash point.
                let writing: Vec<usize> = armed
                    .iter()
                    .copied()
                    .filter(|&i| self.stores[i].logged().uncommitted() > 0)
                    .collect();
                for &index in armed {
                    if let Some(switch) = &self.stores[index].switch {
                        switch.arm();
                    }
                }
                let outcome = self.commit();
                let stores = outcome.map_err(fail)?;
                for &index in &writing {
                    prop_assert!(
                        stores[index].is_err(),
                        "store {}: the injected crash must fail its write after the sink committed",
                        index
                    );
                }
                // The changelog side committed, so recovery must hold every operation.
                for store in &mut self.stores {
                    store.committed = store.live.clone();
                    store.uncommitted.clear();
                }
                self.committed_input = Some(self.consumed);
                self.crash();
                self.start()?;
            }
            Op::Crash => {
                self.crash();
                self.start()?;
            }
            Op::CrashDuringRestore(n) => {
                self.crash();
                let store = self.stores[0].fixture.open();
                let failing = FailingReader::new(self.reader.clone(), usize::from(*n));
                let _ = block_on(restore(
                    store.as_ref(),
                    &failing,
                    self.stores[0].partition,
                    &options(),
                    &NoopRestoreListener,
                ));
                drop(store);
                self.start()?;
            }
            Op::Compact => {
                if let Some(faults) = &self.faults {
                    for store in &self.stores {
                        faults.compact(&self.topic, store.partition).map_err(fail)?;
                    }
                }
            }
            Op::RestoreAgain => {
                if self.uncommitted() > 0 || self.retry_pending {
                    return Ok(());
                }
                for store in &self.stores {
                    let inner = store.logged().inner().clone();
                    let summary = block_on(restore(
                        inner.as_ref(),
                        self.reader.as_ref(),
                        store.partition,
                        &options(),
                        &NoopRestoreListener,
                    ))
                    .map_err(fail)?;
                    prop_assert_eq!(
                        summary.restored,
                        0,
                        "restoring an up-to-date store replayed records"
                    );
                    prop_assert!(summary.wiped.is_none());
                }
            }
        }
        Ok(())
    }

    fn check_range(&self, s: u8, a: u8, b: u8) -> Result<(), TestCaseError> {
        let store = self.store(s);
        let (a, b) = (key(a), key(b));
        let range = KeyRange::inclusive(a.clone(), b.clone());
        let expected: Vec<_> = if a <= b {
            store
                .live
                .range(a..=b)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let forward: Vec<_> = store
            .logged()
            .range(&range)
            .and_then(|i| i.collect())
            .map_err(fail)?;
        prop_assert_eq!(&forward, &expected);
        let mut backward: Vec<_> = store
            .logged()
            .reverse_range(&range)
            .and_then(|i| i.collect())
            .map_err(fail)?;
        backward.reverse();
        prop_assert_eq!(&backward, &expected);
        Ok(())
    }

    /// One commit of both stores and the input offset; each store's write result.
    fn commit(&mut self) -> state_core::Result<Vec<state_core::Result<state_core::CommitSummary>>> {
        let sink = self
            .sink
            .clone()
            .unwrap_or_else(|| unreachable!("a sink is running between steps"));
        let source: SourceOffsets = (self.committed_input != Some(self.consumed))
            .then_some((INPUT_PARTITION, self.consumed))
            .into_iter()
            .collect();
        let mut stores: Vec<&mut LoggedStore> = self
            .stores
            .iter_mut()
            .filter_map(|store| store.logged.as_mut())
            .collect();
        let joint = block_on(commit_together(sink.as_ref(), &mut stores, &source))?;
        Ok(joint.stores)
    }

    fn commit_ok(&mut self) -> Result<(), TestCaseError> {
        let results = self.commit().map_err(fail)?;
        for result in results {
            result.map_err(fail)?;
        }
        self.retry_pending = false;
        self.committed_input = Some(self.consumed);
        for (index, store) in self.stores.iter_mut().enumerate() {
            store.committed = store.live.clone();
            store.uncommitted.clear();
            let stored = store.stored();
            prop_assert_eq!(
                &stored,
                &store.committed,
                "store {} after commit != model",
                index
            );
        }
        for store in &self.stores {
            let Some(applied) = store
                .logged()
                .inner()
                .position()
                .map_err(fail)?
                .applied(store.partition)
            else {
                continue;
            };
            // Kafka writes transaction markers after commit returns, so a read-committed
            // end offset may trail the commit briefly; it must catch up. A reader error
            // ends the wait and fails the case.
            try_eventually(
                Duration::from_secs(10),
                &format!("the log end passing the committed position {applied}"),
                || match block_on(self.reader.offsets(store.partition)) {
                    Ok(offsets) if applied < offsets.end => Ok(Ok(())),
                    Ok(offsets) => Err(format!("log end {}", offsets.end)),
                    Err(err) => Ok(Err(err)),
                },
            )
            .map_err(|timed_out| TestCaseError::fail(timed_out.to_string()))?
            .map_err(fail)?;
        }
        Ok(())
    }
}
