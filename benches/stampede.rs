//! Cold-start stampede: 1,000 concurrent clients on 10 hot keys, through
//! `CacheLayer` with coalescing on and off, against an origin that can serve
//! 16 requests at a time and spends 20 ms on each (a worker pool in front
//! of a database). Each round starts with an empty cache; the rounds of the
//! two modes alternate. Prints requests per second, origin calls and
//! latency percentiles per mode (medians over the rounds).
//!
//! `cargo bench --bench stampede` (`-- ROUNDS` to change the number of rounds).

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use cachet::{Cache, CacheLayer};
use http::Request;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::ServiceExt;

const CLIENTS: usize = 1_000;
const KEYS: usize = 10;
const ORIGIN_WORKERS: usize = 16;
const ORIGIN_WORK: Duration = Duration::from_millis(20);

#[derive(Clone)]
struct Origin {
    calls: Arc<AtomicUsize>,
    workers: Arc<Semaphore>,
}

async fn product(State(origin): State<Origin>) -> Vec<u8> {
    let _worker = origin.workers.acquire().await.expect("never closed");
    origin.calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(ORIGIN_WORK).await;
    vec![b'p'; 4096]
}

struct Round {
    requests_per_second: f64,
    origin_calls: usize,
    p50: Duration,
    p99: Duration,
}

async fn round(coalesce: bool) -> Round {
    let origin = Origin {
        calls: Arc::default(),
        workers: Arc::new(Semaphore::new(ORIGIN_WORKERS)),
    };
    let cache = Cache::from_toml(&format!(
        "[[rules]]\npath = '^/products/'\nttl = \"60s\"\ncoalesce = {coalesce}\nlock_timeout = \"30s\"\n"
    ))
    .expect("valid rules");
    let app = Router::new()
        .route("/products/{id}", get(product))
        .with_state(origin.clone())
        .layer(CacheLayer::new(cache));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let app = app.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let req = Request::get(format!("/products/{}", client % KEYS))
                    .body(Body::empty())
                    .expect("valid request");
                let response = app.oneshot(req).await.expect("infallible");
                let body = response.into_body().collect().await.expect("whole body");
                assert_eq!(body.to_bytes().len(), 4096);
                sent.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CLIENTS);
    for client in clients {
        latencies.push(client.await.expect("client finished"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Round {
        requests_per_second: CLIENTS as f64 / elapsed.as_secs_f64(),
        origin_calls: origin.calls.load(Ordering::Relaxed),
        p50: latencies[CLIENTS / 2],
        p99: latencies[CLIENTS * 99 / 100],
    }
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    values[values.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    runtime.block_on(async {
        for _ in 0..rounds {
            for (slot, coalesce) in [(0, true), (1, false)] {
                results[slot].push(round(coalesce).await);
            }
        }
    });
    println!(
        "{CLIENTS} clients, {KEYS} keys, origin {ORIGIN_WORKERS} workers x {} ms, {rounds} rounds (medians)",
        ORIGIN_WORK.as_millis()
    );
    println!("| coalescing | req/s | origin calls | p50 | p99 |");
    println!("|---|---|---|---|---|");
    let mut rates = Vec::new();
    for (slot, label) in [(0, "on"), (1, "off")] {
        let rounds = &results[slot];
        let rate = median(rounds.iter().map(|r| r.requests_per_second).collect());
        rates.push(rate);
        println!(
            "| {label} | {rate:.0} | {} | {:.1} ms | {:.1} ms |",
            median(rounds.iter().map(|r| r.origin_calls).collect()),
            median(rounds.iter().map(|r| r.p50).collect()).as_secs_f64() * 1e3,
            median(rounds.iter().map(|r| r.p99).collect()).as_secs_f64() * 1e3,
        );
    }
    println!("on/off req/s: {:.1}x", rates[0] / rates[1]);
}
