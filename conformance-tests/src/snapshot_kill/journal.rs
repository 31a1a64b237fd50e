//! What the snapshot child did, one line per step, appended after the step succeeded so
//! the parent knows a lower bound of what happened before the kill. A line torn by the
//! kill does not count.

use std::io::Write;
use std::path::Path;

/// A snapshot the child saw published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Operations committed when its checkpoint was taken.
    pub ops: u64,
    /// Its changelog position.
    pub position: i64,
    /// Its manifest's name.
    pub id: String,
}

/// What a restore in the child ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The snapshot it started from, if any.
    pub snapshot: Option<String>,
    /// Changelog records it replayed after it.
    pub replayed: u64,
}

/// A journal as read back.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    /// The operation count after each commit.
    pub commits: Vec<u64>,
    /// Every snapshot published, in order.
    pub snapshots: Vec<Published>,
    /// Files each retention pass removed.
    pub files_removed: Vec<u64>,
    /// Manifests each retention pass removed.
    pub manifests_removed: Vec<u64>,
    /// The restore's outcome (mode `download`).
    pub restored: Option<Restored>,
    /// The crash point that fired, as printed.
    pub crash: Option<String>,
    /// Whether the child finished its mode.
    pub done: bool,
}

impl Journal {
    /// Reads the whole lines of `path` (none when it does not exist).
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut journal = Journal::default();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| -> u64 {
                words
                    .get(i)
                    .and_then(|w| w.parse().ok())
                    .unwrap_or_else(|| panic!("journal {}: bad line {line:?}", path.display()))
            };
            match words.first().copied() {
                Some("commit") => journal.commits.push(number(1)),
                Some("snapshot") => journal.snapshots.push(Published {
                    ops: number(1),
                    position: words[2].parse().unwrap_or_else(|_| panic!("{line:?}")),
                    id: words[3].to_owned(),
                }),
                Some("retained") => {
                    journal.manifests_removed.push(number(1));
                    journal.files_removed.push(number(2));
                }
                Some("restored") => {
                    journal.restored = Some(Restored {
                        snapshot: (words[1] != "-").then(|| words[1].to_owned()),
                        replayed: number(2),
                    });
                }
                Some("crash") => journal.crash = Some(words[1..].join(" ")),
                Some("done") => journal.done = true,
                _ => panic!("journal {}: unknown line {line:?}", path.display()),
            }
        }
        journal
    }

    /// Operations covered by the last journaled commit.
    pub fn committed(&self) -> u64 {
        self.commits.last().copied().unwrap_or(0)
    }
}

/// Appends lines to a journal; each line is one `write`, so a kill tears at most the
/// last one.
pub struct JournalWriter(std::fs::File);

impl JournalWriter {
    /// Opens (creating) the journal at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(Self)
    }

    fn line(&mut self, line: String) -> std::io::Result<()> {
        self.0.write_all(format!("{line}\n").as_bytes())
    }

    /// A commit covering `ops` operations returned.
    pub fn commit(&mut self, ops: u64) -> std::io::Result<()> {
        self.line(format!("commit {ops}"))
    }

    /// A snapshot was published.
    pub fn snapshot(&mut self, published: &Published) -> std::io::Result<()> {
        self.line(format!(
            "snapshot {} {} {}",
            published.ops, published.position, published.id
        ))
    }

    /// A retention pass finished.
    pub fn retained(&mut self, manifests: usize, files: usize) -> std::io::Result<()> {
        self.line(format!("retained {manifests} {files}"))
    }

    /// A restore finished.
    pub fn restored(&mut self, snapshot: Option<&str>, replayed: u64) -> std::io::Result<()> {
        self.line(format!("restored {} {replayed}", snapshot.unwrap_or("-")))
    }

    /// The mode finished.
    pub fn done(&mut self) -> std::io::Result<()> {
        self.line("done".to_owned())
    }
}
