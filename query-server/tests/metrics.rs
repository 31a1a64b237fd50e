//! `GET /metrics` over real HTTP, parsed by a Prometheus text parser: a restore of a
//! known changelog shows its records, and a standby with a known backlog its lag. The
//! recorder is process-wide, so this file is a test binary of its own.

use std::sync::Arc;

use backend_memory::MemorySupplier;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_parse::{Scrape, Value};
use query_server::QueryServer;
use query_server::prometheus::PrometheusBuilder;
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    ProcessingGuarantee, Serdes, SinkOptions, StoreBuilder, StoreContext, StoreHandle, StoreManager,
};
use tokio::net::TcpListener;

const PARTITIONS: i32 = 4;

fn manager(
    changelog: &InMemoryChangelog,
    id: &str,
    dir: &tempfile::TempDir,
) -> (Arc<StoreManager>, StoreHandle<String, i64>) {
    let context = StoreContext::new("metrics-http", 0, PARTITIONS, dir.path())
        .unwrap()
        .with_changelog(Arc::new(changelog.clone()));
    let mut manager = StoreManager::new(context);
    let totals = manager
        .add_store(StoreBuilder::new(
            MemorySupplier::new("totals"),
            Serdes::string(),
            Serdes::i64(),
        ))
        .unwrap();
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, id);
    manager
        .use_sink(Arc::new(changelog.sink_now(&options).unwrap()))
        .unwrap();
    (Arc::new(manager), totals)
}

async fn write(manager: &StoreManager, totals: &StoreHandle<String, i64>, p: i32, n: i64) {
    let active = manager.active(p).await.unwrap();
    let store = active.store(totals).unwrap();
    for i in 0..n {
        store.put(&format!("p{p}-key-{i}"), &i).unwrap();
    }
    drop(store);
    drop(active);
    manager.commit().await.unwrap();
}

async fn scrape(endpoint: &str) -> Scrape {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let url = format!("http://{endpoint}/metrics").parse().unwrap();
    let response = client.get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|err| panic!("not Prometheus text: {err}\n{text}"))
}

fn value(scrape: &Scrape, metric: &str, partition: &str) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == metric
                && s.labels.get("store") == Some("totals")
                && s.labels.get("partition") == Some(partition)
        })
        .unwrap_or_else(|| panic!("no {metric} of totals partition {partition}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{metric}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_known_restore_and_a_known_standby_lag() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let changelog = InMemoryChangelog::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (writer, totals) = manager(&changelog, "writer", &dirs[0]);
    for (_, restored) in writer.assign_all(&[0, 1]).await {
        restored.unwrap();
    }
    write(&writer, &totals, 0, 700).await;
    write(&writer, &totals, 1, 300).await;

    // A second instance takes partition 0 over (700 records restored) and stands by
    // for partition 1, which then gets 45 more records it has not tailed.
    let (reader, _) = manager(&changelog, "reader", &dirs[1]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let server = QueryServer::builder(reader.clone(), endpoint.clone())
        .prometheus(handle)
        .build();
    tokio::spawn(server.serve(listener, std::future::pending()));
    writer
        .revoke(&[0], state_core::AfterRevoke::Close)
        .await
        .unwrap();
    for (_, restored) in reader.assign_all(&[0]).await {
        restored.unwrap();
    }
    reader.set_standbys(&[1].into()).await.unwrap();
    reader.update_standbys().await.unwrap();
    write(&writer, &totals, 1, 45).await;
    let lags = reader.standby_lags().await.unwrap();
    assert_eq!(lags[0].lag, 45, "{lags:?}");

    let scrape = scrape(&endpoint).await;
    assert_eq!(
        value(&scrape, "statestore_restore_records_total", "0"),
        700.0
    );
    assert_eq!(value(&scrape, "statestore_standby_record_lag", "1"), 45.0);
}
