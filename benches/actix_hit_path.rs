//! A request through the actix-web middleware against the bare actix-web
//! app, in one run.
//!
//! `cargo bench --bench actix_hit_path`

#![allow(missing_docs)]

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App, HttpResponse};
use cachet::actix::ResponseCache;
use cachet::Cache;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const BODY: &[u8] = &[b'x'; 1024];

async fn items() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

/// `iters` requests for `uri`, each response read to its end.
async fn drive<S, B>(service: &S, uri: &str, iters: u64) -> Duration
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let started = Instant::now();
    for _ in 0..iters {
        let request = test::TestRequest::get().uri(uri).to_request();
        let response = test::call_service(service, request).await;
        std::hint::black_box(test::read_body(response).await);
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let system = actix_web::rt::System::new();
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
    let routes = || {
        App::new()
            .route("/api/items", web::get().to(items))
            .route("/other", web::get().to(items))
    };
    let bare = system.block_on(test::init_service(routes()));
    let cached = system.block_on(test::init_service(
        routes().wrap(ResponseCache::new(cache.clone())),
    ));
    system.block_on(drive(&cached, "/api/items", 1));

    let mut group = c.benchmark_group("actix 1 KiB response");
    group.bench_function("bare app", |b| {
        b.iter_custom(|iters| system.block_on(drive(&bare, "/api/items", iters)))
    });
    group.bench_function("cache hit", |b| {
        b.iter_custom(|iters| system.block_on(drive(&cached, "/api/items", iters)))
    });
    group.bench_function("no rule (pass-through)", |b| {
        b.iter_custom(|iters| system.block_on(drive(&cached, "/other", iters)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
