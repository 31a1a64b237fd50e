//! A changelog partition kept in a file, so a child process can write it and the parent
//! can read it after killing the child with SIGKILL.
//!
//! Frames are `key_len: u32 BE | key | value_len: i32 BE (-1 = tombstone) | value`,
//! written in order with offsets implied by position. `flush` writes the pending frames
//! with one `write` call before acknowledging, so what it acknowledged survives the death
//! of the process (not a power loss: this is test support, not a storage engine). A frame
//! torn by the kill is ignored on read, as Kafka's log recovery drops a partial batch.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use state_core::{
    ChangelogPositions, ChangelogRecord, ChangelogSink, Error, Offset, Partition,
    ProcessingGuarantee, Result, SinkCommit, SourceCommit, SourceOffsets,
};

/// An at-least-once sink appending one changelog partition to one file.
pub struct FileSink {
    topic: String,
    partition: Partition,
    state: Mutex<SinkState>,
}

struct SinkState {
    file: File,
    pending: Vec<ChangelogRecord>,
    next_offset: Offset,
}

impl FileSink {
    /// Opens (creating) the log at `path`, continuing after its last whole frame.
    pub fn open(path: &Path, topic: &str, partition: Partition) -> Result<Self> {
        let next_offset = read_log(path)
            .map(|records| records.len() as Offset)
            .unwrap_or(0);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            topic: topic.to_owned(),
            partition,
            state: Mutex::new(SinkState {
                file,
                pending: Vec::new(),
                next_offset,
            }),
        })
    }
}

#[async_trait]
impl ChangelogSink for FileSink {
    fn guarantee(&self) -> ProcessingGuarantee {
        ProcessingGuarantee::AtLeastOnce
    }
    fn append(&self, topic: &str, partition: Partition, record: &ChangelogRecord) -> Result<()> {
        if topic != self.topic || partition != self.partition {
            return Err(Error::invalid_input(format!(
                "file log holds topic {} partition {} only, not {topic} partition {partition}",
                self.topic, self.partition
            )));
        }
        self.lock()?.pending.push(record.clone());
        Ok(())
    }
    async fn commit(&self, source: &SourceOffsets) -> Result<SinkCommit> {
        if !source.is_empty() {
            return Err(Error::invalid_input("the file log keeps no input offsets"));
        }
        let mut state = self.lock()?;
        self.write_pending(&mut state)?;
        Ok(SinkCommit {
            positions: self.acknowledged_locked(&state),
            source: SourceCommit::Nothing,
        })
    }
    async fn abort(&self) -> Result<()> {
        // Plain records cannot be taken back: what was appended is written.
        let mut state = self.lock()?;
        self.write_pending(&mut state)
    }
    fn acknowledged(&self) -> ChangelogPositions {
        self.lock()
            .map(|state| self.acknowledged_locked(&state))
            .unwrap_or_default()
    }
}

impl FileSink {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, SinkState>> {
        self.state
            .lock()
            .map_err(|_| Error::internal("file sink lock poisoned"))
    }

    /// Writes every pending frame with one `write` call.
    fn write_pending(&self, state: &mut SinkState) -> Result<()> {
        let mut frames = Vec::new();
        for record in &state.pending {
            encode(record, &mut frames);
        }
        state.file.write_all(&frames)?;
        let written = state.pending.len() as Offset;
        state.pending.clear();
        state.next_offset += written;
        Ok(())
    }

    fn acknowledged_locked(&self, state: &SinkState) -> ChangelogPositions {
        let mut positions = ChangelogPositions::new();
        if state.next_offset > 0 {
            positions.set(&self.topic, self.partition, state.next_offset - 1);
        }
        positions
    }
}

fn encode(record: &ChangelogRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&(record.key.len() as u32).to_be_bytes());
    out.extend_from_slice(&record.key);
    match &record.value {
        Some(value) => {
            out.extend_from_slice(&(value.len() as i32).to_be_bytes());
            out.extend_from_slice(value);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// Every whole record in the log at `path`, in offset order (a torn last frame is
/// dropped).
pub fn read_log(path: &Path) -> Result<Vec<Frame>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err.into()),
    }
    let mut records = Vec::new();
    let mut rest = bytes.as_slice();
    while let Some((record, tail)) = decode(rest) {
        records.push(record);
        rest = tail;
    }
    Ok(records)
}

/// One logged change: a key and its new value, `None` for a tombstone.
pub type Frame = (Vec<u8>, Option<Vec<u8>>);

fn decode(bytes: &[u8]) -> Option<(Frame, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let key_len = u32::from_be_bytes(*len) as usize;
    let (key, rest) = (rest.get(..key_len)?, rest.get(key_len..)?);
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let value_len = i32::from_be_bytes(*len);
    if value_len < 0 {
        return Some(((key.to_vec(), None), rest));
    }
    let value_len = value_len as usize;
    let (value, rest) = (rest.get(..value_len)?, rest.get(value_len..)?);
    Some(((key.to_vec(), Some(value.to_vec())), rest))
}
