//! Rule matching and key derivation with 100 rules.
//!
//! `cargo bench --bench rules_and_keys`

#![allow(missing_docs)]

use cachet::adapter::{self, Route};
use cachet::{Cache, Rule, UserId};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn cache_with_100_rules() -> Cache {
    let rules = (0..100).map(|i| {
        Rule::new(format!(r"^/api/v1/resource{i}/(\d+)/items$"))
            .vary_by_user(i % 2 == 0)
            .vary_headers([http::header::ACCEPT_LANGUAGE])
    });
    Cache::builder().rules(rules).build().expect("valid rules")
}

fn key_len(route: Route) -> usize {
    match route {
        Route::Cache(plan) => plan.key().as_str().len(),
        _ => 0,
    }
}

fn bench(c: &mut Criterion) {
    let cache = cache_with_100_rules();
    let mut group = c.benchmark_group("100 rules");
    // Matching alone is internal now: a plain GET is matching plus a key.
    let plain = http::Request::get("/api/v1/resource51/12345/items")
        .body(())
        .unwrap();
    group.bench_function("plan: rule 51, no query, no header", |b| {
        b.iter(|| key_len(adapter::route(&cache, black_box(&plain))))
    });

    // Even-numbered rules vary by user, odd ones do not.
    for (name, rule) in [
        ("plan: shared rule, query, one header", 51),
        ("plan: per-user rule, query, one header", 50),
    ] {
        let mut req = http::Request::get(format!(
            "/api/v1/resource{rule}/12345/items?sort=name&page=2"
        ))
        .header("accept-language", "en-GB")
        .body(())
        .unwrap();
        req.extensions_mut().insert(UserId::new("user-1"));
        group.bench_function(name, |b| {
            b.iter(|| key_len(adapter::route(&cache, black_box(&req))))
        });
    }

    // The default identity: the `Authorization` header, hashed per request.
    let bearer = http::Request::get("/api/v1/resource50/12345/items")
        .header(
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.dXNlci00Mg.c2lnbmF0dXJl",
        )
        .body(())
        .unwrap();
    group.bench_function("plan: per-user rule, Authorization", |b| {
        b.iter(|| key_len(adapter::route(&cache, black_box(&bearer))))
    });

    let unmatched = http::Request::get("/static/app.css").body(()).unwrap();
    group.bench_function("plan: no rule", |b| {
        b.iter(|| matches!(adapter::route(&cache, black_box(&unmatched)), Route::Pass))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
