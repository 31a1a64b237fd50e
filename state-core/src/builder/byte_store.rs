//! The byte-level store behind a typed store: logged or not, chosen once when it is
//! wrapped ([`ByteStore::wrap`]); every operation after that goes through one interface.

use std::sync::Arc;

use async_trait::async_trait;

use crate::logging::{CommitSummary, LoggedStore, UnloggedStore};
use crate::{ChangelogSink, KeyRange, KeyValueStore, KvIter, Partition, Result};

/// The byte-level store behind a typed store: with logging, a [`LoggedStore`] (writes go
/// to the changelog too; commit makes them durable); without, the store with its writes
/// held in memory until commit applies them as one batch (as a logged store's are).
pub struct ByteStore(Box<dyn Access>);

/// What a typed store asks of its byte store; the two kinds differ only here.
#[async_trait]
trait Access: Send + Sync {
    fn committed(&self) -> &Arc<dyn KeyValueStore>;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>>;
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn scan(&self, range: &KeyRange, descending: bool) -> Result<KvIter<'_>>;
    async fn commit(&mut self) -> Result<CommitSummary>;
    /// Applies an unlogged store's pending writes; nothing for a logged one.
    fn commit_unlogged(&self) -> Result<()>;
    /// The logged store, for a commit of several stores through one sink.
    fn logged_mut(&mut self) -> Option<&mut LoggedStore>;
    fn is_logged(&self) -> bool;
}

impl ByteStore {
    /// `store` logging every change to `partition` of changelog `topic` through `sink`
    /// when `logging` names them, writing straight to the store otherwise.
    pub fn wrap(
        store: Arc<dyn KeyValueStore>,
        logging: Option<(&Arc<dyn ChangelogSink>, &str)>,
        partition: Partition,
    ) -> Self {
        match logging {
            Some((sink, topic)) => Self(Box::new(LoggedStore::new(
                store,
                sink.clone(),
                topic,
                partition,
            ))),
            None => Self(Box::new(UnloggedStore::new(store))),
        }
    }

    /// The committed store (no uncommitted writes visible).
    pub fn committed(&self) -> &Arc<dyn KeyValueStore> {
        self.0.committed()
    }

    /// The committed store underneath, without its changelog sink; uncommitted changes are
    /// dropped. A revoked partition's store becomes a standby this way without closing.
    pub fn into_committed(self) -> Arc<dyn KeyValueStore> {
        self.0.committed().clone()
    }

    /// The logged store, when logging is enabled.
    pub fn logged_mut(&mut self) -> Option<&mut LoggedStore> {
        self.0.logged_mut()
    }

    /// Whether changes go to a changelog.
    pub fn is_logged(&self) -> bool {
        self.0.is_logged()
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }

    pub(crate) fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.put(key, value)
    }

    pub(crate) fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.put_if_absent(key, value)
    }

    pub(crate) fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.0.delete(key)
    }

    pub(crate) fn scan(&self, range: &KeyRange, descending: bool) -> Result<KvIter<'_>> {
        self.0.scan(range, descending)
    }

    /// Applies an unlogged store's uncommitted writes as one batch and flushes it; nothing
    /// for a logged store, whose writes commit through the changelog. The store manager
    /// calls it at each commit, a typed store before it closes (nothing else holds an
    /// unlogged store's writes; a logged one's uncommitted writes are dropped, as the
    /// changelog drops them).
    pub(crate) fn commit_unlogged(&self) -> Result<()> {
        self.0.commit_unlogged()
    }

    /// Commits alone: with logging, makes the changes durable in the changelog, then
    /// applies them to the store (see [`LoggedStore::commit`]); without, applies them to
    /// the store as one batch and flushes it.
    pub(crate) async fn commit(&mut self) -> Result<CommitSummary> {
        self.0.commit().await
    }
}

#[async_trait]
impl Access for UnloggedStore {
    fn committed(&self) -> &Arc<dyn KeyValueStore> {
        UnloggedStore::committed(self)
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        UnloggedStore::get(self, key)
    }
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        UnloggedStore::put(self, key, value)
    }
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        UnloggedStore::put_if_absent(self, key, value)
    }
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        UnloggedStore::delete(self, key)
    }
    fn scan(&self, range: &KeyRange, descending: bool) -> Result<KvIter<'_>> {
        UnloggedStore::scan(self, range, descending)
    }
    async fn commit(&mut self) -> Result<CommitSummary> {
        UnloggedStore::commit(self)
    }
    fn commit_unlogged(&self) -> Result<()> {
        UnloggedStore::commit(self).map(drop)
    }
    fn logged_mut(&mut self) -> Option<&mut LoggedStore> {
        None
    }
    fn is_logged(&self) -> bool {
        false
    }
}

#[async_trait]
impl Access for LoggedStore {
    fn committed(&self) -> &Arc<dyn KeyValueStore> {
        self.inner()
    }
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        LoggedStore::get(self, key)
    }
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        LoggedStore::put(self, key, value)
    }
    fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        LoggedStore::put_if_absent(self, key, value)
    }
    fn delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        LoggedStore::delete(self, key)
    }
    fn scan(&self, range: &KeyRange, descending: bool) -> Result<KvIter<'_>> {
        match descending {
            false => self.range(range),
            true => self.reverse_range(range),
        }
    }
    async fn commit(&mut self) -> Result<CommitSummary> {
        LoggedStore::commit(self).await
    }
    fn commit_unlogged(&self) -> Result<()> {
        Ok(())
    }
    fn logged_mut(&mut self) -> Option<&mut LoggedStore> {
        Some(self)
    }
    fn is_logged(&self) -> bool {
        true
    }
}
