//! The Redis tier's figures, with a `redis-server` of its own on a free
//! port of 127.0.0.1: time per request through the Tower layer for a hit in
//! memory, a hit in Redis and an uncached pass to the origin (one run);
//! how long a purge on one instance takes to reach another's memory; and a
//! load run during which Redis is killed.
//!
//! ```sh
//! cargo run --release --example redis_bench --features redis
//! ```

use axum::{body::Body, routing::get, Router};
use cachet::{CacheBuilder, CacheKey, CacheLayer, Identity};
use http::Request;
use http_body_util::BodyExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const RULES: &str = "[[rules]]\npath = '^/cached'\nttl = '1h'\n";

struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn app(redis: &Redis, mode: &str) -> (Router, cachet::Cache) {
    let text = format!(
        "{RULES}\n[redis]\nurl = 'redis://127.0.0.1:{}/0'\nmode = '{mode}'\n",
        redis.port
    );
    let builder = CacheBuilder::from_toml(&text)
        .unwrap()
        .identity(Identity::default().secret("bench"));
    let cache = cachet::redis::install_with_env(builder, |_| None)
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
    while cache.storage().degraded().is_some() {
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = Redis::start();
    let (tiered, tiered_cache) = app(&redis, "tiered");
    let (shared, shared_cache) = app(&redis, "shared");
    connected(&tiered_cache).await;
    connected(&shared_cache).await;

    // 1. One request at a time, same run: memory, Redis, the origin.
    status(&tiered, "/cached/1").await.unwrap();
    const COUNT: u32 = 20_000;
    let memory = per_request(&tiered, "/cached/1", COUNT).await;
    let redis_hit = per_request(&shared, "/cached/1", COUNT).await;
    let origin = per_request(&tiered, "/uncached", COUNT).await;
    println!(
        "| request (through the Tower layer) | time per request | per second | vs. memory hit |"
    );
    println!("|---|---|---|---|");
    for (name, time) in [
        ("hit in memory (tiered)", memory),
        ("hit in Redis (shared mode)", redis_hit),
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
    // memory no longer holds the key.
    let (a, a_cache) = app(&redis, "tiered");
    let (b, b_cache) = app(&redis, "tiered");
    connected(&a_cache).await;
    connected(&b_cache).await;
    let mut delays = Vec::new();
    for n in 0..1000 {
        let uri = format!("/cached/p{n}");
        status(&a, &uri).await.unwrap();
        status(&b, &uri).await.unwrap();
        let key = b_cache.keys().await.unwrap();
        let key: CacheKey = key
            .into_iter()
            .find(|listed| listed.key.as_str().starts_with(&uri))
            .unwrap()
            .key;
        let now = b_cache.clock().now();
        assert!(matches!(
            b_cache.storage().get_now("default", &key, now),
            Some(Ok(Some(_)))
        ));
        let started = Instant::now();
        a_cache.delete(key.as_str()).await.unwrap();
        while let Some(Ok(Some(_))) = b_cache.storage().get_now("default", &key, now) {
            tokio::task::yield_now().await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    println!();
    println!(
        "purge on A → gone from B's memory, 1,000 purges: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&delays, 0.5).as_secs_f64() * 1e3,
        percentile(&delays, 0.99).as_secs_f64() * 1e3,
        delays.last().unwrap().as_secs_f64() * 1e3
    );

    // 3. Load with Redis killed a second in: failed requests.
    let mut redis = redis;
    println!("(redis-server on port {})", redis.port);
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
    let _ = redis.child.kill();
    let _ = redis.child.wait();
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
