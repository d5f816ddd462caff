//! The weigher tells the truth: what a cache counts against `max_bytes` is
//! what its entries really keep alive on the heap (within ±20%), for
//! representative entries; and a cache filled with ten times its budget,
//! through the Tower layer or through `cachet-proxy`'s upstream path (and,
//! each entry hit once so that it holds its prepared header form, through
//! the Tower layer and actix-web's middleware), holds no more than 1.3 × its
//! budget of live heap, with exact tag and URI indexes (1.2 for tagged
//! responses with `Vary` variants). This binary counts every allocation (`stats_alloc`), so
//! its tests run one at a time.

use cachet::adapter::{self, Route};
use cachet::{Cache, CacheBuilder, Identity};
use http::{HeaderMap, HeaderValue};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use tokio::sync::Mutex;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One test at a time: the heap is process-wide.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Bytes live on the heap now, with the allocator's own header for each
/// live allocation (8 bytes, as in glibc's malloc and as the weigher counts
/// it): what the process pays for them.
fn live_bytes() -> i64 {
    let stats = GLOBAL.stats();
    // `stats_alloc` already counts a reallocation's growth or shrinkage in
    // `bytes_allocated` or `bytes_deallocated`.
    let bytes = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
    let allocations = stats.allocations as i64 - stats.deallocations as i64;
    bytes + 8 * allocations
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

const SHAPES: [Shape; 7] = [
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
        name: "3 tags, 4 variants",
        body: 100,
        headers: 4,
        tags: 2,
        variants: 4,
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
    let Route::Cache(plan) = adapter::route(cache, &req) else {
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
    let body = bytes::Bytes::from(vec![b'x'; shape.body]);
    let origin = |_req: http::Request<()>| async move {
        let mut response = http::Response::new(http_body_util::Full::new(body));
        *response.headers_mut() = headers;
        Ok::<_, std::convert::Infallible>(response)
    };
    let response = adapter::serve(cache.clone(), plan.into(), origin, req)
        .await
        .unwrap()
        .0;
    assert!(
        response.headers()["cache-status"]
            .to_str()
            .unwrap()
            .ends_with("stored"),
        "{:?}",
        response.headers()
    );
}

#[tokio::test]
async fn the_weigher_counts_what_entries_keep_alive() {
    let _serial = SERIAL.lock().await;
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
    // Application values (`ValueCache::set`), serialized.
    let cache = cache();
    let _ = cache.stats();
    let before = live_bytes();
    for n in 0..5_000 {
        let value = format!("computed value number {n} for the report");
        let ttl = std::time::Duration::from_secs(60);
        cache
            .values()
            .set(&format!("report:{n}"), &value, ttl)
            .await
            .unwrap();
    }
    let counted = cache.stats().caches["values"].bytes as i64;
    let live = live_bytes() - before;
    report.push(format!(
        "application values: counted {counted} B, live {live} B, counted/live {:.2}",
        counted as f64 / live as f64
    ));
    drop(cache);
    let report = report.join("\n");
    println!("{report}");
    for line in report.lines() {
        let ratio: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0.8..=1.2).contains(&ratio), "{report}");
    }
}

/// The number that ends a request's path (`/item/42`: 42), else 0.
fn path_number<B>(req: &http::Request<B>) -> usize {
    let last = req.uri().path().rsplit('/').next();
    last.and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Sends requests `0..warm` with `get`, takes the heap's baseline, then
/// sends as many more (numbered on) as ten budgets of such entries hold,
/// sized by what the warm ones cost each. Returns the baseline.
async fn fill_ten_budgets<F, Fut>(cache: &Cache, warm: usize, get: F) -> i64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for n in 0..warm {
        get(n).await;
    }
    let baseline = live_bytes();
    let stats = cache.stats().caches["default"].clone();
    let count = (10 * BUDGET / (stats.bytes / stats.entries)) as usize;
    for n in warm..warm + count {
        get(n).await;
    }
    baseline
}

/// The origin for the fill tests: a 300-byte body, `max-age=3600`, and the
/// tags `group-N` (N = the path's number mod 10).
fn fill_origin() -> axum::Router {
    axum::Router::new().fallback(|req: http::Request<axum::body::Body>| async move {
        let n = path_number(&req);
        http::Response::builder()
            .header("cache-control", "max-age=3600")
            .header("content-type", "text/plain")
            .header("cache-tag", format!("group-{}", n % 10))
            .body(axum::body::Body::from(vec![b'x'; 300]))
            .unwrap()
    })
}

const BUDGET: u64 = 2 * 1024 * 1024;

/// `req` through `service`, its whole answer read as a client reads it.
async fn fetch(
    service: cachet::tower::CacheService<axum::Router>,
    req: http::Request<axum::body::Body>,
) {
    use tower::ServiceExt;
    let response = service.oneshot(req).await.unwrap();
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
}

fn budget_rules() -> String {
    format!("[caches.default]\nmax_bytes = {BUDGET}\nttl = \"1h\"\n\n[[rules]]\npath = '^/'\n")
}

/// Checks a filled cache: live heap above `baseline` within 1.3 × the
/// budget, and the tag index exact — every entry indexed under its URI and
/// its one tag, and a purge removing exactly the live entries it names.
async fn check_filled(cache: &Cache, baseline: i64) {
    let live = live_bytes() - baseline;
    let stats = cache.stats().caches["default"].clone();
    println!(
        "live heap {live} B: {:.2} × the budget",
        live as f64 / BUDGET as f64
    );
    assert!(stats.evictions > 0, "filled past the budget: {stats:?}");
    assert!(
        live as f64 <= 1.3 * BUDGET as f64,
        "live heap {live} B for a budget of {BUDGET} B ({stats:?})"
    );
    assert_eq!(
        stats.tagged,
        2 * stats.entries,
        "no orphans in the tag index"
    );
    let keys = cache.keys().await.unwrap();
    assert_eq!(keys.len() as u64, stats.entries);
    let in_group: Vec<_> = keys
        .iter()
        .filter(|stored| {
            let n: usize = stored
                .key
                .as_str()
                .split(' ')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            n % 10 == 3
        })
        .collect();
    assert_eq!(cache.purge_tag("group-3").await.unwrap(), in_group.len());
    let after = cache.stats().caches["default"].clone();
    assert_eq!(after.entries, stats.entries - in_group.len() as u64);
    assert_eq!(after.tagged, 2 * after.entries);
}

/// Fills ten budgets through the Tower layer, sending each request
/// `sends` times (the first stores, the next are hits), and checks the
/// filled cache.
async fn fill_through_the_tower_layer(sends: usize) {
    use tower::Layer;
    let _serial = SERIAL.lock().await;
    let cache = Cache::from_toml(&budget_rules()).unwrap();
    let service = cachet::CacheLayer::new(cache.clone()).layer(fill_origin());
    let get = |n: usize| {
        let service = service.clone();
        async move {
            for _ in 0..sends {
                let req = http::Request::get(format!("/item/{n}"))
                    .body(axum::body::Body::empty())
                    .unwrap();
                fetch(service.clone(), req).await;
            }
        }
    };
    let baseline = fill_ten_budgets(&cache, 1, get).await;
    if sends > 1 {
        let stats = cache.stats().caches["default"].clone();
        assert_eq!(stats.hits, stats.misses, "each entry stored, then hit");
    }
    check_filled(&cache, baseline).await;
}

#[tokio::test]
async fn ten_budgets_through_the_tower_layer_stay_within_the_budget() {
    fill_through_the_tower_layer(1).await;
}

/// Each entry hit once after it is stored: the hit makes the entry's
/// prepared header map, which the store counts from then on.
#[tokio::test]
async fn ten_budgets_of_hit_entries_through_the_tower_layer_stay_within_the_budget() {
    fill_through_the_tower_layer(2).await;
}

/// The same through actix-web's middleware: its prepared form is a list
/// of actix-web's own header types, counted from the hit that makes it.
#[actix_web::test]
async fn ten_budgets_of_hit_entries_through_actix_web_stay_within_the_budget() {
    use actix_web::{test, web, App, HttpRequest, HttpResponse};
    let _serial = SERIAL.lock().await;
    let cache = Cache::from_toml(&budget_rules()).unwrap();
    let origin = |req: HttpRequest| async move {
        let n: usize = req.match_info().query("n").parse().unwrap_or(0);
        HttpResponse::Ok()
            .insert_header(("cache-control", "max-age=3600"))
            .insert_header(("content-type", "text/plain"))
            .insert_header(("cache-tag", format!("group-{}", n % 10)))
            .body(vec![b'x'; 300])
    };
    let app = test::init_service(
        App::new()
            .wrap(cachet_actix::ResponseCache::new(cache.clone()))
            .route("/item/{n}", web::get().to(origin)),
    )
    .await;
    let get = |n: usize| {
        let app = &app;
        async move {
            for _ in 0..2 {
                let req = test::TestRequest::get()
                    .uri(&format!("/item/{n}"))
                    .to_request();
                test::call_and_read_body(app, req).await;
            }
        }
    };
    let baseline = fill_ten_budgets(&cache, 1, get).await;
    let stats = cache.stats().caches["default"].clone();
    assert_eq!(stats.hits, stats.misses, "each entry stored, then hit");
    check_filled(&cache, baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_budgets_through_the_proxy_stay_within_the_budget() {
    let _serial = SERIAL.lock().await;
    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_addr = origin.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(origin, fill_origin()).await.unwrap() });
    let overrides = cachet_proxy::Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("http://{origin_addr}")),
        clock: None,
    };
    let config = cachet_proxy::ProxyConfig::from_toml(&budget_rules(), &overrides).unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = cachet_proxy::Proxy::new(&config);
    let cache = proxy.cache().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let get = |n: usize| {
        let client = client.clone();
        async move {
            let req = http::Request::get(format!("http://{addr}/item/{n}"))
                .body(http_body_util::Empty::new())
                .unwrap();
            let response = client.request(req).await.unwrap();
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
        }
    };
    // Four warm the connections both ways before the baseline.
    let baseline = fill_ten_budgets(&cache, 4, &get).await;
    check_filled(&cache, baseline).await;
    // The proxy's task holds the cache: stop it while the lock is held, so
    // that its memory is not freed while the next test measures.
    drop(client);
    drop(cache);
    let _ = stop.send(());
    server.await.unwrap();
}

/// The shape `benches/memory.sh` calls `tagged`: three tags and `Vary:
/// Accept-Language`, four variants per URL. Each URL's variant index is
/// read by every variant's lookup, so the cache ends up holding mostly
/// small indexes, and evictions churn through the key index's tables
/// (which give back room as they shrink: this was 1.21 before they did).
#[tokio::test]
async fn ten_budgets_of_tagged_variants_stay_within_the_budget() {
    use tower::Layer;
    let _serial = SERIAL.lock().await;
    let origin = axum::Router::new().fallback(|req: http::Request<axum::body::Body>| async move {
        let n = path_number(&req);
        http::Response::builder()
            .header("cache-control", "max-age=3600")
            .header("content-type", "application/octet-stream")
            .header(
                "cache-tag",
                format!("group-{} shard-{} item-{n}", n % 100, n % 1000),
            )
            .header("vary", "Accept-Language")
            .body(axum::body::Body::from(vec![b'x'; 300]))
            .unwrap()
    });
    let cache = Cache::from_toml(&budget_rules()).unwrap();
    let service = cachet::CacheLayer::new(cache.clone()).layer(origin);
    let get = |n: usize| {
        let req = http::Request::get(format!("/i/{}", n / 4))
            .header("accept-language", format!("l{}", n % 4))
            .body(axum::body::Body::empty())
            .unwrap();
        fetch(service.clone(), req)
    };
    // One URL's four variants and its variant index.
    let baseline = fill_ten_budgets(&cache, 4, get).await;
    let live = live_bytes() - baseline;
    let stats = cache.stats().caches["default"].clone();
    println!(
        "live heap {live} B: {:.2} × the budget, {} entries, {} counted",
        live as f64 / BUDGET as f64,
        stats.entries,
        stats.bytes
    );
    assert!(stats.evictions > 0, "filled past the budget: {stats:?}");
    assert!(
        live as f64 <= 1.2 * BUDGET as f64,
        "live heap {live} B for a budget of {BUDGET} B ({stats:?})"
    );
}
