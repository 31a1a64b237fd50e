//! The store manager with its key and value types erased, so one consumer-group member
//! can drive every store of an application: one manager per store name, together one
//! store per (store name, partition).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{AfterRevoke, PartitionRole, StandbyLag, StoreManager};
use crate::{CommitSummary, Partition, RestoreSummary, Result, SourceOffsets, StoreContext};

/// What a consumer-group member needs from a [`StoreManager`], whatever its types.
#[async_trait]
pub trait PartitionedStores: Send + Sync {
    /// The store name.
    fn store_name(&self) -> &str;

    /// The context partitions are built with (guarantee, partition count, ...).
    fn context(&self) -> &StoreContext;

    /// Partitions in `role`, ascending.
    fn partitions_in(&self, role: PartitionRole) -> Vec<Partition>;

    /// See [`StoreManager::assign_while`].
    async fn assign_while(
        &self,
        partition: Partition,
        still_wanted: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Option<RestoreSummary>>;

    /// See [`StoreManager::revoke`].
    async fn revoke(&self, partitions: &[Partition], after: AfterRevoke) -> Result<()>;

    /// See [`StoreManager::lose`].
    async fn lose(&self, partitions: &[Partition]) -> Result<()>;

    /// See [`StoreManager::commit`].
    async fn commit(&self) -> Result<Vec<(Partition, CommitSummary)>>;

    /// See [`StoreManager::add_standby`].
    async fn add_standby(&self, partition: Partition) -> Result<()>;

    /// See [`StoreManager::remove_standbys`].
    async fn remove_standbys(&self, partitions: &[Partition]) -> Result<()>;

    /// See [`StoreManager::update_standbys`].
    async fn update_standbys(&self) -> Result<u64>;

    /// See [`StoreManager::standby_lags`].
    async fn standby_lags(&self) -> Result<Vec<StandbyLag>>;

    /// Hands `source` to active `partition`'s store for its next commit (see
    /// [`TypedKeyValueStore::set_source_offsets`](crate::TypedKeyValueStore::set_source_offsets));
    /// nothing happens when the partition is not active here.
    async fn set_source_offsets(&self, partition: Partition, source: SourceOffsets);

    /// See [`StoreManager::close`].
    async fn close(&self) -> Result<()>;
}

#[async_trait]
impl<K: 'static, V: 'static> PartitionedStores for StoreManager<K, V> {
    fn store_name(&self) -> &str {
        StoreManager::store_name(self)
    }

    fn context(&self) -> &StoreContext {
        StoreManager::context(self)
    }

    fn partitions_in(&self, role: PartitionRole) -> Vec<Partition> {
        StoreManager::partitions_in(self, role)
    }

    async fn assign_while(
        &self,
        partition: Partition,
        still_wanted: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Option<RestoreSummary>> {
        StoreManager::assign_while(self, partition, still_wanted).await
    }

    async fn revoke(&self, partitions: &[Partition], after: AfterRevoke) -> Result<()> {
        StoreManager::revoke(self, partitions, after).await
    }

    async fn lose(&self, partitions: &[Partition]) -> Result<()> {
        StoreManager::lose(self, partitions).await
    }

    async fn commit(&self) -> Result<Vec<(Partition, CommitSummary)>> {
        StoreManager::commit(self).await
    }

    async fn add_standby(&self, partition: Partition) -> Result<()> {
        StoreManager::add_standby(self, partition).await
    }

    async fn remove_standbys(&self, partitions: &[Partition]) -> Result<()> {
        StoreManager::remove_standbys(self, partitions).await
    }

    async fn update_standbys(&self) -> Result<u64> {
        StoreManager::update_standbys(self).await
    }

    async fn standby_lags(&self) -> Result<Vec<StandbyLag>> {
        StoreManager::standby_lags(self).await
    }

    async fn set_source_offsets(&self, partition: Partition, source: SourceOffsets) {
        if let Some(store) = self.store(partition).await {
            store.set_source_offsets(source);
        }
    }

    async fn close(&self) -> Result<()> {
        StoreManager::close(self).await
    }
}

/// What each store of a partition restored when the partition was assigned.
pub type PartitionRestores = BTreeMap<String, Option<RestoreSummary>>;
