//! The management API's cost: a scrape of `/metrics` and a `GET /stats`,
//! on a cache with three named caches. (What metrics add to a hit is
//! measured by `hit_path` against the build before them: nothing, since
//! they render from the counters a hit already moves.)
//!
//! `cargo bench --bench admin`

#![allow(missing_docs)]

use bytes::Bytes;
use cachet::admin::{Admin, AdminConfig};
use cachet::CacheBuilder;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let cache = CacheBuilder::from_toml(
        "[caches.pages]\n[[rules]]\npath = '^/api/'\n[[rules]]\npath = '^/pages/'\ncache = 'pages'\n",
    )
    .expect("valid rules")
    .build()
    .expect("a cache");
    let admin = Admin::new(cache, AdminConfig::new().token("bench-token"));
    let request = |path: &str| {
        http::Request::get(path)
            .header("authorization", "Bearer bench-token")
            .body(Bytes::new())
            .expect("a request")
    };
    let mut group = c.benchmark_group("admin");
    group.bench_function("GET /metrics (3 caches)", |b| {
        b.iter(|| {
            runtime
                .block_on(admin.handle(request("/metrics")))
                .into_body()
                .len()
        })
    });
    group.bench_function("GET /stats (3 caches)", |b| {
        b.iter(|| {
            runtime
                .block_on(admin.handle(request("/stats")))
                .into_body()
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
