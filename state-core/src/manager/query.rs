//! Interactive queries against this instance's stores (Kafka Streams'
//! `KafkaStreams#store` with `StoreQueryParameters`): which partition a key lives in,
//! and a typed answer for one partition that never hands out a store still restoring,
//! moving away or half-built.
//!
//! A query reads the store's **committed** side: what the last commit made durable, never
//! the writes processing has buffered since (under exactly-once they may still be
//! aborted). It takes no lock that processing or a commit holds; a commit applies its
//! batch atomically, so a read sees each key before or after it.

use std::sync::{Arc, Weak};

use super::state::Readable;
use super::{PartitionState, StoreHandle, StoreManager};
use crate::{Error, ErrorKind, KeyRange, KeyValueStore, Offset, Partition, Result, Serde};

/// Whether a query may be answered from a standby copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Staleness {
    /// Only the partition's owner answers, from committed state (the default).
    #[default]
    ActiveOnly,
    /// A standby may answer too, saying how far it lags (Kafka Streams'
    /// `StoreQueryParameters#enableStaleStores`).
    AllowStandby,
}

/// How far a standby copy lags its changelog when it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLag {
    /// The next changelog offset the copy will apply.
    pub next_offset: Offset,
    /// The changelog's end offset (the last stable offset under read-committed).
    pub end_offset: Offset,
    /// `end_offset - next_offset`: records (at most) the copy has not applied.
    pub lag: u64,
}

/// What this instance can answer for one partition of one store now.
pub enum PartitionQuery<K, V> {
    /// Owned and restored here: reads see the last commit.
    Active(ReadOnlyStore<K, V>),
    /// A standby copy here, readable because the query allowed stale reads.
    Standby {
        /// The copy.
        store: ReadOnlyStore<K, V>,
        /// How far it lagged when asked.
        lag: QueryLag,
    },
    /// Assigned here and restoring; not served until the restore ends.
    Restoring {
        /// Offsets left to restore of this store, when its restore has started.
        remaining: Option<u64>,
    },
    /// Being revoked: committing and closing, or becoming a standby.
    Moving,
    /// Not served here: never assigned, closed, lost, or a standby the query did not
    /// allow to answer.
    NotHere {
        /// The partition's state here, if it has one.
        state: Option<PartitionState>,
    },
}

impl<K, V> std::fmt::Debug for PartitionQuery<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PartitionQuery::Active(store) => write!(f, "Active({})", store.name),
            PartitionQuery::Standby { store, lag } => {
                write!(f, "Standby({}, {lag:?})", store.name)
            }
            PartitionQuery::Restoring { remaining } => write!(f, "Restoring({remaining:?})"),
            PartitionQuery::Moving => f.write_str("Moving"),
            PartitionQuery::NotHere { state } => write!(f, "NotHere({state:?})"),
        }
    }
}

/// One store partition, typed and read-only, as a query sees it.
pub struct ReadOnlyStore<K, V> {
    name: Arc<str>,
    partition: Partition,
    store: Arc<dyn KeyValueStore>,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> ReadOnlyStore<K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The value of `key`. A store closed since the query was answered (its partition
    /// moved on) is an [`ErrorKind::Closed`] error, never a value of another state.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let bytes = self.keys.serialize(key)?;
        self.store
            .get(&bytes)
            .map_err(|err| self.in_store(err))?
            .map(|value| {
                self.values
                    .deserialize(&value)
                    .map_err(|e| self.in_store(e))
            })
            .transpose()
    }

    /// Up to `limit` entries with keys in `range` of serialized key bytes, ascending.
    pub fn range(&self, range: &KeyRange, limit: usize) -> Result<Vec<(K, V)>> {
        let mut entries = Vec::new();
        for entry in self
            .store
            .range(range)
            .map_err(|err| self.in_store(err))?
            .take(limit)
        {
            let (key, value) = entry.map_err(|err| self.in_store(err))?;
            entries.push((
                self.keys.deserialize(&key).map_err(|e| self.in_store(e))?,
                self.values
                    .deserialize(&value)
                    .map_err(|e| self.in_store(e))?,
            ));
        }
        Ok(entries)
    }

    /// The backend's estimate of its number of keys (Kafka Streams' `approximateNumEntries`).
    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.store
            .approximate_num_entries()
            .map_err(|err| self.in_store(err))
    }

    /// The key serde, to serialize a key the way the store does.
    pub fn key_serde(&self) -> &Arc<dyn Serde<K>> {
        &self.keys
    }

    fn in_store(&self, err: Error) -> Error {
        err.context(format!(
            "querying store {} partition {}",
            self.name, self.partition
        ))
    }
}

impl StoreManager {
    /// The partition that holds `key` in `handle`'s store: Kafka's default partitioner
    /// (murmur2) on the key as the store's key serde writes it, over the context's
    /// partition count — where a Java producer, or a librdkafka one with
    /// `partitioner=murmur2_random`, wrote the input record with that key.
    pub fn partition_for_key<K, V>(
        &self,
        handle: &StoreHandle<K, V>,
        key: &K,
    ) -> Result<Partition> {
        self.check_handle(handle)?;
        let bytes = handle.keys.serialize(key)?;
        crate::partition_for_key(&bytes, self.context.num_partitions())
    }

    /// What this instance can answer for `partition` of `handle`'s store now (see
    /// [`PartitionQuery`]). Takes no lock that processing or a commit holds; a standby's
    /// lag costs one end-offset lookup on its changelog.
    pub async fn query<K, V>(
        &self,
        handle: &StoreHandle<K, V>,
        partition: Partition,
        staleness: Staleness,
    ) -> Result<PartitionQuery<K, V>> {
        self.check_handle(handle)?;
        let Some((state, readable)) = self.table.readable(partition) else {
            return Ok(PartitionQuery::NotHere { state: None });
        };
        let view = |store: &Arc<dyn KeyValueStore>| ReadOnlyStore {
            name: handle.name.clone(),
            partition,
            store: store.clone(),
            keys: handle.keys.clone(),
            values: handle.values.clone(),
        };
        // A store gone since the partition last moved (closed, its handles dropped) is
        // not readable any more: the partition is on its way elsewhere.
        let upgrade = |stores: &[Weak<dyn KeyValueStore>]| stores.get(handle.index)?.upgrade();
        Ok(match (readable, staleness) {
            (Readable::Active(stores), _) => match upgrade(&stores) {
                Some(store) => PartitionQuery::Active(view(&store)),
                None => PartitionQuery::Moving,
            },
            (Readable::Standby(stores), Staleness::AllowStandby) => {
                let Some(next_offset) = upgrade(&stores)
                    .map(|store| store.position().map(|p| p.next_offset(partition)))
                    .transpose()?
                else {
                    return Ok(PartitionQuery::Moving);
                };
                // No store is held across the wait for the changelog's end.
                let lag = self.lag_of(handle.index, next_offset, partition).await?;
                match upgrade(&stores) {
                    Some(store) => PartitionQuery::Standby {
                        store: view(&store),
                        lag,
                    },
                    None => PartitionQuery::Moving,
                }
            }
            (Readable::Standby(_) | Readable::Nothing, _) => match state {
                PartitionState::Restoring => PartitionQuery::Restoring {
                    remaining: self
                        .progress
                        .get(&handle.name, partition)
                        .map(|progress| progress.remaining),
                },
                PartitionState::Revoking => PartitionQuery::Moving,
                state => PartitionQuery::NotHere { state: Some(state) },
            },
        })
    }

    fn check_handle<K, V>(&self, handle: &StoreHandle<K, V>) -> Result<()> {
        if handle.manager == self.id {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "store handle {} belongs to another store manager",
                handle.name
            )))
        }
    }

    /// How far a standby of registered store `index` whose next offset is `next_offset`
    /// lags its changelog.
    async fn lag_of(
        &self,
        index: usize,
        next_offset: Offset,
        partition: Partition,
    ) -> Result<QueryLag> {
        let registered = &self.stores[index];
        let context = self.context.for_partition(partition);
        let Some(topic) = registered.topic(&context).await? else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "store {} has no changelog, so no standby to query",
                    registered.recipe.name()
                ),
            ));
        };
        let end_offset = registered
            .reader(&context, topic)
            .await?
            .offsets(partition)
            .await?
            .end;
        Ok(QueryLag {
            next_offset,
            end_offset,
            lag: u64::try_from(end_offset - next_offset).unwrap_or(0),
        })
    }
}
