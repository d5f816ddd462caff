//! The Redis tier's figures, with a `redis-server` of its own on a free
//! port of 127.0.0.1 (and a local three-master Redis Cluster): time per
//! request through the Tower layer for a hit in memory, a hit in Redis, a
//! hit in the cluster and an uncached pass to the origin (one run); how
//! long a purge on one instance takes to reach another's memory, on one
//! Redis and on the cluster; and a load run during which Redis is killed.
//!
//! ```sh
//! cargo run --release --example redis_bench --features redis
//! ```

use axum::{body::Body, routing::get, Router};
use cachet::adapter::{self, Begun, Route};
use cachet::{CacheKey, CacheLayer, Identity};
use http::Request;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const RULES: &str = "[[rules]]\npath = '^/cached'\nttl = '1h'\n";

// The Redis tests' servers; not every helper is used here.
#[allow(dead_code)]
#[path = "../tests/redis/server.rs"]
mod server;

use server::{RedisCluster, RedisServer};

/// An instance on the Redis `target` names (its `url` or `cluster` line).
fn app(target: &str, mode: &str) -> (Router, cachet::Cache) {
    let text = format!("{RULES}\n[redis]\n{target}\nmode = '{mode}'\n");
    let config = cachet::Config::from_toml(&text).unwrap();
    let builder = config.cache.identity(Identity::default().secret("bench"));
    let cache = cachet::redis::install_with_env(builder, config.redis, |_| None)
        .unwrap()
        .build()
        .unwrap();
    let router = Router::new()
        .route("/cached/{n}", get(|| async { "a cached page" }))
        .route("/uncached", get(|| async { "an uncached page" }))
        .layer(CacheLayer::new(cache.clone()));
    (router, cache)
}

async fn status(router: &Router, uri: &str) -> Result<u16, String> {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

async fn connected(cache: &cachet::Cache) {
    while cache.health().await != cachet::stats::Health::Ok {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Mean time per request of `count` sequential requests to `uri`.
async fn per_request(router: &Router, uri: &str, count: u32) -> Duration {
    let started = Instant::now();
    for _ in 0..count {
        assert_eq!(status(router, uri).await, Ok(200));
    }
    started.elapsed() / count
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// 1,000 purges on `a`, each timed until another instance's memory no
/// longer holds the key.
async fn propagation(name: &str, a: &Router, a_cache: &cachet::Cache, target: &str) {
    let (b, b_cache) = app(target, "tiered");
    connected(a_cache).await;
    connected(&b_cache).await;
    let mut delays = Vec::new();
    for n in 0..1000 {
        let uri = format!("/cached/p{n}");
        status(a, &uri).await.unwrap();
        status(&b, &uri).await.unwrap();
        let key = b_cache.keys().await.unwrap();
        let key: CacheKey = key
            .into_iter()
            .find(|listed| listed.key.as_str().starts_with(&uri))
            .unwrap()
            .key;
        // Whether B answers the page from its memory, without awaiting.
        let in_memory = || {
            let req = Request::get(uri.as_str()).body(()).unwrap();
            let Route::Cache(plan) = adapter::route(&b_cache, &req) else {
                unreachable!("the rule matches")
            };
            matches!(adapter::begin(&b_cache, plan, &req), Begun::Hit(..))
        };
        assert!(in_memory());
        let started = Instant::now();
        a_cache.delete(key.as_str()).await.unwrap();
        while in_memory() {
            tokio::task::yield_now().await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    println!(
        "{name}: purge on A → gone from B's memory, 1,000 purges: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().unwrap().as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut redis = RedisServer::start();
    let single = format!("url = '{}'", redis.url());
    let cluster = RedisCluster::start();
    let nodes: Vec<String> = cluster
        .urls()
        .iter()
        .map(|url| format!("'{url}'"))
        .collect();
    let on_cluster = format!("cluster = [{}]", nodes.join(", "));
    let (tiered, tiered_cache) = app(&single, "tiered");
    let (shared, shared_cache) = app(&single, "shared");
    let (cluster_a, cluster_a_cache) = app(&on_cluster, "tiered");
    let (clustered, clustered_cache) = app(&on_cluster, "shared");
    connected(&tiered_cache).await;
    connected(&shared_cache).await;
    connected(&clustered_cache).await;

    // 1. One request at a time, same run: memory, Redis, the origin.
    status(&tiered, "/cached/1").await.unwrap();
    const COUNT: u32 = 20_000;
    let memory = per_request(&tiered, "/cached/1", COUNT).await;
    let redis_hit = per_request(&shared, "/cached/1", COUNT).await;
    status(&clustered, "/cached/1").await.unwrap();
    let cluster_hit = per_request(&clustered, "/cached/1", COUNT).await;
    let origin = per_request(&tiered, "/uncached", COUNT).await;
    println!(
        "| request (through the Tower layer) | time per request | per second | vs. memory hit |"
    );
    println!("|---|---|---|---|");
    for (name, time) in [
        ("hit in memory (tiered)", memory),
        ("hit in Redis (shared mode)", redis_hit),
        ("hit in a 3-master Redis Cluster (shared mode)", cluster_hit),
        ("uncached, to an in-process origin", origin),
    ] {
        println!(
            "| {name} | {:.1} µs | {:.0} | {:.2} |",
            time.as_secs_f64() * 1e6,
            1.0 / time.as_secs_f64(),
            time.as_secs_f64() / memory.as_secs_f64()
        );
    }

    // 2. Purge propagation: 1,000 purges on A, each timed until B's
    // memory no longer holds the key; on one Redis, then on the cluster.
    let (a, a_cache) = app(&single, "tiered");
    println!();
    propagation("one Redis", &a, &a_cache, &single).await;
    propagation(
        "a 3-master cluster",
        &cluster_a,
        &cluster_a_cache,
        &on_cluster,
    )
    .await;

    // 3. Load with Redis killed a second in: failed requests.
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (router, ok, failed) = (a.clone(), Arc::clone(&ok), Arc::clone(&failed));
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let uri = format!("/cached/load{}", (n * 8 + client) % 500);
                    match status(&router, &uri).await {
                        Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.kill();
    for client in clients {
        client.await.unwrap();
    }
    println!();
    println!(
        "load for 3 s, 8 clients, Redis killed after 1 s: {} answered, {} failed; store errors counted: {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        a_cache.stats().caches["default"].store_errors
    );
}
