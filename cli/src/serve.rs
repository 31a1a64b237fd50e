//! `statestore demo --instances N --serve`: every instance of the scale-out also serves
//! queries over HTTP (the `query` feature: the `query-server` crate, routed through the
//! group's directory), and the demo reads a customer's total through each instance after
//! every step, while partitions move.

use std::sync::Arc;

use changelog_kafka::GroupConfig;
use state_core::{Error, Result, StoreManager};

use crate::group_instance::Stores;

/// One instance's query server, stopped when dropped.
pub struct Serving {
    endpoint: String,
    #[cfg(feature = "query")]
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Serving {
    /// Where it serves (`host:port`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        #[cfg(feature = "query")]
        if let Some(stop) = self.stop.take() {
            // The server is gone already if it failed; nothing to stop then.
            let _ = stop.send(());
        }
    }
}

/// A listener on `address` (`127.0.0.1:0`: any free port), reusable at once by a
/// restarted instance, and the endpoint it got. Call on the runtime.
#[cfg(feature = "query")]
pub fn bind(address: &str) -> Result<(tokio::net::TcpListener, String)> {
    let bound = |err: std::io::Error| Error::from(err).context(format!("listening on {address}"));
    let address: std::net::SocketAddr = address
        .parse()
        .map_err(|err| Error::invalid_input(format!("query address {address}: {err}")))?;
    let socket = tokio::net::TcpSocket::new_v4().map_err(bound)?;
    // A restarted instance takes its endpoint back while closed connections linger.
    socket.set_reuseaddr(true).map_err(bound)?;
    socket.bind(address).map_err(bound)?;
    let listener = socket.listen(1024).map_err(bound)?;
    let endpoint = listener.local_addr().map_err(bound)?.to_string();
    Ok((listener, endpoint))
}

/// Starts serving `stores` of `manager` on `listener` as `endpoint`, routing through
/// `group`'s directory, with this process's Prometheus metrics on `/metrics`.
#[cfg(feature = "query")]
pub fn start(
    listener: tokio::net::TcpListener,
    endpoint: &str,
    manager: Arc<StoreManager>,
    stores: &Stores,
    group: &GroupConfig,
) -> Result<Serving> {
    use statestore::query::{Directory, QueryServer};
    let directory: Arc<dyn Directory> = Arc::new(Arc::new(changelog_kafka::GroupDirectory::new(
        group,
        manager.context().num_partitions(),
    )?));
    let server = QueryServer::builder(manager, endpoint)
        .store(&stores.rewards)
        .store(&stores.visits)
        .directory(directory)
        .prometheus(prometheus()?)
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(err) = server.serve(listener, shutdown).await {
            eprintln!("query server: {err}");
        }
    });
    Ok(Serving {
        endpoint: endpoint.to_owned(),
        stop: Some(stop),
    })
}

/// The process's Prometheus recorder, installed the first time it is asked for.
#[cfg(feature = "query")]
fn prometheus() -> Result<metrics_exporter_prometheus::PrometheusHandle> {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<
        std::result::Result<metrics_exporter_prometheus::PrometheusHandle, String>,
    > = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|err| err.to_string())
        })
        .clone()
        .map_err(|err| Error::internal(format!("installing the metrics recorder: {err}")))
}

/// One line saying what `GET /stores/rewards/keys/{customer}` through `endpoint` answered.
#[cfg(feature = "query")]
pub async fn read_total(endpoint: &str, customer: &str) -> String {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let url = format!("http://{endpoint}/stores/rewards/keys/{customer}");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let answer = async {
        let uri = url.parse().map_err(|err| format!("{err}"))?;
        let response = client.get(uri).await.map_err(|err| err.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|err| format!("{status}: {err}"))?;
        Ok::<_, String>(if status.is_success() {
            format!(
                "{} points (partition {}, read on {})",
                json["value"],
                json["partition"],
                json["served_by"].as_str().unwrap_or("?")
            )
        } else {
            format!("{status} {}: {}", json["error"], json["detail"])
        })
    };
    let timed = tokio::time::timeout(std::time::Duration::from_secs(5), answer).await;
    match timed {
        Ok(Ok(line)) | Ok(Err(line)) => line,
        Err(_) => "no answer within 5 s".to_owned(),
    }
}

/// Without the `query` feature: an error that names it.
#[cfg(not(feature = "query"))]
pub fn bind(address: &str) -> Result<((), String)> {
    Err(Error::unsupported(format!(
        "--serve (on {address}): this statestore binary was built without queries; build it \
         with `cargo run -p statestore-cli --features query` (or --features full)"
    )))
}

/// Without the `query` feature [`bind`] fails first; never reached.
#[cfg(not(feature = "query"))]
pub fn start(
    _: (),
    endpoint: &str,
    _: Arc<StoreManager>,
    _: &Stores,
    _: &GroupConfig,
) -> Result<Serving> {
    Err(Error::unsupported(format!(
        "--serve on {endpoint}: built without the query feature"
    )))
}

/// Without the `query` feature there is nothing to read.
#[cfg(not(feature = "query"))]
pub async fn read_total(_: &str, _: &str) -> String {
    String::new()
}
