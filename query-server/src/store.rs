//! One registered store, its types erased behind [`Queryable`] so the routes handle every
//! store alike: keys come in as URL segments and values leave as JSON.

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use state_core::{
    ErrorKind, KeyRange, Partition, PartitionQuery, PartitionState, QueryLag, ReadOnlyStore,
    Staleness, StoreHandle, StoreManager,
};

use crate::answer::ApiError;
use crate::keys::{parse_key, to_json};

/// What this instance answered for one partition.
pub(crate) enum Local<T> {
    /// Read from the owner's committed state, or from a standby with its lag.
    Read { value: T, lag: Option<QueryLag> },
    /// Not read here.
    Unanswered(Unanswered),
}

/// Why a partition was not read here.
pub(crate) enum Unanswered {
    /// Restoring here; offsets left when known.
    Restoring { remaining: Option<u64> },
    /// Being revoked here (or closed under the query's feet).
    Moving,
    /// Not served here.
    NotHere { state: Option<PartitionState> },
}

impl<T> Local<T> {
    /// A read's value through `f`; an unanswered query as it was.
    fn try_map<U>(self, f: impl FnOnce(T) -> Result<U, ApiError>) -> Result<Local<U>, ApiError> {
        Ok(match self {
            Local::Read { value, lag } => Local::Read {
                value: f(value)?,
                lag,
            },
            Local::Unanswered(why) => Local::Unanswered(why),
        })
    }
}

/// A store the server can query, whatever its key and value types.
#[async_trait]
pub(crate) trait Queryable: Send + Sync {
    /// The partition of the key in URL segment `segment`, and the key as JSON.
    fn partition_of(&self, segment: &str) -> Result<(Partition, Value), ApiError>;

    /// The value of the key in `segment` in `partition`, as JSON.
    async fn get(
        &self,
        partition: Partition,
        segment: &str,
        staleness: Staleness,
    ) -> Result<Local<Value>, ApiError>;

    /// Up to `limit` entries of `partition` with keys from `from` to `to` (both
    /// inclusive, either open), in serialized-key order.
    async fn range(
        &self,
        partition: Partition,
        bounds: (Option<&str>, Option<&str>),
        limit: usize,
        staleness: Staleness,
    ) -> Result<Local<Vec<(Value, Value)>>, ApiError>;

    /// The partition's state here.
    fn state(&self, partition: Partition) -> Option<PartitionState>;
}

/// A store handle of `manager`, queryable.
pub(crate) struct Typed<K, V> {
    pub(crate) manager: Arc<StoreManager>,
    pub(crate) handle: StoreHandle<K, V>,
}

impl<K, V> Typed<K, V>
where
    K: DeserializeOwned + Serialize + Send + Sync + 'static,
    V: Serialize + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        self.handle.name()
    }

    /// Runs `read` on the store this instance may read for `partition`, if any.
    async fn with_store<T>(
        &self,
        partition: Partition,
        staleness: Staleness,
        read: impl FnOnce(&ReadOnlyStore<K, V>) -> state_core::Result<T> + Send,
    ) -> Result<Local<T>, ApiError> {
        let answer = self
            .manager
            .query(&self.handle, partition, staleness)
            .await
            .map_err(|err| ApiError::internal(err.to_string()).partition(partition))?;
        let (store, lag) = match answer {
            PartitionQuery::Active(store) => (store, None),
            PartitionQuery::Standby { store, lag } => (store, Some(lag)),
            PartitionQuery::Restoring { remaining } => {
                return Ok(Local::Unanswered(Unanswered::Restoring { remaining }));
            }
            PartitionQuery::Moving => return Ok(Local::Unanswered(Unanswered::Moving)),
            PartitionQuery::NotHere { state } => {
                return Ok(Local::Unanswered(Unanswered::NotHere { state }));
            }
        };
        match read(&store) {
            Ok(value) => Ok(Local::Read { value, lag }),
            // Revoked and closed between the answer and the read.
            Err(err) if err.kind() == ErrorKind::Closed => {
                Ok(Local::Unanswered(Unanswered::Moving))
            }
            Err(err) => Err(ApiError::internal(err.to_string()).partition(partition)),
        }
    }

    fn bound(
        &self,
        segment: Option<&str>,
        serialize: &dyn Fn(&K) -> state_core::Result<Vec<u8>>,
    ) -> Result<Bound<Vec<u8>>, ApiError> {
        let Some(segment) = segment else {
            return Ok(Bound::Unbounded);
        };
        let key: K = parse_key(self.name(), segment)?;
        serialize(&key)
            .map(Bound::Included)
            .map_err(|err| ApiError::bad_request("bad_range", err.to_string()))
    }
}

#[async_trait]
impl<K, V> Queryable for Typed<K, V>
where
    K: DeserializeOwned + Serialize + Send + Sync + 'static,
    V: Serialize + Send + Sync + 'static,
{
    fn partition_of(&self, segment: &str) -> Result<(Partition, Value), ApiError> {
        let key: K = parse_key(self.name(), segment)?;
        let partition = self
            .manager
            .partition_for_key(&self.handle, &key)
            .map_err(|err| ApiError::bad_request("bad_key", err.to_string()))?;
        Ok((partition, to_json(self.name(), &key)?))
    }

    async fn get(
        &self,
        partition: Partition,
        segment: &str,
        staleness: Staleness,
    ) -> Result<Local<Value>, ApiError> {
        let key: K = parse_key(self.name(), segment)?;
        self.with_store(partition, staleness, |store| store.get(&key))
            .await?
            .try_map(|value| match value {
                Some(value) => to_json(self.name(), &value),
                None => Ok(Value::Null),
            })
    }

    async fn range(
        &self,
        partition: Partition,
        (from, to): (Option<&str>, Option<&str>),
        limit: usize,
        staleness: Staleness,
    ) -> Result<Local<Vec<(Value, Value)>>, ApiError> {
        let keys = self.handle.key_serde().clone();
        let serialize = move |key: &K| keys.serialize(key);
        let range = KeyRange {
            start: self.bound(from, &serialize)?,
            end: self.bound(to, &serialize)?,
        };
        self.with_store(partition, staleness, |store| store.range(&range, limit))
            .await?
            .try_map(|entries| {
                entries
                    .into_iter()
                    .map(|(k, v)| Ok((to_json(self.name(), &k)?, to_json(self.name(), &v)?)))
                    .collect()
            })
    }

    fn state(&self, partition: Partition) -> Option<PartitionState> {
        self.manager.state(partition)
    }
}
