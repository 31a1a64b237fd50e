//! The query server over real HTTP on 127.0.0.1: two instances sharing one in-process
//! changelog, each serving the partitions assigned to it; a key read through either
//! instance gives its owner's committed value (the other forwards one hop); bad input is
//! a 4xx with a body that says what, and an owner that cannot be reached is a 502/504.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backend_memory::MemorySupplier;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use query_server::{Directory, Placement, QueryServer};
use serde_json::Value;
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    Partition, ProcessingGuarantee, Result, Serdes, SinkOptions, StoreBuilder, StoreContext,
    StoreHandle, StoreManager,
};
use tokio::net::TcpListener;

const PARTITIONS: i32 = 4;

/// Owners by partition, set by the test.
#[derive(Default)]
struct Table(Mutex<BTreeMap<Partition, String>>);

#[async_trait]
impl Directory for Table {
    async fn placement(&self, partition: Partition) -> Result<Placement> {
        Ok(Placement {
            owner: self.0.lock().unwrap().get(&partition).cloned(),
            standbys: Vec::new(),
            settled: true,
        })
    }
}

struct Node {
    manager: Arc<StoreManager>,
    totals: StoreHandle<String, i64>,
    endpoint: String,
    _dir: tempfile::TempDir,
}

async fn node(changelog: &InMemoryChangelog, directory: Arc<Table>, id: usize) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("shop", 0, PARTITIONS, dir.path())
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
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, format!("shop-{id}"));
    manager
        .use_sink(Arc::new(changelog.sink_now(&options).unwrap()))
        .unwrap();
    let manager = Arc::new(manager);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let server = QueryServer::builder(manager.clone(), endpoint.clone())
        .store(&totals)
        .directory(directory)
        .forward_timeout(Duration::from_millis(500))
        .build();
    tokio::spawn(server.serve(listener, std::future::pending()));
    Node {
        manager,
        totals,
        endpoint,
        _dir: dir,
    }
}

async fn get(url: &str) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}

/// Puts `total` for `key` in whichever node owns its partition, and commits.
async fn put(node: &Node, key: &str, total: i64) {
    let partition = node
        .manager
        .partition_for_key(&node.totals, &key.to_owned())
        .unwrap();
    let active = node.manager.active(partition).await.expect("owned here");
    active
        .store(&node.totals)
        .unwrap()
        .put(&key.to_owned(), &total)
        .unwrap();
    drop(active);
    node.manager.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_instance_answers_for_any_key_with_the_owners_committed_value() {
    let changelog = InMemoryChangelog::new();
    let directory = Arc::new(Table::default());
    let a = node(&changelog, directory.clone(), 1).await;
    let b = node(&changelog, directory.clone(), 2).await;
    for (p, owner) in [(0, &a), (1, &a), (2, &b), (3, &b)] {
        for (_, restored) in owner.manager.assign_all(&[p]).await {
            restored.unwrap();
        }
        directory
            .0
            .lock()
            .unwrap()
            .insert(p, owner.endpoint.clone());
    }
    let keys: Vec<String> = (0..40).map(|i| format!("customer-{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let p = state_core::partition_for_key(key.as_bytes(), PARTITIONS).unwrap();
        let owner = if p < 2 { &a } else { &b };
        put(owner, key, i64::try_from(i).unwrap() * 10).await;
    }
    for (i, key) in keys.iter().enumerate() {
        let p = state_core::partition_for_key(key.as_bytes(), PARTITIONS).unwrap();
        let owner = if p < 2 { &a } else { &b };
        for via in [&a, &b] {
            let (status, body) =
                get(&format!("http://{}/stores/totals/keys/{key}", via.endpoint)).await;
            assert_eq!(status, 200, "{key} via {}: {body}", via.endpoint);
            assert_eq!(
                body["value"],
                Value::from(i64::try_from(i).unwrap() * 10),
                "{body}"
            );
            assert_eq!(body["partition"], Value::from(p));
            assert_eq!(body["served_by"], Value::from(owner.endpoint.clone()));
            assert_eq!(body["source"], "active");
        }
        let (status, meta) = get(&format!(
            "http://{}/stores/totals/keys/{key}/metadata",
            b.endpoint
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(meta["owner"], Value::from(owner.endpoint.clone()));
    }
    let (status, absent) = get(&format!("http://{}/stores/totals/keys/nobody", a.endpoint)).await;
    assert_eq!(status, 200, "{absent}");
    assert_eq!(absent["value"], Value::Null);

    // A range of one partition, through the instance that does not own it.
    let (status, range) = get(&format!(
        "http://{}/stores/totals/partitions/3/range?limit=5",
        a.endpoint
    ))
    .await;
    assert_eq!(status, 200, "{range}");
    let entries = range["entries"].as_array().unwrap();
    assert!(!entries.is_empty() && entries.len() <= 5, "{range}");
    for entry in entries {
        let key = entry[0].as_str().unwrap();
        assert_eq!(
            state_core::partition_for_key(key.as_bytes(), PARTITIONS).unwrap(),
            3
        );
        let i: i64 = key.trim_start_matches("customer-").parse().unwrap();
        assert_eq!(entry[1], Value::from(i * 10));
    }

    // The owner moves p3 away (revoked, closed) while the directory still names it: the
    // instance asked forwards once and the old owner says it is not there.
    b.manager
        .revoke(&[3], state_core::AfterRevoke::Close)
        .await
        .unwrap();
    let key3 = keys
        .iter()
        .find(|k| state_core::partition_for_key(k.as_bytes(), PARTITIONS).unwrap() == 3)
        .unwrap();
    for via in [&a, &b] {
        let (status, body) = get(&format!(
            "http://{}/stores/totals/keys/{key3}",
            via.endpoint
        ))
        .await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"], "not_here", "{body}");
        assert_eq!(body["partition"], 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_4xx_and_unreachable_owners_5xx() {
    let changelog = InMemoryChangelog::new();
    let directory = Arc::new(Table::default());
    let a = node(&changelog, directory.clone(), 1).await;
    let base = format!("http://{}", a.endpoint);
    let cases = [
        ("/stores/nope/keys/k", 404, "unknown_store"),
        (
            "/stores/totals/partitions/9/range",
            404,
            "unknown_partition",
        ),
        (
            "/stores/totals/partitions/x/range",
            404,
            "unknown_partition",
        ),
        (
            "/stores/totals/partitions/0/range?limit=0",
            400,
            "bad_range",
        ),
        ("/stores/totals/keys/k?stale=maybe", 400, "bad_parameter"),
    ];
    for (path, status, error) in cases {
        let (got, body) = get(&format!("{base}{path}")).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"], error, "{path}: {body}");
        assert!(!body["detail"].as_str().unwrap().is_empty());
    }
    let long = "k".repeat(query_server::MAX_KEY_LEN + 1);
    let (got, body) = get(&format!("{base}/stores/totals/keys/{long}")).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (400, Some("key_too_long")),
        "{body}"
    );

    // No owner known: a typed "not here", not a guess.
    let (got, body) = get(&format!("{base}/stores/totals/keys/k")).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (503, Some("not_here")),
        "{body}"
    );

    // The owner named is down: 502. It accepts but never answers: 504 after the timeout.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = closed.local_addr().unwrap().to_string();
    drop(closed);
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_endpoint = silent.local_addr().unwrap().to_string();
    let p = state_core::partition_for_key(b"k", PARTITIONS).unwrap();
    directory.0.lock().unwrap().insert(p, down.clone());
    let (got, body) = get(&format!("{base}/stores/totals/keys/k")).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (502, Some("owner_unreachable")),
        "{body}"
    );
    assert_eq!(body["owner"], Value::from(down));
    directory.0.lock().unwrap().insert(p, silent_endpoint);
    let (got, body) = get(&format!("{base}/stores/totals/keys/k")).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (504, Some("owner_timeout")),
        "{body}"
    );
    drop(silent);

    let (got, body) = get(&format!("{base}/ready")).await;
    assert_eq!((got, body["ready"].as_bool()), (200, Some(true)), "{body}");
    let (got, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (404, Some("no_metrics")),
        "{body}"
    );
}
