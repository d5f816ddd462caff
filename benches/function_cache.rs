//! What `#[cached]` costs on a hit: the attribute on an explicit handle,
//! the same key through `ValueCache::get_or_compute` by hand, and the
//! function's body called directly (the baseline a hit replaces: here a
//! body that does no I/O, so the ratio is the cache's whole overhead).
//!
//! `cargo bench --bench function_cache`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use cachet::values::ValueCache;
use cachet::{cached, Cache};
use criterion::{criterion_group, criterion_main, Criterion};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Duration;

#[derive(Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<String>,
}

fn load(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
        roles: vec!["reader".into(), "writer".into()],
    }
}

#[cached(values = values, key = "user:{id}", ttl = "5m")]
async fn user(values: &ValueCache, id: u64) -> Result<User, std::io::Error> {
    Ok(load(id))
}

#[cached(values = values, ttl = "5m")]
async fn user_default_key(values: &ValueCache, id: u64) -> Result<User, std::io::Error> {
    Ok(load(id))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let values = Cache::builder().build().unwrap().values();
    runtime.block_on(async {
        user(&values, 7).await.unwrap();
        user_default_key(&values, 7).await.unwrap();
    });
    let mut group = c.benchmark_group("function cache hit");
    group.bench_function("body called directly", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(load(black_box(7))) });
    });
    group.bench_function("get_or_compute by hand", |b| {
        b.to_async(&runtime).iter(|| async {
            let key = format!("user:{}", black_box(7));
            values
                .get_or_compute(&key, Duration::from_secs(300), || async {
                    Ok::<_, std::io::Error>(load(7))
                })
                .await
                .unwrap()
        });
    });
    group.bench_function("#[cached] with a key template", |b| {
        b.to_async(&runtime)
            .iter(|| async { user(&values, black_box(7)).await.unwrap() });
    });
    group.bench_function("#[cached] with the default key", |b| {
        b.to_async(&runtime)
            .iter(|| async { user_default_key(&values, black_box(7)).await.unwrap() });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
