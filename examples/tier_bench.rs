//! The shared tiers' figures side by side, in one run, each on servers of
//! its own on free ports of 127.0.0.1 (a `redis-server`, a local
//! three-master Redis Cluster, two `memcached`): time per request through
//! the Tower layer for a hit in memory, a hit in the shared tier and an
//! uncached pass to the origin; how long a purge on one instance takes to
//! reach another's memory; and a load run during which the tier is killed.
//!
//! ```sh
//! cargo run --release --example tier_bench --features redis,memcached
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

// The tests' servers; not every helper is used here.
#[allow(dead_code)]
#[path = "../tests/memcached/server.rs"]
mod memcached;
#[allow(dead_code)]
#[path = "../tests/redis/server.rs"]
mod server;

use memcached::MemcachedServer;
use server::{RedisCluster, RedisServer};

/// An instance on the tier `target` names: a `[redis]` or `[memcached]`
/// section's body, after its header line.
fn app(target: &str, mode: &str) -> (Router, cachet::Cache) {
    let text = format!("{RULES}\n{target}\nmode = '{mode}'\n");
    let config = cachet::Config::from_toml(&text).unwrap();
    let builder = config.cache.identity(Identity::default().secret("bench"));
    let builder = cachet::redis::install_with_env(builder, config.redis, |_| None).unwrap();
    let cache = cachet::memcached::install_with_env(builder, config.memcached, |_| None)
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
async fn propagation(
    name: &str,
    a: &Router,
    a_cache: &cachet::Cache,
    target: &str,
    jitter: Option<Duration>,
) {
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
        // A tier that polls: purges land anywhere in its interval, not
        // just after the poll that ended the previous measurement.
        if let Some(jitter) = jitter {
            tokio::time::sleep(jitter.mul_f64(f64::from((n * 7919) % 1000) / 1000.0)).await;
        }
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
    let single = format!("[redis]\nurl = '{}'", redis.url());
    let cluster = RedisCluster::start();
    let nodes: Vec<String> = cluster
        .urls()
        .iter()
        .map(|url| format!("'{url}'"))
        .collect();
    let on_cluster = format!("[redis]\ncluster = [{}]", nodes.join(", "));
    let mut memcached = MemcachedServer::start();
    let mut other_memcached = MemcachedServer::start();
    let on_memcached = format!("[memcached]\nservers = ['{}']", memcached.address());
    let on_two = format!(
        "[memcached]\nservers = ['{}', '{}']",
        memcached.address(),
        other_memcached.address()
    );

    // `tier_bench load` runs the load part alone.
    if std::env::args().nth(1).as_deref() != Some("load") {
        per_request_and_propagation(&single, &on_cluster, &on_memcached, &on_two).await;
    }

    // 3. Load with the tier killed a second in: failed requests.
    println!();
    load("Redis", &single, || redis.kill()).await;
    load("Memcached (both servers)", &on_two, || {
        memcached.kill();
        other_memcached.kill();
    })
    .await;
}

async fn per_request_and_propagation(
    single: &str,
    on_cluster: &str,
    on_memcached: &str,
    on_two: &str,
) {
    // 1. One request at a time, same run: memory, each shared tier, the origin.
    const COUNT: u32 = 20_000;
    let (tiered, tiered_cache) = app(single, "tiered");
    connected(&tiered_cache).await;
    status(&tiered, "/cached/1").await.unwrap();
    let memory = per_request(&tiered, "/cached/1", COUNT).await;
    let mut rows = vec![("hit in memory (tiered)", memory)];
    for (name, target) in [
        ("hit in Redis (shared mode)", single),
        ("hit in a 3-master Redis Cluster (shared mode)", on_cluster),
        ("hit in Memcached (shared mode)", on_memcached),
        ("hit in 2 Memcached servers (shared mode)", on_two),
    ] {
        let (shared, shared_cache) = app(target, "shared");
        connected(&shared_cache).await;
        status(&shared, "/cached/1").await.unwrap();
        rows.push((name, per_request(&shared, "/cached/1", COUNT).await));
    }
    rows.push((
        "uncached, to an in-process origin",
        per_request(&tiered, "/uncached", COUNT).await,
    ));
    println!(
        "| request (through the Tower layer) | time per request | per second | vs. memory hit |"
    );
    println!("|---|---|---|---|");
    for (name, time) in rows {
        println!(
            "| {name} | {:.1} µs | {:.0} | {:.2} |",
            time.as_secs_f64() * 1e6,
            1.0 / time.as_secs_f64(),
            time.as_secs_f64() / memory.as_secs_f64()
        );
    }

    // 2. Purge propagation: 1,000 purges on A, each timed until B's
    // memory no longer holds the key.
    println!();
    let poll = Some(Duration::from_millis(100));
    for (name, target, jitter) in [
        ("one Redis", &single, None),
        ("a 3-master Redis Cluster", &on_cluster, None),
        ("one Memcached (poll_interval 100 ms)", &on_memcached, poll),
        (
            "two Memcached servers (poll_interval 100 ms)",
            &on_two,
            poll,
        ),
    ] {
        let (a, a_cache) = app(target, "tiered");
        propagation(name, &a, &a_cache, target, jitter).await;
    }
}

/// 8 clients on one tiered instance for 3 s, every other request a hit on
/// one of 500 hot keys and the rest a key never asked before (a miss that
/// reads and writes the tier); `kill` a second in.
async fn load(name: &str, target: &str, kill: impl FnOnce()) {
    let (a, a_cache) = app(target, "tiered");
    connected(&a_cache).await;
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
                    let uri = if n % 2 == 0 {
                        format!("/cached/load{}", (n * 8 + client) % 500)
                    } else {
                        format!("/cached/cold{client}-{n}")
                    };
                    match status(&router, &uri).await {
                        Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    // Hits from memory never wait: let the killer run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kill = ok.load(Ordering::Relaxed);
    kill();
    for client in clients {
        client.await.unwrap();
    }
    println!(
        "{name}: load for 3 s, 8 clients, half hits and half new keys, the tier killed after 1 s: {} answered ({before_kill} before the kill), {} failed; store errors counted: {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        a_cache.stats().caches["default"].store_errors
    );
}
