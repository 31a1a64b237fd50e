//! Commits flush the store every 10,000 committed records, so an engine that keeps
//! committed writes in memory loses a bounded tail to a crash.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    Capability, Changelog, KeyRange, KeyValueStore, KvIter, LoggedStore, Position, Result,
    SinkOptions, TopicSpec, WriteBatch, WriteOp,
};

const TOPIC: &str = "app-store-changelog";

/// A map that counts its flushes; everything else is as plain as it gets.
#[derive(Default)]
struct CountingStore {
    data: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    position: Mutex<Option<Position>>,
    flushes: AtomicUsize,
}

impl KeyValueStore for CountingStore {
    fn name(&self) -> &str {
        "counting"
    }
    fn capability(&self) -> Capability {
        Capability::new("counting")
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.data.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.data
            .lock()
            .unwrap()
            .insert(key.to_vec(), value.to_vec());
        Ok(())
    }
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut data = self.data.lock().unwrap();
        if let Some(existing) = data.get(key) {
            return Ok(Some(existing.clone()));
        }
        data.insert(key.to_vec(), value.to_vec());
        Ok(None)
    }
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.data.lock().unwrap().remove(key))
    }
    fn write(&self, batch: &WriteBatch) -> Result<()> {
        let mut data = self.data.lock().unwrap();
        for op in batch.iter() {
            match op {
                WriteOp::Put { key, value } => {
                    data.insert(key.to_vec(), value.to_vec());
                }
                WriteOp::Delete { key } => {
                    data.remove(key);
                }
            }
        }
        Ok(())
    }
    fn write_with_position(&self, batch: &WriteBatch, position: &Position) -> Result<()> {
        self.write(batch)?;
        *self.position.lock().unwrap() = Some(position.clone());
        Ok(())
    }
    fn position(&self) -> Result<Position> {
        Ok(self
            .position
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(Position::empty))
    }
    fn range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        let entries: Vec<_> = self
            .data
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(Box::new(entries.into_iter()))
    }
    fn reverse_range(&self, range: &KeyRange) -> Result<KvIter<'_>> {
        let mut entries: Vec<_> = self.range(range)?.collect();
        entries.reverse();
        Ok(Box::new(entries.into_iter()))
    }
    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.data.lock().unwrap().len() as u64)
    }
    fn flush(&self) -> Result<()> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn wipe(&self) -> Result<()> {
        self.data.lock().unwrap().clear();
        *self.position.lock().unwrap() = None;
        Ok(())
    }
}

#[test]
fn a_commit_flushes_the_store_every_ten_thousand_records() {
    let changelog = InMemoryChangelog::new();
    let spec = TopicSpec::changelog(TOPIC, 1, &BTreeMap::new());
    block_on(changelog.ensure_topic(&spec)).unwrap();
    let sink = block_on(changelog.sink(&SinkOptions::default())).unwrap();
    let store = Arc::new(CountingStore::default());
    let mut logged = LoggedStore::new(store.clone(), sink, TOPIC, 0);
    let mut flushes_after = Vec::new();
    // Commits of 3,000 records: the fourth passes 10,000 and flushes, then the
    // count starts again.
    for commit in 0..8u32 {
        for i in 0..3_000u32 {
            let key = (commit * 3_000 + i).to_be_bytes();
            logged.put(&key, b"v").unwrap();
        }
        block_on(logged.commit()).unwrap();
        flushes_after.push(store.flushes.load(Ordering::SeqCst));
    }
    assert_eq!(flushes_after, [0, 0, 0, 1, 1, 1, 1, 2]);
    // An empty commit flushes nothing.
    block_on(logged.commit()).unwrap();
    assert_eq!(store.flushes.load(Ordering::SeqCst), 2);
}
