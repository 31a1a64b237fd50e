//! # query-server
//!
//! Interactive queries over HTTP, on every instance of a statestore application: read
//! any key through any instance, answered from the owner's committed state — here, or
//! one hop away — and a typed "not now" while its partition restores or moves, never a
//! wrong or half-restored value (Kafka Streams leaves this RPC layer to each
//! application, and its queries throw `InvalidStateStoreException` through every
//! rebalance).
//!
//! ```no_run
//! # async fn run(
//! #     manager: std::sync::Arc<state_core::StoreManager>,
//! #     rewards: state_core::StoreHandle<String, f64>,
//! #     directory: std::sync::Arc<dyn query_server::Directory>,
//! # ) -> state_core::Result<()> {
//! use query_server::QueryServer;
//!
//! let server = QueryServer::builder(manager, "127.0.0.1:7070")
//!     .store(&rewards)
//!     .directory(directory) // e.g. a StatefulConsumer's GroupDirectory
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7070").await?;
//! server.serve(listener, std::future::pending()).await
//! # }
//! ```
//!
//! ## Routes
//! - `GET /stores/{store}/keys/{key}` — the key's value, `?stale=true` to let a standby
//!   answer with its lag ([`KeyAnswer`]).
//! - `GET /stores/{store}/keys/{key}/metadata` — partition, owner, and standbys with
//!   their lag ([`KeyMetadata`]).
//! - `GET /stores/{store}/partitions/{partition}/range?from=&to=&limit=` — a key range
//!   within one partition ([`RangeAnswer`]).
//! - `GET /health`, `GET /ready` (503 while a partition restores), `GET /metrics`
//!   (Prometheus text, when built with a recorder's handle).
//!
//! A key in a URL is read as JSON of the key type when it is (`42`), as a string
//! otherwise (`customer-7`). Every failure is a JSON [`ErrorBody`] with a status that
//! says its kind (the table in [`answer`]).

pub mod answer;
mod directory;
mod forward;
mod keys;
mod routes;
mod store;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde::de::DeserializeOwned;
use state_core::{Error, ErrorKind, Result, StoreHandle, StoreManager};
use tokio::net::TcpListener;

pub use answer::{
    ApiError, ErrorBody, KeyAnswer, KeyMetadata, LagAnswer, RangeAnswer, StandbyAnswer,
};
pub use directory::{Directory, Placement, Standalone};
pub use forward::FORWARDED_BY;
pub use keys::MAX_KEY_LEN;
/// The Prometheus exporter whose handle [`QueryServerBuilder::prometheus`] takes, at the
/// version this crate is built with.
pub use metrics_exporter_prometheus as prometheus;

use forward::Forwarder;
use store::{Queryable, Typed};

/// How long a forwarded query waits for the owner by default.
pub const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// What every route shares.
pub(crate) struct Shared {
    pub(crate) manager: Arc<StoreManager>,
    /// This instance's endpoint, as the group advertises it.
    pub(crate) endpoint: String,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) stores: BTreeMap<String, Arc<dyn Queryable>>,
    pub(crate) forwarder: Forwarder,
    pub(crate) prometheus: Option<PrometheusHandle>,
}

/// The query server of one instance (see the [crate docs](crate)).
#[derive(Clone)]
pub struct QueryServer {
    shared: Arc<Shared>,
}

/// Builds a [`QueryServer`].
pub struct QueryServerBuilder {
    manager: Arc<StoreManager>,
    endpoint: String,
    directory: Arc<dyn Directory>,
    stores: BTreeMap<String, Arc<dyn Queryable>>,
    forward_timeout: Duration,
    prometheus: Option<PrometheusHandle>,
}

impl QueryServer {
    /// A server for `manager`'s stores on the instance the group knows by `endpoint`
    /// (`host:port`, the one given to the group, e.g. `GroupConfig::with_endpoint`).
    pub fn builder(manager: Arc<StoreManager>, endpoint: impl Into<String>) -> QueryServerBuilder {
        QueryServerBuilder {
            manager,
            endpoint: endpoint.into(),
            directory: Arc::new(Standalone),
            stores: BTreeMap::new(),
            forward_timeout: DEFAULT_FORWARD_TIMEOUT,
            prometheus: None,
        }
    }

    /// The routes, to serve or to mount in an application's own router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/stores/{store}/keys/{key}", get(routes::key))
            .route("/stores/{store}/keys/{key}/metadata", get(routes::metadata))
            .route(
                "/stores/{store}/partitions/{partition}/range",
                get(routes::range),
            )
            .route("/health", get(routes::health))
            .route("/ready", get(routes::ready))
            .route("/metrics", get(routes::metrics))
            .with_state(self.shared.clone())
    }

    /// Serves the routes on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let address = listener
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|err| {
                Error::new(
                    ErrorKind::Io,
                    format!("serving queries on {address}: {err}"),
                )
            })
    }
}

impl QueryServerBuilder {
    /// Serves `handle`'s store: keys and values as JSON through serde, partitioned by the
    /// store's key serde.
    pub fn store<K, V>(mut self, handle: &StoreHandle<K, V>) -> Self
    where
        K: DeserializeOwned + Serialize + Send + Sync + 'static,
        V: Serialize + Send + Sync + 'static,
    {
        self.stores.insert(
            handle.name().to_owned(),
            Arc::new(Typed {
                manager: self.manager.clone(),
                handle: handle.clone(),
            }),
        );
        self
    }

    /// Routes partitions not served here through `directory` (default: [`Standalone`],
    /// nothing is served elsewhere).
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = directory;
        self
    }

    /// How long a forwarded query waits for the owner (default
    /// [`DEFAULT_FORWARD_TIMEOUT`]).
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.forward_timeout = timeout;
        self
    }

    /// Serves `GET /metrics` from this Prometheus recorder's handle.
    pub fn prometheus(mut self, handle: PrometheusHandle) -> Self {
        self.prometheus = Some(handle);
        self
    }

    /// The server.
    pub fn build(self) -> QueryServer {
        QueryServer {
            shared: Arc::new(Shared {
                manager: self.manager,
                endpoint: self.endpoint,
                directory: self.directory,
                stores: self.stores,
                forwarder: Forwarder::new(self.forward_timeout),
                prometheus: self.prometheus,
            }),
        }
    }
}
