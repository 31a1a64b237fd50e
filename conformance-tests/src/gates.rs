//! Gates that hold a restore or a commit at a chosen step until the test lets it go, so
//! a race (revoke during restore, loss during commit) happens for sure, not by timing.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use state_core::{
    ChangelogPositions, ChangelogRecord, ChangelogSink, Offset, Partition, ProcessingGuarantee,
    RestoreListener, RestoreTarget, Result, SinkCommit, SourceOffsets,
};

/// How long a test waits for a gate to be reached, or for what a thread held at one
/// does meanwhile.
pub const REACH_WITHIN: Duration = Duration::from_secs(30);

/// A point a thread stops at while the gate is shut, and reports reaching.
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    shut: bool,
    /// Threads waiting at the gate now.
    waiting: usize,
    /// Times the gate was reached since it was shut.
    reached: usize,
}

impl Gate {
    /// An open gate.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Shuts the gate: the next arrivals wait.
    pub fn shut(&self) {
        let mut state = self.state.lock().unwrap();
        state.shut = true;
        state.reached = 0;
    }

    /// Opens the gate and lets every waiting thread go.
    pub fn open(&self) {
        self.state.lock().unwrap().shut = false;
        self.changed.notify_all();
    }

    /// Blocks until some thread waits at the shut gate.
    pub fn wait_reached(&self) {
        let deadline = Instant::now() + REACH_WITHIN;
        let mut state = self.state.lock().unwrap();
        while state.waiting == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "nobody reached the gate in {REACH_WITHIN:?}"
            );
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Passes the gate: waits while it is shut.
    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        if !state.shut {
            return;
        }
        state.waiting += 1;
        state.reached += 1;
        self.changed.notify_all();
        while state.shut {
            state = self.changed.wait(state).unwrap();
        }
        state.waiting -= 1;
    }
}

/// A restore listener that stops each restore after its first batch while `gate` is shut.
pub struct GatedRestore {
    /// Where restores stop.
    pub gate: Arc<Gate>,
}

impl RestoreListener for GatedRestore {
    fn on_batch_restored(&self, _: RestoreTarget<'_>, _: Offset, _: u64) {
        self.gate.pass();
    }
}

/// A sink whose commits stop while `gate` is shut, before they reach `inner`.
pub struct GatedSink {
    /// The sink doing the work.
    pub inner: Arc<dyn ChangelogSink>,
    /// Where commits stop.
    pub gate: Arc<Gate>,
}

#[async_trait]
impl ChangelogSink for GatedSink {
    fn guarantee(&self) -> ProcessingGuarantee {
        self.inner.guarantee()
    }
    fn append(&self, topic: &str, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        self.inner.append(topic, partition, record)
    }
    async fn commit(&self, source: &SourceOffsets) -> Result<SinkCommit> {
        self.gate.pass();
        self.inner.commit(source).await
    }
    async fn abort(&self) -> Result<()> {
        self.inner.abort().await
    }
    fn acknowledged(&self) -> ChangelogPositions {
        self.inner.acknowledged()
    }
    async fn settle_input(&self, partition: Partition) -> Result<()> {
        self.inner.settle_input(partition).await
    }
}
