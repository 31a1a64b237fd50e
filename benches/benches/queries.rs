//! Interactive queries, in one run: a raw typed `get` on the owner's committed store, an
//! HTTP read the owner answers itself (`local`), and an HTTP read through the other
//! instance, which forwards it one hop to the owner (`forwarded`). Two instances on
//! 127.0.0.1 share an in-process changelog; each owns two of four partitions of a
//! memory store holding 10,000 `customer-N -> i64` keys. One client, keep-alive
//! connections, one request at a time: latency, not a load test.
//!
//! `http_floor` is a bare axum server answering a fixed body of the same size on the
//! same route: what HTTP on this machine costs before any store is read.
//!
//! Before criterion's measurements, each kind is timed request by request
//! (`SAMPLES` requests after a warm-up) and its p50, p99 and sequential queries/s are
//! printed.
//!
//! `cargo bench -p benches --bench queries --profile dev -- --noplot`

use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_memory::MemorySupplier;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use query_server::{Directory, Placement, QueryServer};
use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::{
    Partition, PartitionQuery, ProcessingGuarantee, Serdes, SinkOptions, Staleness, StoreBuilder,
    StoreContext, StoreHandle, StoreManager, partition_for_key,
};
use tokio::runtime::Runtime;

const PARTITIONS: i32 = 4;
const KEYS: usize = 10_000;
const SAMPLES: usize = 20_000;

/// Partitions 0 and 1 on the first instance, 2 and 3 on the second.
struct Halves([String; 2]);

#[async_trait::async_trait]
impl Directory for Halves {
    async fn placement(&self, partition: Partition) -> state_core::Result<Placement> {
        Ok(Placement {
            owner: Some(self.0[usize::from(partition >= 2)].clone()),
            standbys: Vec::new(),
            settled: true,
        })
    }
}

struct Node {
    manager: Arc<StoreManager>,
    totals: StoreHandle<String, i64>,
    _dir: tempfile::TempDir,
}

async fn node(changelog: &InMemoryChangelog, id: usize) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let context = StoreContext::new("bench", 0, PARTITIONS, dir.path())
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
    let options = SinkOptions::new(ProcessingGuarantee::AtLeastOnce, format!("bench-{id}"));
    manager
        .use_sink(Arc::new(changelog.sink_now(&options).unwrap()))
        .unwrap();
    Node {
        manager: Arc::new(manager),
        totals,
        _dir: dir,
    }
}

struct Setup {
    nodes: [Node; 2],
    endpoints: [String; 2],
    /// A bare axum server answering a fixed body of the same size: the HTTP floor.
    floor: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Keys the first instance owns, and keys the second owns.
    local_keys: Vec<String>,
    remote_keys: Vec<String>,
}

fn setup(runtime: &Runtime) -> Setup {
    runtime.block_on(async {
        let changelog = InMemoryChangelog::new();
        let nodes = [node(&changelog, 1).await, node(&changelog, 2).await];
        let listeners = [
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        ];
        let endpoints = [
            listeners[0].local_addr().unwrap().to_string(),
            listeners[1].local_addr().unwrap().to_string(),
        ];
        let directory: Arc<dyn Directory> = Arc::new(Halves(endpoints.clone()));
        for (i, listener) in listeners.into_iter().enumerate() {
            let owned = if i == 0 { [0, 1] } else { [2, 3] };
            for (_, restored) in nodes[i].manager.assign_all(&owned).await {
                restored.unwrap();
            }
            let server = QueryServer::builder(nodes[i].manager.clone(), endpoints[i].clone())
                .store(&nodes[i].totals)
                .directory(directory.clone())
                .build();
            tokio::spawn(server.serve(listener, std::future::pending()));
        }
        let (mut local_keys, mut remote_keys) = (Vec::new(), Vec::new());
        for k in 0..KEYS {
            let key = format!("customer-{k}");
            let p = partition_for_key(key.as_bytes(), PARTITIONS).unwrap();
            let owner = &nodes[usize::from(p >= 2)];
            let active = owner.manager.active(p).await.unwrap();
            active
                .store(&owner.totals)
                .unwrap()
                .put(&key, &i64::try_from(k).unwrap())
                .unwrap();
            drop(active);
            if p < 2 {
                local_keys.push(key);
            } else {
                remote_keys.push(key);
            }
        }
        for node in &nodes {
            node.manager.commit().await.unwrap();
        }
        let floor = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let floor_endpoint = floor.local_addr().unwrap().to_string();
        let body = r#"{"store":"totals","key":"customer-1","partition":2,"value":1,"served_by":"127.0.0.1:40000","source":"active"}"#;
        let router = axum::Router::new().route(
            "/stores/totals/keys/{key}",
            axum::routing::get(move || async move { body }),
        );
        tokio::spawn(async move { axum::serve(floor, router).await });
        Setup {
            nodes,
            endpoints,
            floor: floor_endpoint,
            client: Client::builder(TokioExecutor::new()).build_http(),
            local_keys,
            remote_keys,
        }
    })
}

impl Setup {
    /// `GET` of `key` through the first instance; its body's length, read whole.
    async fn http_get(&self, key: &str) -> usize {
        let url = format!("http://{}/stores/totals/keys/{key}", self.endpoints[0]);
        let response = self.client.get(url.parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len()
    }

    /// The same `GET` to the bare server.
    async fn floor_get(&self, key: &str) -> usize {
        let url = format!("http://{}/stores/totals/keys/{key}", self.floor);
        let response = self.client.get(url.parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .len()
    }

    /// A typed `get` on the owner's committed store, through the manager's query.
    async fn raw_get(&self, key: &str) -> Option<i64> {
        let node = &self.nodes[0];
        let p = partition_for_key(key.as_bytes(), PARTITIONS).unwrap();
        match node
            .manager
            .query(&node.totals, p, Staleness::ActiveOnly)
            .await
            .unwrap()
        {
            PartitionQuery::Active(store) => store.get(&key.to_owned()).unwrap(),
            other => panic!("not active: {other:?}"),
        }
    }
}

/// p50, p99 and sequential queries/s of `SAMPLES` calls of `one` over `keys`.
fn percentiles<T>(runtime: &Runtime, keys: &[String], one: impl AsyncFn(&str) -> T) -> String {
    runtime.block_on(async {
        for key in keys.iter().take(1000) {
            one(key).await;
        }
        let mut latencies = Vec::with_capacity(SAMPLES);
        let started = Instant::now();
        for key in keys.iter().cycle().take(SAMPLES) {
            let at = Instant::now();
            one(key).await;
            latencies.push(at.elapsed());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
        format!(
            "p50 {:>9.1?}  p99 {:>9.1?}  {:>8.0} queries/s",
            at(0.50),
            at(0.99),
            SAMPLES as f64 / elapsed.as_secs_f64()
        )
    })
}

fn queries(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = setup(&runtime);
    let (local, remote) = (&setup.local_keys, &setup.remote_keys);
    println!(
        "raw get    {}",
        percentiles(&runtime, local, async |k| setup.raw_get(k).await)
    );
    println!(
        "http floor {}",
        percentiles(&runtime, local, async |k| setup.floor_get(k).await)
    );
    println!(
        "local      {}",
        percentiles(&runtime, local, async |k| setup.http_get(k).await)
    );
    println!(
        "forwarded  {}",
        percentiles(&runtime, remote, async |k| setup.http_get(k).await)
    );

    let mut group = c.benchmark_group("queries");
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    let mut next = |keys: &[String]| {
        i = (i + 1) % keys.len();
        keys[i].clone()
    };
    group.bench_function("raw_get", |b| {
        b.iter(|| runtime.block_on(setup.raw_get(&next(local))));
    });
    let mut f = 0usize;
    group.bench_function("http_floor", |b| {
        b.iter(|| {
            f = (f + 1) % local.len();
            runtime.block_on(setup.floor_get(&local[f]))
        });
    });
    let mut j = 0usize;
    group.bench_function("local", |b| {
        b.iter(|| {
            j = (j + 1) % local.len();
            runtime.block_on(setup.http_get(&local[j]))
        });
    });
    let mut k = 0usize;
    group.bench_function("forwarded", |b| {
        b.iter(|| {
            k = (k + 1) % remote.len();
            runtime.block_on(setup.http_get(&remote[k]))
        });
    });
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
