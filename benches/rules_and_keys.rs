//! Rule matching and key derivation with 100 rules.
//!
//! `cargo bench --bench rules_and_keys`

#![allow(missing_docs)]

use cachet::{Cache, Rule, UserId};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn cache_with_100_rules() -> Cache {
    let rules = (0..100).map(|i| {
        Rule::new(format!(r"^/api/v1/resource{i}/(\d+)/items$"))
            .vary_by_user(i % 2 == 0)
            .vary_headers(["accept-language"])
    });
    Cache::builder().rules(rules).build().expect("valid rules")
}

fn bench(c: &mut Criterion) {
    let cache = cache_with_100_rules();
    let rules = cache.rules().clone();

    let mut group = c.benchmark_group("100 rules");
    group.bench_function("match: rule 50", |b| {
        b.iter(|| {
            rules
                .find(black_box("/api/v1/resource50/12345/items"))
                .map(|r| r.index())
        })
    });
    group.bench_function("match: no rule", |b| {
        b.iter(|| rules.find(black_box("/static/app.css")).is_none())
    });

    let mut shared = http::Request::get("/api/v1/resource51/12345/items?sort=name&page=2")
        .header("accept-language", "en-GB")
        .body(())
        .unwrap();
    shared.extensions_mut().insert(UserId::new("user-1"));
    group.bench_function("plan: shared rule, query, one header", |b| {
        b.iter(|| {
            cache
                .plan(black_box(&shared))
                .map(|p| p.key().as_str().len())
        })
    });

    let mut per_user = http::Request::get("/api/v1/resource50/12345/items?sort=name&page=2")
        .header("accept-language", "en-GB")
        .body(())
        .unwrap();
    per_user.extensions_mut().insert(UserId::new("user-1"));
    group.bench_function("plan: per-user rule, query, one header", |b| {
        b.iter(|| {
            cache
                .plan(black_box(&per_user))
                .map(|p| p.key().as_str().len())
        })
    });

    let unmatched = http::Request::get("/static/app.css").body(()).unwrap();
    group.bench_function("plan: no rule", |b| {
        b.iter(|| cache.plan(black_box(&unmatched)).is_none())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
