//! A request through `CacheService` against the bare inner service, in one run.
//!
//! `cargo bench --bench hit_path`

#![allow(missing_docs)]

#[path = "support/tower_origin.rs"]
mod tower_origin;

use bytes::Bytes;
use cachet::{Cache, CacheLayer};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::Full;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::{Layer, Service};
use tower_origin::{origin, request, send, Request};

/// What a browser sends with a request for a page's data.
const BROWSER: [(&str, &str); 7] = [
    ("host", "shop.example.com"),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ),
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "en-GB,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("referer", "https://shop.example.com/basket"),
    ("sec-fetch-mode", "cors"),
];

fn browser_request(uri: &str) -> Request {
    let mut builder = http::Request::get(uri);
    for (name, value) in BROWSER {
        builder = builder.header(name, value);
    }
    builder.body(Full::default()).unwrap()
}

async fn drive<S, B>(service: &S, uri: &str) -> usize
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    send(service, request(uri)).await
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = Cache::from_toml(
        r#"
        [caches.default]
        max_bytes = "256MiB"
        ttl = "1h"

        [[rules]]
        path = '^/api/'
        "#,
    )
    .unwrap();
    let bare = origin();
    let cached = CacheLayer::new(cache).layer(origin());
    rt.block_on(drive(&cached, "/api/items"));

    let mut group = c.benchmark_group("1 KiB response");
    group.bench_function("bare inner service", |b| {
        b.to_async(&rt).iter(|| drive(&bare, "/api/items"))
    });
    group.bench_function("cache hit", |b| {
        b.to_async(&rt).iter(|| drive(&cached, "/api/items"))
    });
    group.bench_function("bare, a browser's headers", |b| {
        b.to_async(&rt)
            .iter(|| send(&bare, browser_request("/api/items")))
    });
    group.bench_function("cache hit, a browser's headers", |b| {
        b.to_async(&rt)
            .iter(|| send(&cached, browser_request("/api/items")))
    });
    group.bench_function("no rule (pass-through)", |b| {
        b.to_async(&rt).iter(|| drive(&cached, "/static/app.css"))
    });
    let counter = AtomicU64::new(0);
    group.bench_function("miss, stored", |b| {
        b.to_async(&rt).iter(|| {
            let uri = format!("/api/items?n={}", counter.fetch_add(1, Ordering::Relaxed));
            let cached = cached.clone();
            async move { drive(&cached, &uri).await }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
