//! The snapshot child process: what `snapshot_child` runs, in one of three modes, with
//! its object store wrapped in a [`CrashingStore`] so it can die at a chosen step.
//!
//! - `upload`: writes and commits the kill tests' [`Workload`] through the logging layer;
//!   every `every` commits it checkpoints the store, uploads the checkpoint and runs
//!   retention (`keep`), journaling each commit and each published snapshot; it stops
//!   after `max` snapshots.
//! - `download`: restores the store in its directory from the snapshots and the
//!   changelog (`catch_up`; a file changelog or a Kafka topic), and journals which
//!   snapshot it used.
//! - `retain`: one retention pass.
//!
//! The clock the snapshot store reads jumps `CLOCK_STEP` (more than the retention grace)
//! before each upload, so the retention pass after the third upload really removes
//! manifests and the one after the fourth really deletes files, within a test's
//! seconds; uploads and retention run one after the other, so no jump falls inside an
//! upload's deadline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use snapshot_object_store::{Clock, ObjectSnapshotStore, SnapshotStoreConfig, SystemClock};
use state_core::{
    ChangelogReader, LoggedStore, NoopRestoreListener, ProcessingGuarantee, RestoreOptions,
    SnapshotScope, SnapshotStore, StoreHome, catch_up,
};

use super::crash_store::{CrashPoint, CrashingStore};
use super::journal::{JournalWriter, Published};
use crate::file_log::read_log;
use crate::harness::block_on;
use crate::kill::{KILL_PARTITION, KILL_TOPIC, Workload, changelog_from, open_sink};
use crate::snapshot_place::open_spec;

/// The application the child's snapshots belong to.
pub const APPLICATION: &str = "app";
/// The store the child writes.
pub const STORE: &str = "kill-store";
/// How far the child's clock jumps before each upload: the default retention grace
/// (one hour) and a minute.
pub const CLOCK_STEP: Duration = Duration::from_secs(61 * 60);

/// The scope of the child's snapshots.
pub fn scope() -> SnapshotScope {
    SnapshotScope::new(APPLICATION, STORE, KILL_PARTITION)
}

/// What the child does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write, commit, snapshot, retain.
    Upload,
    /// Restore from the snapshots.
    Download,
    /// One retention pass.
    Retain,
}

/// The child's arguments, passed as `key=value` words.
#[derive(Debug, Clone)]
pub struct ChildArgs {
    /// The mode.
    pub mode: Mode,
    /// The backend's registry name.
    pub backend: String,
    /// The store directory.
    pub store_dir: PathBuf,
    /// `file:PATH` or `kafka:BOOTSTRAP:TOPIC:GUARANTEE` (see `kill::open_sink`).
    pub changelog: String,
    /// The snapshot place (see `snapshot_place::open_spec`).
    pub snapshots: String,
    /// The journal file.
    pub journal: PathBuf,
    /// The workload's seed.
    pub seed: u64,
    /// Where to die.
    pub crash: CrashPoint,
    /// Commits between snapshots (`upload`).
    pub every: u32,
    /// Snapshots before the child stops (`upload`).
    pub max: u32,
    /// Snapshots retention keeps.
    pub keep: usize,
    /// Where the clock starts, past the real time.
    pub clock_offset: Duration,
}

impl ChildArgs {
    /// The arguments as the child takes them.
    pub fn to_args(&self) -> Vec<String> {
        let mode = match self.mode {
            Mode::Upload => "upload",
            Mode::Download => "download",
            Mode::Retain => "retain",
        };
        vec![
            format!("mode={mode}"),
            format!("backend={}", self.backend),
            format!("store={}", self.store_dir.display()),
            format!("changelog={}", self.changelog),
            format!("snapshots={}", self.snapshots),
            format!("journal={}", self.journal.display()),
            format!("seed={}", self.seed),
            format!("crash={}", self.crash),
            format!("every={}", self.every),
            format!("max={}", self.max),
            format!("keep={}", self.keep),
            format!("clock_offset_ms={}", self.clock_offset.as_millis()),
        ]
    }

    /// Parses what [`to_args`](Self::to_args) printed.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let get = |key: &str| -> Result<&str, String> {
            args.iter()
                .find_map(|arg| arg.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("missing {key}=..."))
        };
        let number = |key: &str| -> Result<u64, String> {
            get(key)?.parse().map_err(|err| format!("{key}: {err}"))
        };
        Ok(Self {
            mode: match get("mode")? {
                "upload" => Mode::Upload,
                "download" => Mode::Download,
                "retain" => Mode::Retain,
                other => return Err(format!("unknown mode {other}")),
            },
            backend: get("backend")?.to_owned(),
            store_dir: PathBuf::from(get("store")?),
            changelog: get("changelog")?.to_owned(),
            snapshots: get("snapshots")?.to_owned(),
            journal: PathBuf::from(get("journal")?),
            seed: number("seed")?,
            crash: get("crash")?.parse()?,
            every: u32::try_from(number("every")?).map_err(|err| err.to_string())?,
            max: u32::try_from(number("max")?).map_err(|err| err.to_string())?,
            keep: usize::try_from(number("keep")?).map_err(|err| err.to_string())?,
            clock_offset: Duration::from_millis(number("clock_offset_ms")?),
        })
    }
}

/// The system clock moved on by an offset the child advances.
#[derive(Debug, Default)]
pub struct SteppedClock {
    offset_millis: AtomicU64,
}

impl SteppedClock {
    /// Starting `offset` past the real time.
    pub fn new(offset: Duration) -> Self {
        let clock = Self::default();
        clock.step(offset);
        clock
    }

    /// Moves the clock on by `by`.
    pub fn step(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_millis.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for SteppedClock {
    fn now_millis(&self) -> u64 {
        SystemClock
            .now_millis()
            .saturating_add(self.offset_millis.load(Ordering::SeqCst))
    }
}

type Failure = Box<dyn std::error::Error>;

/// Runs the mode `args` say.
pub fn run(args: &ChildArgs) -> Result<(), Failure> {
    let clock = Arc::new(SteppedClock::new(args.clock_offset));
    let (objects, prefix) = open_spec(&args.snapshots)?;
    let crashing = CrashingStore::new(objects, args.crash, args.journal.clone());
    let config = SnapshotStoreConfig::new("child").with_clock(clock.clone());
    let snapshots = ObjectSnapshotStore::new(Arc::new(crashing), &prefix, config)?;
    let mut journal = JournalWriter::open(&args.journal)?;
    match args.mode {
        Mode::Upload => upload(args, &snapshots, &clock, &mut journal)?,
        Mode::Download => download(args, snapshots, &mut journal)?,
        Mode::Retain => {
            let retained = block_on(snapshots.retain(&scope(), args.keep))?;
            journal.retained(retained.manifests_removed, retained.files_removed)?;
        }
    }
    journal.done()?;
    Ok(())
}

fn upload(
    args: &ChildArgs,
    snapshots: &ObjectSnapshotStore,
    clock: &SteppedClock,
    journal: &mut JournalWriter,
) -> Result<(), Failure> {
    let backend = crate::backend(&args.backend)?;
    let (sink, topic) = open_sink(&args.changelog)?;
    let store = backend.supplier(STORE).open(&args.store_dir)?;
    let mut logged = LoggedStore::new(store, sink, topic, KILL_PARTITION);
    let scratch = args
        .store_dir
        .parent()
        .ok_or("the store directory has no parent")?
        .join("checkpoints");
    let mut workload = Workload::new(args.seed);
    let (mut ops, mut commits, mut published) = (0u64, 0u32, 0u32);
    while published < args.max {
        let (op, commit_after) = workload.next_op();
        op.apply_logged(&logged)?;
        ops += 1;
        if !commit_after {
            continue;
        }
        block_on(logged.commit())?;
        journal.commit(ops)?;
        commits += 1;
        if !commits.is_multiple_of(args.every) {
            continue;
        }
        clock.step(CLOCK_STEP);
        let dir = scratch.join(format!("checkpoint-{commits}"));
        let checkpoint = logged.inner().checkpoint(&dir)?;
        let uploaded = block_on(snapshots.upload(&scope(), &checkpoint))?;
        journal.snapshot(&Published {
            ops,
            position: uploaded.position,
            id: uploaded.id,
        })?;
        std::fs::remove_dir_all(&dir)?;
        let retained = block_on(snapshots.retain(&scope(), args.keep))?;
        journal.retained(retained.manifests_removed, retained.files_removed)?;
        published += 1;
    }
    Ok(())
}

fn download(
    args: &ChildArgs,
    snapshots: ObjectSnapshotStore,
    journal: &mut JournalWriter,
) -> Result<(), Failure> {
    let reader = open_reader(&args.changelog)?;
    let backend = crate::backend(&args.backend)?;
    let supplier = backend.supplier(STORE);
    let home = StoreHome {
        application: APPLICATION,
        supplier: supplier.as_ref(),
        dir: &args.store_dir,
    };
    let options = RestoreOptions {
        snapshots: Some(Arc::new(snapshots) as Arc<dyn SnapshotStore>),
        ..RestoreOptions::default()
    };
    let opened = (supplier.open(&args.store_dir)?, None);
    let (store, summary) = block_on(catch_up(
        opened,
        Some(home),
        reader.as_ref(),
        KILL_PARTITION,
        &options,
        &NoopRestoreListener,
    ))?;
    // Restore may write without a write-ahead log: make what it applied durable before
    // saying it is done.
    store.flush()?;
    store.close()?;
    journal.restored(
        summary.snapshot.as_ref().map(|s| s.id.as_str()),
        summary.restored,
    )?;
    Ok(())
}

/// The reader of the changelog a CHANGELOG argument names (see `kill::open_sink`).
fn open_reader(spec: &str) -> Result<Arc<dyn ChangelogReader>, Failure> {
    if let Some(log) = spec.strip_prefix("file:") {
        let changelog = changelog_from(&read_log(Path::new(log))?);
        let reader =
            changelog.reader_now(KILL_TOPIC, ProcessingGuarantee::AtLeastOnce.isolation())?;
        return Ok(Arc::new(reader));
    }
    #[cfg(feature = "kafka")]
    if let Some(rest) = spec.strip_prefix("kafka:") {
        return Ok(crate::kill_kafka::reader_from_spec(rest)?);
    }
    Err(format!("unknown changelog {spec}").into())
}
