//! What the server answers: JSON bodies for values, metadata and every way a query can
//! fail to be answered now, with HTTP statuses that say which kind of failure it is.
//!
//! | status | `error` | meaning |
//! | --- | --- | --- |
//! | 400 | `bad_key`, `key_too_long`, `bad_range` | the request cannot name a key of this store |
//! | 404 | `unknown_store`, `unknown_partition` | no such store or partition |
//! | 503 | `restoring` | the partition is restoring on its owner; `remaining` offsets left |
//! | 503 | `moving` | the partition is being revoked from the instance asked |
//! | 503 | `not_here` | the instance asked does not serve it and cannot forward (no owner known, or forwarded already) |
//! | 503 | `rebalancing` | the group is rebalancing; no owner is known |
//! | 502 | `owner_unreachable` | forwarding to the owner failed |
//! | 504 | `owner_timeout` | the owner did not answer in time |
//! | 500 | `internal` | the store failed to read |
//!
//! Every 503 carries `Retry-After: 1`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use state_core::Partition;

/// A value read for a key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyAnswer {
    /// The store.
    pub store: String,
    /// The key, as JSON.
    pub key: Value,
    /// The partition that holds it.
    pub partition: Partition,
    /// Its value in the committed state read; `null` when the key has none.
    pub value: Value,
    /// The endpoint of the instance that read it.
    pub served_by: String,
    /// `active`, or `standby` for a stale read.
    pub source: String,
    /// For a standby: how far it lagged its changelog.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lag: Option<LagAnswer>,
}

/// A standby's lag, as answered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct LagAnswer {
    /// The next changelog offset the standby applies.
    pub next_offset: i64,
    /// The changelog's end offset.
    pub end_offset: i64,
    /// Records (at most) the standby has not applied.
    pub records: u64,
}

/// Entries of a key range within one partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RangeAnswer {
    /// The store.
    pub store: String,
    /// The partition.
    pub partition: Partition,
    /// `[key, value]` pairs in the order of the serialized keys.
    pub entries: Vec<(Value, Value)>,
    /// The endpoint of the instance that read them.
    pub served_by: String,
    /// `active` or `standby`.
    pub source: String,
    /// For a standby: how far it lagged its changelog.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lag: Option<LagAnswer>,
}

/// Where a key lives (Kafka Streams' `KeyQueryMetadata`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyMetadata {
    /// The store.
    pub store: String,
    /// The partition that holds the key.
    pub partition: Partition,
    /// The owner's endpoint, if known.
    pub owner: Option<String>,
    /// The instances with a standby copy, each with its lag as it answered.
    pub standbys: Vec<StandbyAnswer>,
    /// Whether the group was settled when asked.
    pub settled: bool,
    /// The partition's state on the instance asked (`Active`, `Restoring`, ...), if any.
    pub local_state: Option<String>,
}

/// One standby copy of a key's partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StandbyAnswer {
    /// The instance holding it.
    pub endpoint: String,
    /// How far it lags its changelog, as it said when asked; `None` when it did not
    /// answer with one (down, or no longer holding the copy).
    pub lag: Option<LagAnswer>,
}

/// The body of every error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The kind, from the table in the [module docs](self).
    pub error: String,
    /// What happened and where.
    pub detail: String,
    /// The partition concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partition: Option<Partition>,
    /// For `restoring`: offsets left to restore.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remaining: Option<u64>,
    /// The owner's endpoint, when known.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owner: Option<String>,
    /// The endpoint of the instance that answered.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub served_by: Option<String>,
}

/// An answer that is not a value: a status and an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (boxed: an error travels through every `Result` of a request).
    pub body: Box<ErrorBody>,
}

impl ApiError {
    /// An error of kind `error` with `status`.
    pub fn new(status: StatusCode, error: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: error.to_owned(),
                detail: detail.into(),
                partition: None,
                remaining: None,
                owner: None,
                served_by: None,
            }),
        }
    }

    pub(crate) fn bad_request(error: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, detail)
    }

    pub(crate) fn unavailable(error: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    pub(crate) fn partition(mut self, partition: Partition) -> Self {
        self.body.partition = Some(partition);
        self
    }

    pub(crate) fn owner(mut self, owner: Option<String>) -> Self {
        self.body.owner = owner;
        self
    }

    pub(crate) fn served_by(mut self, endpoint: &str) -> Self {
        self.body.served_by = Some(endpoint.to_owned());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(*self.body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
