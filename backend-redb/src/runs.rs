//! Sorted runs: a bulk load's records held back from the tree, sorted by key, and merged
//! into it in one pass.
//!
//! redb copies every B-tree page a transaction changes, and a changelog scatters its keys
//! over the whole tree, so every transaction of a restore copied most of the tree again:
//! 10M records over 1M keys, applied in transactions of up to 250,000, rewrote a 1M-key
//! tree about forty times and its file grew to six times its data. Held back instead, the records
//! are sorted in memory up to a bound, each key's last write kept, and spilled to a run
//! file; a merge reads every run at once in key order, keeps each key's newest write, and
//! inserts it, so the tree is built in one ordered pass that writes each key once, however
//! often the changelog repeats it (`BENCHMARKS.md`).
//!
//! The runs live in a directory beside the store file, which nothing but this module
//! reads. A durability point of the restore (`flush`) does not merge into the tree: it
//! writes what is in memory as a run, compacts the newest runs when [`COMPACT_AT`] of
//! them are of one tier (into one run of the next, so the final merge reads few runs and
//! each key about once), syncs every run to disk and commits a manifest of them (each
//! run's number, length and CRC-32, the record count and the position they reach) to the
//! store's meta table; runs compacted away are removed once it is committed. The next writable open after a crash merges the runs its manifest names, once
//! each is checked, and removes whatever else the directory holds; a run missing, cut
//! short or failing its checksum drops them all, which leaves the store at its last
//! merge, data and position together, for the restore to replay the rest.
//!
//! A run file is a sequence of entries, each a key length (`u32`, little-endian), a value
//! length (`u32`, `u32::MAX` for a delete), the key and the value.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crc_fast::{CrcAlgorithm, Digest};
use state_core::{Error, ErrorKind, Position, Result, WriteBatch, WriteOp};

use crate::error::map_io_error;

/// The value length a run file writes for a delete.
const DELETE: u32 = u32::MAX;

/// Buffer of each run file's reader during a merge, and of the writer of a spill.
const FILE_BUFFER: usize = 64 * 1024;

/// A bulk load's records not merged into the tree yet: spilled runs and the records in
/// memory, with the changelog position they reach.
#[derive(Debug)]
pub(crate) struct SortedRuns {
    dir: PathBuf,
    run_bytes: usize,
    memory: Pending,
    /// Spilled runs, oldest first.
    runs: Vec<Run>,
    /// How many of the first runs the last committed manifest names: they stay on disk
    /// when the holder goes without a merge, for the next open to merge.
    durable: usize,
    /// Bytes written to `runs`.
    spilled: u64,
    /// The number of the next run's file.
    next_run: u64,
    records: usize,
    position: Position,
}

/// A spilled run: its file, its number (in the file's name), length and CRC-32, and its
/// tier: 0 when spilled from memory, one more than its sources' when compacted.
#[derive(Debug)]
struct Run {
    path: PathBuf,
    number: u64,
    len: u64,
    crc: u64,
    tier: u32,
}

/// Made durable: the manifest to commit, and the runs compacted into others, to remove
/// once it is committed (until then the manifest before names them).
#[derive(Debug)]
pub(crate) struct Persisted {
    pub(crate) manifest: Vec<u8>,
    pub(crate) superseded: Vec<PathBuf>,
}

/// Entries a merge hands from its reading thread to the tree at a time.
const MERGE_BATCH: usize = 4096;

/// Runs of one tier a durability point compacts into one run of the next.
const COMPACT_AT: usize = 8;

/// Records in memory, in arrival order: their bytes in one buffer, each record's place in
/// it beside.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    records: Vec<Place>,
}

/// Where a record's key and value are in [`Pending::bytes`].
#[derive(Debug, Clone, Copy)]
struct Place {
    start: usize,
    key_len: u32,
    /// [`DELETE`] for a delete.
    value_len: u32,
}

impl Pending {
    fn push(&mut self, op: &WriteOp<'_>) -> Result<()> {
        self.push_entry(op.key(), op.value())
    }

    /// Adds a put of `value` to `key`, or a delete when `value` is `None`.
    fn push_entry(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let length = |len: usize, what: &str| {
            u32::try_from(len)
                .ok()
                .filter(|&len| len != DELETE)
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "a {what} of {len} bytes is too long for a redb bulk load"
                    ))
                })
        };
        let start = self.bytes.len();
        let key_len = length(key.len(), "key")?;
        self.bytes.extend_from_slice(key);
        let value_len = match value {
            Some(value) => {
                let len = length(value.len(), "value")?;
                self.bytes.extend_from_slice(value);
                len
            }
            None => DELETE,
        };
        self.records.push(Place {
            start,
            key_len,
            value_len,
        });
        Ok(())
    }

    fn key(&self, place: &Place) -> &[u8] {
        &self.bytes[place.start..place.start + place.key_len as usize]
    }

    fn value(&self, place: &Place) -> Option<&[u8]> {
        (place.value_len != DELETE).then(|| {
            let start = place.start + place.key_len as usize;
            &self.bytes[start..start + place.value_len as usize]
        })
    }

    /// What the records leave behind, in key order: each key's last write.
    fn sort(&mut self) {
        let bytes = &self.bytes;
        let key = |place: &Place| &bytes[place.start..place.start + place.key_len as usize];
        // Stable, so a key's writes stay in arrival order and the last is the one kept.
        self.records.sort_by(|a, b| key(a).cmp(key(b)));
        let mut kept: Vec<Place> = Vec::with_capacity(self.records.len());
        for place in self.records.drain(..) {
            match kept.last_mut() {
                Some(last) if key(last) == key(&place) => *last = place,
                _ => kept.push(place),
            }
        }
        self.records = kept;
    }

    /// Bytes held: the records' and their places'.
    fn size(&self) -> usize {
        self.bytes.len() + self.records.len() * std::mem::size_of::<Place>()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }
}

impl SortedRuns {
    /// No records yet; runs go to `dir` (created when the first one spills) once those
    /// in memory take `run_bytes`.
    pub(crate) fn new(dir: PathBuf, run_bytes: usize) -> Self {
        Self {
            dir,
            run_bytes,
            memory: Pending::default(),
            runs: Vec::new(),
            durable: 0,
            spilled: 0,
            next_run: 0,
            records: 0,
            position: Position::empty(),
        }
    }

    /// Adds `batch`, which brings the changelog to `position`, spilling a run when the
    /// records in memory reach the bound.
    pub(crate) fn push(&mut self, batch: &WriteBatch, position: &Position) -> Result<()> {
        for op in batch.iter() {
            self.memory.push(&op)?;
        }
        self.records += batch.len();
        for (partition, offset) in position.iter() {
            self.position.set(partition, offset);
        }
        if self.memory.size() >= self.run_bytes {
            self.spill()?;
        }
        Ok(())
    }

    /// Records added since the last merge.
    pub(crate) fn records(&self) -> usize {
        self.records
    }

    /// Bytes of the runs spilled since the last merge.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.spilled
    }

    /// Sorts the records in memory and writes them to a new run file.
    fn spill(&mut self) -> Result<()> {
        self.memory.sort();
        let memory = std::mem::take(&mut self.memory);
        let written = self.write_run(0, |out| {
            for place in &memory.records {
                out.entry(memory.key(place), memory.value(place))?;
            }
            Ok(())
        });
        self.memory = memory;
        self.memory.clear();
        let run = written?;
        self.spilled += run.len;
        self.runs.push(run);
        Ok(())
    }

    /// A new run of `tier`, its entries written by `write`. A run that fails is removed.
    fn write_run(
        &mut self,
        tier: u32,
        write: impl FnOnce(&mut Checksummed) -> Result<()>,
    ) -> Result<Run> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| map_io_error(&self.dir, "create the bulk-load run directory", err))?;
        let number = self.next_run;
        self.next_run += 1;
        let path = self.dir.join(run_name(number));
        let written = Checksummed::create(&path).and_then(|mut out| {
            write(&mut out)?;
            out.finish()
        });
        match written {
            Ok((len, crc)) => Ok(Run {
                path,
                number,
                len,
                crc,
                tier,
            }),
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                Err(err)
            }
        }
    }

    /// While the newest [`COMPACT_AT`] runs are of one tier, merges them into one run of
    /// the next (each key's newest write, deletes kept), so a merge into the tree reads
    /// few runs and each key about once, however often the changelog repeats it. Returns
    /// the runs compacted away.
    fn compact(&mut self) -> Result<Vec<PathBuf>> {
        let mut superseded = Vec::new();
        while let Some(first) = self.runs.len().checked_sub(COMPACT_AT) {
            let tier = self.runs[first].tier;
            if self.runs[first..].iter().any(|run| run.tier != tier) {
                break;
            }
            let empty = Pending::default();
            let sources: Vec<Run> = self.runs.drain(first..).collect();
            self.durable = self.durable.min(first);
            let compacted = self.write_run(tier + 1, |out| {
                merge_runs(&sources, &empty, |key, value| out.entry(key, value))
            });
            superseded.extend(sources.iter().map(|run| run.path.clone()));
            match compacted {
                Ok(run) => self.runs.push(run),
                Err(err) => {
                    // Put back, so they are held (and removed) as before.
                    self.runs.extend(sources);
                    return Err(err);
                }
            }
        }
        self.spilled = self.runs.iter().map(|run| run.len).sum();
        Ok(superseded)
    }

    /// Makes everything held durable: what is in memory becomes a run, runs are compacted,
    /// and every run is synced to disk with its directory. `None` when nothing is held.
    pub(crate) fn persist(&mut self) -> Result<Option<Persisted>> {
        if self.records == 0 {
            return Ok(None);
        }
        if !self.memory.records.is_empty() {
            self.spill()?;
        }
        let superseded = self.compact()?;
        for run in &self.runs[self.durable..] {
            let synced = File::open(&run.path).and_then(|file| file.sync_all());
            synced.map_err(|err| map_io_error(&run.path, "sync bulk-load run", err))?;
        }
        let synced = File::open(&self.dir).and_then(|dir| dir.sync_all());
        synced.map_err(|err| map_io_error(&self.dir, "sync bulk-load run directory", err))?;
        self.durable = self.runs.len();
        Ok(Some(Persisted {
            manifest: self.manifest(),
            superseded,
        }))
    }

    /// The manifest of the runs: the record count, each run's number, length and CRC-32,
    /// then the position.
    fn manifest(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.runs.len() * 24);
        out.extend_from_slice(&(self.records as u64).to_le_bytes());
        out.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for run in &self.runs {
            out.extend_from_slice(&run.number.to_le_bytes());
            out.extend_from_slice(&run.len.to_le_bytes());
            out.extend_from_slice(&run.crc.to_le_bytes());
        }
        out.extend_from_slice(&self.position.encode());
        out
    }

    /// The runs `manifest` names in `dir`, each checked against its length and checksum;
    /// an error says which is missing, cut short or damaged.
    pub(crate) fn recover(dir: PathBuf, manifest: &[u8]) -> Result<Self> {
        let damaged = || {
            Error::corruption(format!(
                "the manifest of the runs in {} is damaged",
                dir.display()
            ))
        };
        let (records, rest) = manifest.split_first_chunk::<8>().ok_or_else(damaged)?;
        let (count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(damaged)?;
        let mut runs = Vec::new();
        for _ in 0..u32::from_le_bytes(*count) {
            let (number, tail) = rest.split_first_chunk::<8>().ok_or_else(damaged)?;
            let (len, tail) = tail.split_first_chunk::<8>().ok_or_else(damaged)?;
            let (crc, tail) = tail.split_first_chunk::<8>().ok_or_else(damaged)?;
            rest = tail;
            let number = u64::from_le_bytes(*number);
            let run = Run {
                path: dir.join(run_name(number)),
                number,
                len: u64::from_le_bytes(*len),
                crc: u64::from_le_bytes(*crc),
                tier: 0,
            };
            run.check()?;
            runs.push(run);
        }
        let position = Position::decode(
            rest,
            &format!("the manifest of the runs in {}", dir.display()),
        )?;
        let records = usize::try_from(u64::from_le_bytes(*records)).map_err(|_| damaged())?;
        Ok(Self {
            durable: runs.len(),
            spilled: runs.iter().map(|run| run.len).sum(),
            next_run: runs.iter().map(|run| run.number + 1).max().unwrap_or(0),
            runs,
            dir,
            run_bytes: 1,
            memory: Pending::default(),
            records,
            position,
        })
    }

    /// Hands `apply` each key's newest write across every run and the records in memory,
    /// in key order (a value, or `None` for a delete), and returns the position they
    /// reach. What is held stays until [`discard`](Self::discard).
    ///
    /// The runs are read and merged on a thread of their own, handing `apply` (on the
    /// calling thread) batches of [`MERGE_BATCH`] entries: a merge into the tree comes at
    /// the end of a restore, when the reading is done and the other core is free, and the
    /// tree's inserts take over half of it.
    pub(crate) fn merge(
        &mut self,
        mut apply: impl FnMut(&[u8], Option<&[u8]>) -> Result<()>,
    ) -> Result<Position> {
        self.memory.sort();
        let (runs, memory) = (&self.runs, &self.memory);
        let (full, merged) = mpsc::sync_channel::<Result<Pending>>(2);
        let (emptied, empty) = mpsc::channel::<Pending>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut batch = Pending::default();
                let produced = merge_runs(runs, memory, |key, value| {
                    batch.push_entry(key, value)?;
                    if batch.records.len() >= MERGE_BATCH {
                        let next = empty.try_recv().unwrap_or_default();
                        let ready = std::mem::replace(&mut batch, next);
                        // The applying side stopped on an error of its own.
                        full.send(Ok(ready))
                            .map_err(|_| Error::new(ErrorKind::Closed, "merge stopped"))?;
                    }
                    Ok(())
                });
                let _ = full.send(produced.map(|()| batch));
            });
            for received in merged {
                let mut batch = received?;
                for place in &batch.records {
                    apply(batch.key(place), batch.value(place))?;
                }
                batch.clear();
                let _ = emptied.send(batch);
            }
            Ok::<(), Error>(())
        })?;
        Ok(self.position.clone())
    }

    /// Drops everything held and removes the runs, durable or not.
    pub(crate) fn discard(&mut self) {
        self.durable = 0;
        self.remove_from(0);
        self.position = Position::empty();
    }

    /// Drops the records in memory and removes the runs from the `first` on.
    fn remove_from(&mut self, first: usize) {
        self.memory.clear();
        for run in self.runs.drain(first..) {
            if let Err(err) = std::fs::remove_file(&run.path) {
                log::warn!(
                    "could not remove bulk-load run {}: {err}",
                    run.path.display()
                );
            }
        }
        if self.runs.is_empty() {
            self.records = 0;
            self.spilled = 0;
            // Only if empty: the directory is this store's alone, and a leftover file
            // goes with the next writable open.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

impl Drop for SortedRuns {
    /// Runs a committed manifest names stay for the next open to merge, as after a crash;
    /// the others go.
    fn drop(&mut self) {
        self.remove_from(self.durable);
    }
}

impl Run {
    /// Checks the file against the length and checksum the manifest gives.
    fn check(&self) -> Result<()> {
        let bytes = std::fs::read(&self.path)
            .map_err(|err| map_io_error(&self.path, "read bulk-load run", err))?;
        if bytes.len() as u64 != self.len {
            return Err(Error::corruption(format!(
                "bulk-load run {} is {} bytes long, its manifest says {}",
                self.path.display(),
                bytes.len(),
                self.len
            )));
        }
        if crc32(&bytes) != self.crc {
            return Err(Error::corruption(format!(
                "bulk-load run {} fails its checksum",
                self.path.display()
            )));
        }
        Ok(())
    }
}

/// Hands `apply` each key's newest write across `runs` (oldest first) and then the
/// sorted records of `memory`, in key order.
fn merge_runs(
    runs: &[Run],
    memory: &Pending,
    mut apply: impl FnMut(&[u8], Option<&[u8]>) -> Result<()>,
) -> Result<()> {
    let mut sources = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        sources.push(Source::File(RunReader::open(&run.path)?));
    }
    sources.push(Source::Memory(0));
    // The heap holds each source's current key; a later source is newer.
    let mut heap = BinaryHeap::with_capacity(sources.len());
    for (index, source) in sources.iter_mut().enumerate() {
        let mut head = Head {
            key: Vec::new(),
            source: index,
        };
        if source.advance(memory, &mut head.key)? {
            heap.push(head);
        }
    }
    while let Some(mut newest) = heap.pop() {
        // Older writes of the same key are passed over.
        while let Some(mut older) = heap.peek_mut().filter(|older| older.key == newest.key) {
            let source = older.source;
            if !sources[source].advance(memory, &mut older.key)? {
                std::collections::binary_heap::PeekMut::pop(older);
            }
        }
        apply(&newest.key, sources[newest.source].value(memory))?;
        if sources[newest.source].advance(memory, &mut newest.key)? {
            heap.push(newest);
        }
    }
    Ok(())
}

/// The file name of run `number`.
fn run_name(number: u64) -> String {
    format!("run-{number:06}")
}

fn crc32(bytes: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc32IsoHdlc, bytes)
}

/// A buffered writer of one run that counts and checksums what goes through it, a buffer
/// at a time: checksumming each key and length on its own cost a tenth of a restore.
struct Checksummed {
    path: PathBuf,
    out: File,
    buffer: Vec<u8>,
    digest: Digest,
    len: u64,
}

impl Checksummed {
    fn create(path: &Path) -> Result<Self> {
        let out = File::create(path).map_err(|err| Self::error(path, err))?;
        Ok(Self {
            path: path.to_owned(),
            out,
            buffer: Vec::with_capacity(FILE_BUFFER),
            digest: Digest::new(CrcAlgorithm::Crc32IsoHdlc),
            len: 0,
        })
    }

    fn error(path: &Path, err: io::Error) -> Error {
        map_io_error(path, "write bulk-load run", err)
    }

    /// Writes one entry: the key's and value's lengths, the key, the value. Both were
    /// checked to fit when they were held ([`Pending::push`]).
    fn entry(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let value_len = value.map_or(DELETE, |value| value.len() as u32);
        self.write(&(key.len() as u32).to_le_bytes())?;
        self.write(&value_len.to_le_bytes())?;
        self.write(key)?;
        self.write(value.unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if self.buffer.len() + bytes.len() > FILE_BUFFER {
            self.drain()?;
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        self.digest.update(&self.buffer);
        self.len += self.buffer.len() as u64;
        let written = self.out.write_all(&self.buffer);
        written.map_err(|err| Self::error(&self.path, err))?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes out what is buffered; the length and checksum written.
    fn finish(mut self) -> Result<(u64, u64)> {
        self.drain()?;
        Ok((self.len, self.digest.finalize()))
    }
}

/// Removes the run directory a crashed bulk load left beside the store file at `dir`;
/// called with the writer's lock on the file held, so no other writer is using it.
pub(crate) fn remove_leftovers(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {
            log::info!(
                "removed {}, runs of a bulk load that did not finish",
                dir.display()
            );
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(map_io_error(
            dir,
            "remove the runs of an unfinished bulk load",
            err,
        )),
    }
}

/// A source's current key in the merge, ordered so that the heap's top is the smallest
/// key and, among equal keys, the newest source.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    key: Vec<u8>,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then(self.source.cmp(&other.source))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a merge reads a run from: a file, or the sorted records in memory (the index of
/// the next one).
enum Source {
    File(RunReader),
    Memory(usize),
}

impl Source {
    /// Moves to the next entry, its key into `key`; `false` at the end.
    fn advance(&mut self, memory: &Pending, key: &mut Vec<u8>) -> Result<bool> {
        match self {
            Source::File(reader) => reader.next(key),
            Source::Memory(next) => {
                let Some(place) = memory.records.get(*next) else {
                    return Ok(false);
                };
                *next += 1;
                key.clear();
                key.extend_from_slice(memory.key(place));
                Ok(true)
            }
        }
    }

    /// The current entry's value; `None` for a delete.
    fn value<'a>(&'a self, memory: &'a Pending) -> Option<&'a [u8]> {
        match self {
            Source::File(reader) => (!reader.deleted).then_some(reader.value.as_slice()),
            Source::Memory(next) => memory.value(&memory.records[*next - 1]),
        }
    }
}

/// Reads one run file, an entry at a time.
struct RunReader {
    path: PathBuf,
    input: BufReader<File>,
    value: Vec<u8>,
    deleted: bool,
}

impl RunReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|err| map_io_error(path, "read bulk-load run", err))?;
        Ok(Self {
            path: path.to_owned(),
            input: BufReader::with_capacity(FILE_BUFFER, file),
            value: Vec::new(),
            deleted: false,
        })
    }

    /// Reads the next entry, its key into `key`; `false` at the end of the file.
    fn next(&mut self, key: &mut Vec<u8>) -> Result<bool> {
        if self
            .input
            .fill_buf()
            .map_err(|err| run_error(&self.path, err))?
            .is_empty()
        {
            return Ok(false);
        }
        let mut lengths = [0u8; 8];
        self.input
            .read_exact(&mut lengths)
            .map_err(|err| run_error(&self.path, err))?;
        let [k0, k1, k2, k3, v0, v1, v2, v3] = lengths;
        let key_len = u32::from_le_bytes([k0, k1, k2, k3]) as usize;
        let value_len = u32::from_le_bytes([v0, v1, v2, v3]);
        key.resize(key_len, 0);
        self.input
            .read_exact(key)
            .map_err(|err| run_error(&self.path, err))?;
        self.deleted = value_len == DELETE;
        let value_len = if self.deleted { 0 } else { value_len as usize };
        self.value.resize(value_len, 0);
        self.input
            .read_exact(&mut self.value)
            .map_err(|err| run_error(&self.path, err))?;
        Ok(true)
    }
}

/// A failed read of the run at `path`: corruption when it ends inside an entry.
fn run_error(path: &Path, err: io::Error) -> Error {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return Error::corruption(format!(
            "bulk-load run {} ends inside an entry",
            path.display()
        ));
    }
    map_io_error(path, "read bulk-load run", err)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use tempfile::TempDir;

    use super::*;

    type Merged = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    /// What `runs` hands a merge, in the order it hands it; `runs` is discarded after.
    fn drained(runs: &mut SortedRuns) -> Result<(Merged, Position)> {
        let mut out = Vec::new();
        let position = runs.merge(|key, value| {
            out.push((key.to_vec(), value.map(<[u8]>::to_vec)));
            Ok(())
        });
        runs.discard();
        position.map(|position| (out, position))
    }

    /// Runs holding puts of `keys` (one per run, so each spills), the position at
    /// `keys.len() - 1`.
    fn runs_of(dir: &Path, keys: &[&str]) -> SortedRuns {
        let mut runs = SortedRuns::new(dir.to_owned(), 1);
        for (offset, key) in keys.iter().enumerate() {
            let mut batch = WriteBatch::new();
            batch.put(*key, format!("value of {key}"));
            runs.push(&batch, &Position::of(0, offset as i64)).unwrap();
        }
        runs
    }

    /// Runs made durable outlive their holder, and a manifest recovers them whole; runs
    /// spilled after the manifest do not outlive it.
    #[test]
    fn durable_runs_outlive_their_holder_and_recover_whole() {
        let dir = TempDir::new().unwrap();
        let runs_dir = dir.path().join("runs");
        let mut runs = runs_of(&runs_dir, &["b", "a", "c"]);
        let manifest = runs.persist().unwrap().expect("records are held").manifest;
        let mut later = WriteBatch::new();
        later.put("d", "after the manifest");
        runs.push(&later, &Position::of(0, 3)).unwrap();
        assert!(runs_dir.join("run-000003").exists());
        drop(runs);
        assert!(!runs_dir.join("run-000003").exists());

        let mut recovered = SortedRuns::recover(runs_dir.clone(), &manifest).unwrap();
        assert_eq!(recovered.records(), 3);
        let (merged, position) = drained(&mut recovered).unwrap();
        let keys: Vec<&[u8]> = merged.iter().map(|(key, _)| key.as_slice()).collect();
        assert_eq!(keys, [b"a", b"b", b"c"]);
        assert_eq!(merged[0].1.as_deref(), Some(&b"value of a"[..]));
        assert_eq!(position, Position::of(0, 2));
        assert!(!runs_dir.exists());
    }

    /// A durable run cut short, damaged or gone fails the recovery, naming it.
    #[test]
    fn a_damaged_or_missing_run_fails_recovery() {
        type Damage = fn(&Path);
        let damages: [(&str, Damage); 3] = [
            ("bytes long", |path| {
                let len = std::fs::metadata(path).unwrap().len();
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(len - 1).unwrap();
            }),
            ("checksum", |path| {
                let mut bytes = std::fs::read(path).unwrap();
                bytes[9] ^= 0x10;
                std::fs::write(path, bytes).unwrap();
            }),
            ("read bulk-load run", |path| {
                std::fs::remove_file(path).unwrap()
            }),
        ];
        for (says, damage) in damages {
            let dir = TempDir::new().unwrap();
            let runs_dir = dir.path().join("runs");
            let mut runs = runs_of(&runs_dir, &["a", "b"]);
            let manifest = runs.persist().unwrap().unwrap().manifest;
            drop(runs);
            damage(&runs_dir.join("run-000001"));
            let err = SortedRuns::recover(runs_dir.clone(), &manifest).unwrap_err();
            assert!(err.to_string().contains("run-000001"), "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
        let err = SortedRuns::recover(PathBuf::from("runs"), b"short").unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Corruption, "{err}");
    }

    /// Batches of puts and deletes over a few keys, so keys repeat within and across runs.
    fn batches() -> impl Strategy<Value = Vec<Vec<(u8, Option<Vec<u8>>)>>> {
        let op = (
            0u8..24,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        );
        proptest::collection::vec(proptest::collection::vec(op, 1..30), 1..12)
    }

    proptest! {
        /// Whatever spills, a merge hands over each key's last write once, in key order,
        /// with the last batch's position, and leaves no run behind.
        #[test]
        fn a_merge_hands_over_each_keys_last_write_in_key_order(
            batches in batches(),
            run_bytes in 1usize..400,
            persist_every in 1usize..6,
        ) {
            let dir = TempDir::new().unwrap();
            let runs_dir = dir.path().join("runs");
            let mut runs = SortedRuns::new(runs_dir.clone(), run_bytes);
            let mut model = BTreeMap::new();
            for (offset, ops) in batches.iter().enumerate() {
                let mut batch = WriteBatch::new();
                for (key, value) in ops {
                    let key = [b'k', *key];
                    match value {
                        Some(value) => batch.put(key, value.as_slice()),
                        None => batch.delete(key),
                    };
                    model.insert(key.to_vec(), value.clone());
                }
                runs.push(&batch, &Position::of(3, offset as i64)).unwrap();
                // Durability points, which compact runs, as a bulk load makes them; what
                // they compact away goes once their manifest would be committed.
                if offset % persist_every == persist_every - 1 {
                    let persisted = runs.persist().unwrap().expect("records are held");
                    for run in persisted.superseded {
                        std::fs::remove_file(run).unwrap();
                    }
                    prop_assert!(runs.runs.len() < COMPACT_AT + COMPACT_AT);
                }
            }
            let records: usize = batches.iter().map(Vec::len).sum();
            prop_assert_eq!(runs.records(), records);
            let (merged, position) = drained(&mut runs).unwrap();
            prop_assert_eq!(merged, model.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(position, Position::of(3, batches.len() as i64 - 1));
            prop_assert_eq!(runs.records(), 0);
            prop_assert!(!runs_dir.exists());
            // Nothing is handed over twice.
            prop_assert!(drained(&mut runs).unwrap().0.is_empty());
        }
    }

    /// A durability point compacts the newest runs of one tier into one run of the next,
    /// and the manifest it returns recovers the compacted runs whole.
    #[test]
    fn durability_points_compact_runs_of_one_tier() {
        let dir = TempDir::new().unwrap();
        let runs_dir = dir.path().join("runs");
        let keys: Vec<String> = (0..10).map(|i| format!("key-{}", i % 4)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut runs = runs_of(&runs_dir, &keys);
        let mut batch = WriteBatch::new();
        batch.delete("key-1");
        runs.push(&batch, &Position::of(0, 10)).unwrap();
        let persisted = runs.persist().unwrap().expect("records are held");
        // Eleven runs of tier 0: the newest eight became one of tier 1.
        assert_eq!(persisted.superseded.len(), COMPACT_AT);
        let tiers: Vec<u32> = runs.runs.iter().map(|run| run.tier).collect();
        assert_eq!(tiers, [0, 0, 0, 1]);
        for run in &persisted.superseded {
            std::fs::remove_file(run).unwrap();
        }
        drop(runs);
        let mut recovered = SortedRuns::recover(runs_dir.clone(), &persisted.manifest).unwrap();
        let (merged, position) = drained(&mut recovered).unwrap();
        let want: Merged = [("key-0", Some("value of key-0")), ("key-1", None)]
            .into_iter()
            .chain([
                ("key-2", Some("value of key-2")),
                ("key-3", Some("value of key-3")),
            ])
            .map(|(key, value)| (key.into(), value.map(Vec::from)))
            .collect();
        assert_eq!(merged, want);
        assert_eq!(position, Position::of(0, 10));
    }

    /// An error of the applying side ends the merge with that error, however much the
    /// reading thread has still to hand over.
    #[test]
    fn an_error_applying_ends_the_merge() {
        let dir = TempDir::new().unwrap();
        let mut runs = SortedRuns::new(dir.path().join("runs"), 64 * 1024);
        let mut batch = WriteBatch::new();
        for i in 0..(MERGE_BATCH * 5) as u32 {
            batch.put(i.to_be_bytes(), b"value");
        }
        runs.push(&batch, &Position::of(0, 0)).unwrap();
        let mut applied = 0;
        let err = runs
            .merge(|_, _| {
                applied += 1;
                if applied == 10 {
                    return Err(Error::invalid_input("refused"));
                }
                Ok(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert_eq!(applied, 10);
        runs.discard();
    }

    /// A run cut short inside an entry fails the merge as corruption, naming the run,
    /// and everything held is dropped.
    #[test]
    fn a_truncated_run_fails_the_merge_and_is_dropped() {
        let dir = TempDir::new().unwrap();
        let runs_dir = dir.path().join("runs");
        let mut runs = SortedRuns::new(runs_dir.clone(), 1);
        let mut batch = WriteBatch::new();
        batch.put("key", "a value");
        runs.push(&batch, &Position::of(0, 0)).unwrap();
        let run = runs_dir.join("run-000000");
        let len = std::fs::metadata(&run).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&run).unwrap();
        file.set_len(len - 3).unwrap();
        let err = drained(&mut runs).unwrap_err();
        assert_eq!(err.kind(), state_core::ErrorKind::Corruption, "{err}");
        assert!(err.to_string().contains("run-000000"), "{err}");
        assert_eq!(runs.records(), 0);
        assert!(!runs_dir.exists());
    }

    /// Runs held when the holder goes are removed with it.
    #[test]
    fn dropped_runs_are_removed() {
        let dir = TempDir::new().unwrap();
        let runs_dir = dir.path().join("runs");
        let mut runs = SortedRuns::new(runs_dir.clone(), 1);
        let mut batch = WriteBatch::new();
        batch.put("key", "value");
        runs.push(&batch, &Position::of(0, 0)).unwrap();
        assert!(runs_dir.join("run-000000").exists());
        drop(runs);
        assert!(!runs_dir.exists());
    }

    /// A crash's leftovers go; nothing there is no error.
    #[test]
    fn leftovers_are_removed_and_their_absence_is_fine() {
        let dir = TempDir::new().unwrap();
        let runs_dir = dir.path().join("runs");
        std::fs::create_dir(&runs_dir).unwrap();
        std::fs::write(runs_dir.join("run-000003"), b"partial").unwrap();
        remove_leftovers(&runs_dir).unwrap();
        assert!(!runs_dir.exists());
        remove_leftovers(&runs_dir).unwrap();
    }
}
