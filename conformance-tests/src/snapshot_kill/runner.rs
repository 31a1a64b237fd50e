//! Running the snapshot child: one round's directories and arguments, and how the
//! parent ends a child (its crash point, a SIGKILL after some commits, or its own end).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use test_support::eventually;

use super::child::{ChildArgs, Mode, STORE};
use super::crash_store::CrashPoint;
use super::journal::Journal;
use crate::harness::{BackendFactory, Fixture};
use crate::snapshot_place::{Place, Where};

/// Commits between two snapshots of the upload child.
pub const EVERY: u32 = 2;
/// Snapshots retention keeps.
pub const KEEP: usize = 2;
/// How long a child may take to get where a round waits for it.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

/// One round: the child's directory, its changelog and the snapshot place.
pub struct Round<'a> {
    /// The backend the child writes (and the parent restores into).
    pub backend: &'a dyn BackendFactory,
    /// Where the snapshots go.
    pub place: Place,
    /// The child's directory: its store, checkpoints, journal and file changelog.
    pub fixture: Fixture,
    /// The child's CHANGELOG argument.
    pub changelog: String,
    /// The workload's seed.
    pub seed: u64,
}

impl<'a> Round<'a> {
    /// A round on a fresh place (`None`: S3 absent outside CI) writing the file
    /// changelog in its directory, or `changelog` when given.
    pub fn new(
        backend: &'a dyn BackendFactory,
        place: Where,
        seed: u64,
        changelog: Option<String>,
    ) -> Option<Self> {
        let place = Place::new(place, "kill")?;
        let fixture = Fixture::new(backend, STORE);
        let changelog =
            changelog.unwrap_or_else(|| format!("file:{}", fixture.root().join("log").display()));
        Some(Self {
            backend,
            place,
            fixture,
            changelog,
            seed,
        })
    }

    /// The file changelog's path, when the round writes one.
    pub fn log(&self) -> Option<PathBuf> {
        self.changelog.strip_prefix("file:").map(PathBuf::from)
    }

    /// The upload child's journal.
    pub fn journal(&self) -> PathBuf {
        self.fixture.root().join("journal")
    }

    /// The child's arguments for `mode` on `store_dir`, journaling to `journal`.
    pub fn args(
        &self,
        mode: Mode,
        crash: CrashPoint,
        store_dir: PathBuf,
        journal: PathBuf,
    ) -> ChildArgs {
        ChildArgs {
            mode,
            backend: self.backend.name().to_owned(),
            store_dir,
            changelog: self.changelog.clone(),
            snapshots: self.place.spec().to_owned(),
            journal,
            seed: self.seed,
            crash,
            every: EVERY,
            max: 6,
            keep: KEEP,
            clock_offset: Duration::ZERO,
        }
    }

    /// The upload child's arguments.
    pub fn upload(&self, crash: CrashPoint) -> ChildArgs {
        self.args(
            Mode::Upload,
            crash,
            self.fixture.store_dir(),
            self.journal(),
        )
    }

    /// The upload child's arguments when it is to end as `ending` says: one the parent
    /// kills never stops by itself, however fast it runs.
    pub fn upload_until(&self, crash: CrashPoint, ending: Ending) -> ChildArgs {
        let mut args = self.upload(crash);
        if let Ending::KillAfterCommits(_) = ending {
            args.max = u32::MAX;
        }
        args
    }
}

/// How a child ends.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    /// At its crash point, by its own SIGKILL.
    CrashPoint,
    /// By the parent's SIGKILL once it journaled this many commits.
    KillAfterCommits(usize),
    /// By finishing its mode.
    Finishes,
}

/// Runs the child with `args` until `ending`; returns its journal and process id.
pub fn run_child(exe: &Path, args: &ChildArgs, ending: Ending) -> (Journal, u32) {
    let mut child = Command::new(exe)
        .args(args.to_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("spawning {}: {err}", exe.display()));
    let pid = child.id();
    let status = match ending {
        Ending::KillAfterCommits(commits) => {
            eventually(CHILD_DEADLINE, &format!("{commits} commits"), || {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "the child ended early with {status}: {}",
                        stderr(&mut child)
                    );
                }
                Journal::read(&args.journal).commits.len() >= commits
            });
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap()
        }
        Ending::CrashPoint | Ending::Finishes => eventually(
            CHILD_DEADLINE,
            &format!("the {:?} child ending ({})", args.mode, args.crash),
            || child.try_wait().unwrap(),
        ),
    };
    let journal = Journal::read(&args.journal);
    match ending {
        Ending::CrashPoint => {
            assert_eq!(
                (status.signal(), journal.crash.as_deref()),
                (Some(9), Some(args.crash.to_string().as_str())),
                "the child must die by SIGKILL at its crash point {}; it ended with \
                 {status} ({})",
                args.crash,
                stderr(&mut child)
            );
        }
        Ending::Finishes => {
            assert!(
                status.success() && journal.done,
                "the {:?} child failed with {status}: {}",
                args.mode,
                stderr(&mut child)
            );
        }
        Ending::KillAfterCommits(_) => assert_killed(status),
    }
    (journal, pid)
}

fn assert_killed(status: ExitStatus) {
    // It may have finished its last snapshot just before the signal.
    assert!(
        status.signal() == Some(9) || status.success(),
        "the child ended with {status} before the parent's SIGKILL"
    );
}

fn stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
    }
    text
}
