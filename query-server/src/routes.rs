//! The HTTP routes: a key, a key's metadata, a key range within a partition, health,
//! readiness and metrics. A query for a partition this instance does not serve goes one
//! hop to its owner (see `forward`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use state_core::{Partition, PartitionState, QueryLag, Staleness};

use crate::Shared;
use crate::answer::{ApiError, KeyAnswer, KeyMetadata, LagAnswer, RangeAnswer, StandbyAnswer};
use crate::forward::FORWARDED_BY;
use crate::store::{Local, Queryable, Unanswered};

/// Entries a range answers by default, and at most.
const DEFAULT_RANGE_LIMIT: usize = 1000;
const MAX_RANGE_LIMIT: usize = 10_000;

type Params = Query<HashMap<String, String>>;

/// `GET /stores/{store}/keys/{key}`: the key's value in its owner's committed state (or,
/// with `?stale=true`, possibly a standby's, with its lag).
pub(crate) async fn key(
    State(shared): State<Arc<Shared>>,
    Path((store, key)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let answer = async {
        let queryable = shared.store(&store)?;
        let staleness = staleness(&params)?;
        let (partition, key_json) = queryable.partition_of(&key)?;
        let local = queryable.get(partition, &key, staleness).await?;
        Ok::<_, ApiError>(match local {
            Local::Read { value, lag } => Json(KeyAnswer {
                store,
                key: key_json,
                partition,
                value,
                served_by: shared.endpoint.clone(),
                source: source(lag),
                lag: lag.map(lag_answer),
            })
            .into_response(),
            Local::Unanswered(why) => shared.elsewhere(partition, why, &headers, &uri).await,
        })
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /stores/{store}/keys/{key}/metadata`: the key's partition, its owner, and its
/// standbys with the lag each reports (asked with a stale read of the key, one hop each,
/// in parallel).
pub(crate) async fn metadata(
    State(shared): State<Arc<Shared>>,
    Path((store, key)): Path<(String, String)>,
) -> Response {
    let answer = async {
        let queryable = shared.store(&store)?;
        let (partition, _) = queryable.partition_of(&key)?;
        let placement = shared.placement(partition).await?;
        let path = format!("{}?stale=true", key_path(&store, &key));
        let asked = placement.standbys.iter().map(|endpoint| {
            let path = path.clone();
            let shared = shared.clone();
            async move {
                let lag = shared
                    .forwarder
                    .get_json(endpoint, &path, &shared.endpoint)
                    .await
                    .filter(|body| body["source"] == "standby")
                    .and_then(|body| serde_json::from_value::<LagAnswer>(body["lag"].clone()).ok());
                StandbyAnswer {
                    endpoint: endpoint.clone(),
                    lag,
                }
            }
        });
        let standbys = futures::future::join_all(asked).await;
        Ok::<_, ApiError>(Json(KeyMetadata {
            store,
            partition,
            owner: placement.owner,
            standbys,
            settled: placement.settled,
            local_state: queryable.state(partition).map(|s| format!("{s:?}")),
        }))
    };
    answer.await.into_response()
}

/// The path of `key` in `store`, its segments escaped.
fn key_path(store: &str, key: &str) -> String {
    format!("/stores/{}/keys/{}", escape(store), escape(key))
}

/// `segment` percent-encoded for a URL path (unreserved characters kept).
fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET /stores/{store}/partitions/{partition}/range?from=&to=&limit=`: entries of one
/// partition with keys from `from` to `to` (inclusive, either may be left out).
pub(crate) async fn range(
    State(shared): State<Arc<Shared>>,
    Path((store, partition)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let answer = async {
        let queryable = shared.store(&store)?;
        let partition = shared.partition(&store, &partition)?;
        let staleness = staleness(&params)?;
        let limit = limit(&params)?;
        let bounds = (
            params.get("from").map(String::as_str),
            params.get("to").map(String::as_str),
        );
        let local = queryable.range(partition, bounds, limit, staleness).await?;
        Ok::<_, ApiError>(match local {
            Local::Read { value, lag } => Json(RangeAnswer {
                store,
                partition,
                entries: value,
                served_by: shared.endpoint.clone(),
                source: source(lag),
                lag: lag.map(lag_answer),
            })
            .into_response(),
            Local::Unanswered(why) => shared.elsewhere(partition, why, &headers, &uri).await,
        })
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /health`: the server is up, with its partitions by state.
pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let states: HashMap<String, Vec<Partition>> = shared.manager.states().into_iter().fold(
        HashMap::new(),
        |mut by_state, (partition, state)| {
            by_state
                .entry(format!("{state:?}"))
                .or_default()
                .push(partition);
            by_state
        },
    );
    Json(json!({ "status": "up", "endpoint": shared.endpoint, "partitions": states }))
        .into_response()
}

/// `GET /ready`: 200 once no partition assigned here is restoring; 503 with what each
/// restoring one has left otherwise.
pub(crate) async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let restoring = shared.manager.partitions_in(PartitionState::Restoring);
    if restoring.is_empty() {
        return Json(json!({ "ready": true, "endpoint": shared.endpoint })).into_response();
    }
    let progress: Vec<_> = shared
        .manager
        .progress()
        .restoring()
        .into_iter()
        .map(|p| json!({ "store": p.store, "partition": p.partition, "remaining": p.remaining }))
        .collect();
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "ready": false,
            "endpoint": shared.endpoint,
            "restoring": restoring,
            "progress": progress,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// `GET /metrics`: the Prometheus text of the recorder the server was given.
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match &shared.prometheus {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_metrics",
            "this server was built without a Prometheus recorder (QueryServerBuilder::prometheus)",
        )
        .into_response(),
    }
}

impl Shared {
    fn store(&self, name: &str) -> Result<&Arc<dyn Queryable>, ApiError> {
        self.stores.get(name).ok_or_else(|| {
            let known: Vec<&String> = self.stores.keys().collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_store",
                format!("no store {name:?} is served here; stores: {known:?}"),
            )
        })
    }

    fn partition(&self, store: &str, segment: &str) -> Result<Partition, ApiError> {
        let partitions = self.manager.context().num_partitions();
        segment
            .parse::<Partition>()
            .ok()
            .filter(|p| (0..partitions).contains(p))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_partition",
                    format!(
                        "store {store} has partitions 0 to {}; not {segment:?}",
                        partitions - 1
                    ),
                )
            })
    }

    async fn placement(&self, partition: Partition) -> Result<crate::Placement, ApiError> {
        self.directory.placement(partition).await.map_err(|err| {
            ApiError::unavailable(
                "rebalancing",
                format!("cannot tell who serves partition {partition}: {err}"),
            )
            .partition(partition)
        })
    }

    /// The answer for a partition not read here: "restoring" or "moving" from this
    /// instance, else one hop to the owner the directory names, unless this query was
    /// forwarded here already.
    async fn elsewhere(
        &self,
        partition: Partition,
        why: Unanswered,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Response {
        let me = self.endpoint.as_str();
        let here = |error: &str, detail: String| {
            ApiError::unavailable(error, detail)
                .partition(partition)
                .served_by(me)
        };
        let state = match why {
            Unanswered::Restoring { remaining } => {
                let mut err = here(
                    "restoring",
                    format!("partition {partition} is restoring on {me}"),
                )
                .owner(Some(me.to_owned()));
                err.body.remaining = remaining;
                return err.into_response();
            }
            Unanswered::Moving => {
                return here(
                    "moving",
                    format!("partition {partition} is being revoked from {me}"),
                )
                .into_response();
            }
            Unanswered::NotHere { state } => state,
        };
        if let Some(by) = headers.get(FORWARDED_BY) {
            let by = by.to_str().unwrap_or("?");
            return here(
                "not_here",
                format!(
                    "{by} forwarded this query for partition {partition} to {me}, which does not \
                     serve it ({state:?}); the group has moved it on"
                ),
            )
            .into_response();
        }
        let placement = match self.placement(partition).await {
            Ok(placement) => placement,
            Err(err) => return err.served_by(me).into_response(),
        };
        if !placement.settled {
            return here(
                "rebalancing",
                format!("the group is rebalancing; partition {partition} has no owner now"),
            )
            .into_response();
        }
        match placement.owner {
            Some(owner) if owner != me => {
                let path = uri
                    .path_and_query()
                    .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
                self.forwarder.get(&owner, &path, me).await
            }
            owner => here(
                "not_here",
                format!(
                    "partition {partition} is not served on {me} ({state:?}) and the group names \
                     {} as its owner",
                    owner.as_deref().unwrap_or("no instance with an endpoint")
                ),
            )
            .owner(owner)
            .into_response(),
        }
    }
}

fn staleness(params: &HashMap<String, String>) -> Result<Staleness, ApiError> {
    match params.get("stale").map(String::as_str) {
        None | Some("false") => Ok(Staleness::ActiveOnly),
        Some("true") => Ok(Staleness::AllowStandby),
        Some(other) => Err(ApiError::bad_request(
            "bad_parameter",
            format!("stale must be true or false, not {other:?}"),
        )),
    }
}

fn limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    let Some(limit) = params.get("limit") else {
        return Ok(DEFAULT_RANGE_LIMIT);
    };
    limit
        .parse::<usize>()
        .ok()
        .filter(|l| (1..=MAX_RANGE_LIMIT).contains(l))
        .ok_or_else(|| {
            ApiError::bad_request(
                "bad_range",
                format!("limit must be 1 to {MAX_RANGE_LIMIT}, not {limit:?}"),
            )
        })
}

fn source(lag: Option<QueryLag>) -> String {
    if lag.is_some() { "standby" } else { "active" }.to_owned()
}

fn lag_answer(lag: QueryLag) -> LagAnswer {
    LagAnswer {
        next_offset: lag.next_offset,
        end_offset: lag.end_offset,
        records: lag.lag,
    }
}
