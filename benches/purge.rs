//! Purging by tag and by key regex at 10k, 100k and 1M entries: how the
//! cost grows with the cache when 1% of the entries go.
//!
//! `cargo bench --bench purge`
//!
//! Each iteration purges 1% of the entries (every hundredth, tagged
//! `hot`, with keys under `/hot/`); the setup puts them back, untimed.

#![allow(missing_docs)]

use cachet::adapter::{self, Route};
use cachet::{Cache, CacheSpec, Rule};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use regex::Regex;
use std::time::Duration;

fn path(n: usize) -> String {
    if n % 100 == 0 {
        format!("/hot/{n}")
    } else {
        format!("/cold/{n}")
    }
}

async fn put(cache: &Cache, n: usize) {
    let req = http::Request::get(path(n)).body(()).expect("a request");
    let Route::Cache(plan) = adapter::route(cache, &req) else {
        unreachable!("one rule matches every path")
    };
    let origin = |_req: http::Request<()>| async move {
        let mut response = http::Response::new(http_body_util::Full::new(bytes::Bytes::from("x")));
        if n % 100 == 0 {
            let tag = http::HeaderValue::from_static("hot");
            response.headers_mut().insert("cache-tag", tag);
        }
        Ok::<_, std::convert::Infallible>(response)
    };
    adapter::serve(cache.clone(), plan.into(), origin, req)
        .await
        .expect("stored");
}

async fn filled(entries: usize) -> Cache {
    let cache = Cache::builder()
        .cache(
            "default",
            CacheSpec::new(4 << 30, Duration::from_secs(3600)),
        )
        .rule(Rule::new("^/"))
        .build()
        .expect("a cache");
    for n in 0..entries {
        put(&cache, n).await;
    }
    cache
}

async fn refill_hot(cache: &Cache, entries: usize) {
    for n in (0..entries).step_by(100) {
        put(cache, n).await;
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let hot = Regex::new("^/hot/").expect("a regex");
    let mut group = c.benchmark_group("purge 1%");
    group.sample_size(10);
    for entries in [10_000, 100_000, 1_000_000] {
        let cache = runtime.block_on(filled(entries));
        group.bench_with_input(BenchmarkId::new("by tag", entries), &entries, |b, &n| {
            b.iter_batched(
                || runtime.block_on(refill_hot(&cache, n)),
                |()| runtime.block_on(cache.purge_tag("hot")).expect("purged"),
                BatchSize::PerIteration,
            )
        });
        group.bench_with_input(BenchmarkId::new("by regex", entries), &entries, |b, &n| {
            b.iter_batched(
                || runtime.block_on(refill_hot(&cache, n)),
                |()| {
                    runtime
                        .block_on(cache.delete_matching(&hot))
                        .expect("deleted")
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
