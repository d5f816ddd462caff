//! The weigher tells the truth: what a cache counts against `max_bytes` is
//! what its entries really keep alive on the heap (within ±20%), for
//! representative entries. This binary counts every allocation
//! (`stats_alloc`), so its tests run one at a time.

use cachet::{Cache, CacheBuilder, Identity, Route};
use http::{HeaderMap, HeaderValue, StatusCode};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One test at a time: the heap is process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    // `stats_alloc` already counts a reallocation's growth or shrinkage in
    // `bytes_allocated` or `bytes_deallocated`.
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

/// A response shape to store many times.
struct Shape {
    name: &'static str,
    body: usize,
    headers: usize,
    tags: usize,
    variants: usize,
    per_user: bool,
}

const SHAPES: [Shape; 6] = [
    Shape {
        name: "11-byte body",
        body: 11,
        headers: 4,
        tags: 0,
        variants: 0,
        per_user: false,
    },
    Shape {
        name: "1 KiB body",
        body: 1024,
        headers: 4,
        tags: 0,
        variants: 0,
        per_user: false,
    },
    Shape {
        name: "64 KiB body",
        body: 64 * 1024,
        headers: 4,
        tags: 0,
        variants: 0,
        per_user: false,
    },
    Shape {
        name: "20 headers",
        body: 100,
        headers: 20,
        tags: 0,
        variants: 0,
        per_user: false,
    },
    Shape {
        name: "3 tags",
        body: 100,
        headers: 4,
        tags: 3,
        variants: 0,
        per_user: false,
    },
    Shape {
        name: "4 variants, per user",
        body: 100,
        headers: 4,
        tags: 1,
        variants: 4,
        per_user: true,
    },
];

fn cache() -> Cache {
    CacheBuilder::from_toml(
        "[caches.default]\nmax_bytes = \"1GiB\"\nttl = \"1h\"\n\n\
         [[rules]]\npath = '^/u/'\nvary_by_user = true\n\n[[rules]]\npath = '^/'\n",
    )
    .unwrap()
    .identity(Identity::default().secret("s"))
    .build()
    .unwrap()
}

async fn store(cache: &Cache, shape: &Shape, n: usize, variant: usize) {
    let path = if shape.per_user {
        format!("/u/item/{n}")
    } else {
        format!("/item/{n}?page=2")
    };
    let mut req = http::Request::get(path).header("accept-language", format!("l{variant}"));
    if shape.per_user {
        req = req.header("authorization", format!("Bearer user-{}", n % 50));
    }
    let req = req.body(()).unwrap();
    let Route::Cache(plan) = cache.route(&req) else {
        panic!("cached")
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("max-age=3600"));
    headers.insert("server", HeaderValue::from_static("origin/1.0"));
    for extra in 3..shape.headers {
        headers.insert(
            http::HeaderName::from_bytes(format!("x-header-{extra}").as_bytes()).unwrap(),
            HeaderValue::from_str(&format!("value-{extra}-{n}")).unwrap(),
        );
    }
    if shape.variants > 0 {
        headers.insert("vary", HeaderValue::from_static("Accept-Language"));
    }
    let mut tags: Vec<String> = (0..shape.tags)
        .map(|t| format!("group-{}-{t}", n % 100))
        .collect();
    if shape.tags > 0 {
        tags.push(format!("item-{n}"));
    }
    if !tags.is_empty() {
        headers.insert("cache-tag", HeaderValue::from_str(&tags.join(" ")).unwrap());
    }
    let tags = cache.take_tags(&mut headers, None);
    let storable = cache
        .check_storable(&plan, StatusCode::OK, &headers)
        .unwrap()
        .with_tags(tags);
    let body = bytes::Bytes::from(vec![b'x'; shape.body]);
    assert!(
        cache
            .store(&plan, storable, &req, StatusCode::OK, &mut headers, body)
            .await
    );
}

#[tokio::test]
async fn the_weigher_counts_what_entries_keep_alive() {
    let _serial = SERIAL.lock().unwrap();
    let mut report = Vec::new();
    for shape in &SHAPES {
        let count = if shape.body > 10_000 { 500 } else { 5_000 };
        let cache = cache();
        let _ = cache.stats();
        let before = live_bytes();
        for n in 0..count {
            for variant in 0..shape.variants.max(1) {
                store(&cache, shape, n, variant).await;
            }
        }
        let counted = cache.stats().caches["default"].bytes as i64;
        let live = live_bytes() - before;
        let ratio = counted as f64 / live as f64;
        report.push(format!(
            "{}: counted {counted} B, live {live} B, counted/live {ratio:.2}",
            shape.name
        ));
        drop(cache);
    }
    let report = report.join("\n");
    println!("{report}");
    for line in report.lines() {
        let ratio: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.8..=1.2).contains(&ratio), "{report}");
    }
}
