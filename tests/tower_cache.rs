//! The Tower layer end to end, on an axum origin and a mock clock.

mod support;

use axum::body::Body;
use cachet::store::StoreError;
use cachet::store::{Entry, Store};
use cachet::{CacheKey, UserId};
use http_body_util::BodyExt;
use regex::Regex;
use std::sync::Arc;
use std::time::Duration;
use support::{request, App};
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn a_hit_never_calls_the_origin() {
    let app = App::new();
    let first = app.get("/api/items").await;
    assert_eq!((first.outcome(), first.body.as_str()), ("MISS", "items #1"));
    for _ in 0..5 {
        let hit = app.get("/api/items").await;
        assert_eq!((hit.outcome(), hit.body.as_str()), ("HIT", "items #1"));
        assert_eq!(hit.header("age"), Some("0"));
    }
    assert_eq!(app.origin.calls(), 1);
    let stats = &app.cache.stats().caches["default"];
    assert_eq!((stats.hits, stats.misses, stats.inserts), (5, 1, 1));
}

#[tokio::test]
async fn requests_without_a_rule_pass_through_untouched() {
    let app = App::new();
    let one = app.get("/uncached").await;
    let two = app.get("/uncached").await;
    assert_eq!(
        (one.body.as_str(), two.body.as_str()),
        ("items #1", "items #2")
    );
    assert_eq!(one.header("cache-status"), None);
    assert_eq!(app.origin.calls(), 2);
}

#[tokio::test]
async fn unsafe_methods_pass_through() {
    let app = App::new();
    app.get("/api/items").await;
    let post = app.send(request("POST", "/api/items", &[])).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("cache-status"), Some("cachet; fwd=method"));
    assert_eq!(app.get("/api/items").await.outcome(), "HIT");
}

#[tokio::test]
async fn age_is_the_resident_time() {
    let app = App::new();
    app.get("/api/items").await;
    app.clock.advance(Duration::from_secs(7));
    assert_eq!(app.get("/api/items").await.header("age"), Some("7"));
}

#[tokio::test]
async fn entries_expire_after_their_ttl_on_the_injected_clock() {
    let app = App::new();
    app.get("/api/items").await;
    app.clock.advance(Duration::from_secs(59));
    assert_eq!(app.get("/api/items").await.outcome(), "HIT");
    app.clock.advance(Duration::from_secs(1));
    let after = app.get("/api/items").await;
    assert_eq!((after.outcome(), after.body.as_str()), ("MISS", "items #2"));
    assert_eq!(app.cache.stats().caches["default"].expirations, 1);
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry_when_not_varying_by_method() {
    let app = App::new();
    let get = app.get("/api/shared-head").await;
    let head = app.send(request("HEAD", "/api/shared-head", &[])).await;
    assert_eq!(head.outcome(), "HIT");
    assert_eq!(head.body, "");
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    assert_eq!(app.origin.calls(), 1);
}

#[tokio::test]
async fn a_head_response_never_becomes_the_get_entry() {
    let app = App::new();
    let head = app.send(request("HEAD", "/api/shared-head", &[])).await;
    assert_eq!(head.outcome(), "MISS");
    let get = app.get("/api/shared-head").await;
    assert_eq!((get.outcome(), get.body.as_str()), ("MISS", "items #2"));
    assert_eq!(app.get("/api/shared-head").await.body, "items #2");
}

#[tokio::test]
async fn head_is_answered_from_the_get_entry_and_has_its_own_when_varying_by_method_rfc9111_4() {
    let app = App::new();
    app.get("/api/items").await;
    // A stored GET answers the HEAD (RFC 9111 §4).
    let head = app.send(request("HEAD", "/api/items", &[])).await;
    assert_eq!((head.outcome(), head.body.as_str()), ("HIT", ""));
    assert_eq!(app.origin.calls(), 1);
    // Without a GET entry, the HEAD goes upstream and is stored as itself...
    let head = app.send(request("HEAD", "/api/itemsets", &[])).await;
    assert_eq!(head.outcome(), "MISS");
    assert_eq!(
        app.send(request("HEAD", "/api/itemsets", &[]))
            .await
            .outcome(),
        "HIT"
    );
    // ...which never answers a GET.
    assert_eq!(app.get("/api/itemsets").await.outcome(), "MISS");
    assert_eq!(app.origin.calls(), 3);
}

#[tokio::test]
async fn the_query_is_keyed_as_received() {
    let app = App::new();
    assert_eq!(app.get("/api/items?b=2&a=1").await.outcome(), "MISS");
    assert_eq!(app.get("/api/items?a=1&b=2").await.outcome(), "MISS");
    assert_eq!(app.get("/api/items?b=2&a=1").await.outcome(), "HIT");
    assert_eq!(app.get("/api/items?b=2&a=1&").await.outcome(), "MISS");
    let other = app.get("/api/items?a=1&b=3").await;
    assert_eq!((other.outcome(), other.body.as_str()), ("MISS", "items #4"));
    assert_eq!(app.get("/api/items").await.body, "items #5");
}

#[tokio::test]
async fn a_normalized_query_is_what_the_application_receives() {
    let app = App::with_rules("[[rules]]\npath = '^/api/'\nnormalize_query = true\n");
    let first = app.get("/api/target?b=2&a=1&&").await;
    assert_eq!(first.body, "/api/target?a=1&b=2 #1");
    assert_eq!(app.get("/api/target?a=1&b=%32").await.outcome(), "HIT");
    assert_eq!(
        app.get("/api/target?a=1&b=3").await.body,
        "/api/target?a=1&b=3 #2"
    );
}

#[tokio::test]
async fn inside_a_router_non_canonical_paths_bypass_the_cache() {
    // `Router::layer` runs after routing: the path cannot be rewritten.
    let app = App::new();
    let odd = app.get("/api/targ%65t?q=1").await;
    assert_eq!(odd.outcome(), "BYPASS");
    assert_eq!(app.get("/api/target?q=1").await.outcome(), "MISS");
}

#[tokio::test]
async fn around_the_router_the_application_routes_on_the_canonical_path() {
    let cache = cachet::Cache::from_toml("[[rules]]\npath = '^/api/'\n").unwrap();
    let origin = support::Origin::default();
    let app = cachet::CacheLayer::new(cache)
        .rewrite_paths(true)
        .layer(support::router(origin.clone()));
    let get = |uri: &'static str| {
        let app = app.clone();
        async move {
            let reply = app
                .oneshot(support::request("GET", uri, &[]))
                .await
                .unwrap();
            let status = reply.headers()["cache-status"].to_str().unwrap().to_owned();
            let body = reply.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, body) = get("/api/targ%65t?q=1").await;
    assert!(status.contains("stored"), "{status}");
    assert_eq!(
        body, "/api/target?q=1 #1",
        "the application got the canonical target"
    );
    for same in [
        "/api/target?q=1",
        "/api/./x/../target?q=1",
        "/api/%74arget?q=1",
    ] {
        assert!(get(same).await.0.contains("hit"), "{same}");
    }
    // Paths origins read differently are never cached.
    for ambiguous in [
        "/api/x/..%2Ftarget",
        "/api//target",
        "/api/target;x=1",
        "/api/%2e%2e/api/target",
    ] {
        assert!(get(ambiguous).await.0.contains("fwd=bypass"), "{ambiguous}");
    }
    // One fetch; axum routes the ambiguous paths as given, to no handler.
    assert_eq!(origin.calls(), 1);
}

#[tokio::test]
async fn varied_headers_key_their_own_variants() {
    let app = App::new();
    let lang = |value: &'static str| request("GET", "/api/lang", &[("accept-language", value)]);
    assert_eq!(app.send(lang("en")).await.body, "lang=en #1");
    assert_eq!(app.send(lang("fr")).await.body, "lang=fr #2");
    let en = app.send(lang("en")).await;
    assert_eq!((en.outcome(), en.body.as_str()), ("HIT", "lang=en #1"));
    // Surrounding whitespace is not part of the value.
    assert_eq!(app.send(lang(" en ")).await.body, "lang=en #1");
    // Absent and empty are different variants.
    assert_eq!(app.get("/api/lang").await.body, "lang=none #3");
    assert_eq!(app.send(lang("")).await.body, "lang= #4");
    assert_eq!(app.get("/api/lang").await.body, "lang=none #3");
}

#[tokio::test]
async fn users_get_their_own_entries() {
    let app = App::new();
    let as_user = |token: &'static str| request("GET", "/api/me", &[("authorization", token)]);
    assert_eq!(app.send(as_user("Bearer a")).await.body, "me=Bearer a #1");
    assert_eq!(app.send(as_user("Bearer b")).await.body, "me=Bearer b #2");
    let again = app.send(as_user("Bearer a")).await;
    assert_eq!(
        (again.outcome(), again.body.as_str()),
        ("HIT", "me=Bearer a #1")
    );
    assert_eq!(app.get("/api/me").await.body, "me=anonymous #3");
    assert_eq!(app.get("/api/me").await.body, "me=anonymous #3");
    let mut by_extension = request("GET", "/api/me", &[]);
    by_extension.extensions_mut().insert(UserId::new("42"));
    assert_eq!(app.send(by_extension).await.body, "me=ext:42 #4");
    // Keys hold a hash, never the credential.
    let keys = app.cache.keys().await.unwrap();
    assert!(
        keys.iter().all(|k| !k.key.as_str().contains("Bearer")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn responses_the_policy_refuses_are_not_stored() {
    let refused: [&[(&str, &str)]; 7] = [
        &[("x-respond-set-cookie", "session=1")],
        &[("x-respond-cache-control", "no-store")],
        &[("x-respond-cache-control", "Private")],
        &[("x-respond-cache-control", "no-cache")],
        &[("x-respond-vary", "*")],
        &[("x-status", "500")],
        &[("authorization", "Bearer a")],
    ];
    for headers in refused {
        let app = App::new();
        app.send(request("GET", "/api/respond", headers)).await;
        let second = app.send(request("GET", "/api/respond", headers)).await;
        assert_eq!(second.outcome(), "MISS", "{headers:?}");
        assert_eq!(app.origin.calls(), 2, "{headers:?}");
        assert_eq!(
            app.cache.stats().caches["default"].not_stored,
            2,
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn authorized_requests_are_shared_when_the_response_is_public() {
    let app = App::new();
    let headers = [
        ("authorization", "Bearer a"),
        ("x-respond-cache-control", "public"),
    ];
    app.send(request("GET", "/api/respond", &headers)).await;
    assert_eq!(
        app.send(request("GET", "/api/respond", &headers))
            .await
            .outcome(),
        "HIT"
    );
}

#[tokio::test]
async fn bodies_over_max_body_pass_through_whole() {
    let app = App::new();
    for n in 1..=2 {
        let reply = app.get("/api/big").await;
        assert_eq!(reply.body.len(), 4096);
        assert_eq!(reply.outcome(), "MISS");
        assert_eq!(app.origin.calls(), n);
    }
    assert_eq!(app.cache.stats().caches["default"].not_stored, 2);
}

#[tokio::test]
async fn streamed_bodies_within_max_body_are_stored() {
    let app = App::new();
    let first = app.get("/api/stream").await;
    assert_eq!(first.body, "chunk0-1;chunk1-1;chunk2-1;chunk3-1;");
    let second = app.get("/api/stream").await;
    assert_eq!((second.outcome(), &second.body), ("HIT", &first.body));
    assert_eq!(second.header("content-length"), Some("36"));
}

#[tokio::test]
async fn max_bytes_bounds_each_named_cache() {
    let app = App::new();
    for n in 0..200 {
        app.get(&format!("/api/small/{n}")).await;
    }
    let small = &app.cache.stats().caches["small"];
    assert!(small.bytes <= 8 * 1024, "{small:?}");
    assert!(small.evictions > 0, "{small:?}");
    assert_eq!(small.entries + small.evictions, 200, "{small:?}");
}

#[tokio::test]
async fn keys_can_be_listed_deleted_refreshed_and_cleared() {
    let app = App::new();
    for uri in [
        "/api/items",
        "/api/items?page=2",
        "/api/stream",
        "/api/small/1",
    ] {
        app.get(uri).await;
    }
    let keys: Vec<String> = app
        .cache
        .keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.key.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "/api/items GET",
            "/api/items?page=2 GET",
            "/api/stream GET",
            "/api/small/1 GET"
        ]
    );
    let items = Regex::new("^/api/items").unwrap();
    assert_eq!(app.cache.keys_matching(&items).await.unwrap().len(), 2);

    assert!(app.cache.delete("/api/stream GET").await.unwrap());
    assert!(!app.cache.delete("/api/stream GET").await.unwrap());
    assert_eq!(app.get("/api/stream").await.outcome(), "MISS");

    app.clock.advance(Duration::from_secs(50));
    assert_eq!(
        app.cache
            .touch_matching(&items, Duration::from_secs(600))
            .await
            .unwrap(),
        2
    );
    app.clock.advance(Duration::from_secs(100));
    assert_eq!(app.get("/api/items").await.outcome(), "HIT");
    assert!(app
        .cache
        .touch("/api/small/1 GET", Duration::from_secs(600))
        .await
        .is_ok());

    assert_eq!(app.cache.delete_matching(&items).await.unwrap(), 2);
    assert_eq!(app.get("/api/items").await.outcome(), "MISS");

    app.cache.clear("small").await.unwrap();
    assert!(app
        .cache
        .keys_matching(&Regex::new("small").unwrap())
        .await
        .unwrap()
        .is_empty());
    app.cache.clear_all().await.unwrap();
    assert!(app.cache.keys().await.unwrap().is_empty());
    let err = app.cache.clear("nope").await.unwrap_err();
    assert!(err.to_string().contains("unknown cache `nope`"));
}

/// A store whose every operation fails, like an unreachable Redis.
#[derive(Debug)]
struct BrokenStore;

#[async_trait::async_trait]
impl Store for BrokenStore {
    async fn get(
        &self,
        _: &str,
        _: &CacheKey,
        _: std::time::SystemTime,
    ) -> Result<Option<Entry>, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn insert(&self, _: &str, _: &CacheKey, _: Entry) -> Result<(), StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn remove(&self, _: &str, _: &CacheKey) -> Result<bool, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn keys(&self, _: &str) -> Result<Vec<CacheKey>, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn tagged(&self, _: &str, _: &str) -> Result<Vec<CacheKey>, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn clear(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::new("connection refused"))
    }
    fn usage(&self, _: &str) -> Option<cachet::store::StoreUsage> {
        None
    }
}

#[tokio::test]
async fn a_store_failure_falls_back_to_the_origin() {
    let cache = cachet::CacheBuilder::from_toml(support::RULES)
        .unwrap()
        .store(Arc::new(BrokenStore))
        .build()
        .unwrap();
    let origin = support::Origin::default();
    let router = support::router(origin.clone()).layer(cachet::CacheLayer::new(cache.clone()));
    for n in 1..=2 {
        let response =
            tower::ServiceExt::oneshot(router.clone(), request("GET", "/api/items", &[]))
                .await
                .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(origin.calls(), n);
    }
    // Per request the lookup and the insert failed, and each was counted.
    assert_eq!(cache.stats().caches["default"].store_errors, 4);
}

#[tokio::test]
async fn an_origin_body_error_reaches_the_client_and_is_not_stored() {
    use http_body_util::BodyExt;
    let cache = cachet::Cache::from_toml(support::RULES).unwrap();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let origin = tower::service_fn(move |_req: http::Request<Body>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let chunks = vec![
                Ok(bytes::Bytes::from_static(b"partial")),
                Err(std::io::Error::other("reset")),
            ];
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::from_stream(
                futures_util::stream::iter(chunks),
            )))
        }
    });
    let service = tower::ServiceBuilder::new()
        .layer(cachet::CacheLayer::new(cache.clone()))
        .service(origin);
    for n in 1..=2 {
        let response =
            tower::ServiceExt::oneshot(service.clone(), request("GET", "/api/items", &[]))
                .await
                .unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "partial");
        assert!(body.frame().await.unwrap().is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), n);
    }
    assert_eq!(cache.stats().caches["default"].inserts, 0);
}

#[tokio::test]
async fn range_requests_are_answered_from_the_stored_response_rfc9110_14() {
    let app = App::new();
    app.get("/api/items").await;
    let ranged = app
        .send(request("GET", "/api/items", &[("range", "bytes=0-1")]))
        .await;
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("content-range"), Some("bytes 0-1/8"));
    assert_eq!(ranged.header("cache-status"), Some("cachet; hit; ttl=60"));
    assert_eq!(app.origin.calls(), 1);
}

type Reflecting = tower::util::BoxCloneService<
    http::Request<Body>,
    http::Response<cachet::adapter::ResponseBody<Body>>,
    std::convert::Infallible,
>;

/// An application that answers with the `Host` and `X-Tenant` lines it
/// received, behind the layer of a cache that keys both.
fn reflecting() -> (Reflecting, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let cache = cachet::Cache::builder()
        .rule(cachet::Rule::new("^/").vary_headers([http::HeaderName::from_static("x-tenant")]))
        .key_host(true)
        .build()
        .unwrap();
    let origin = tower::service_fn(move |req: http::Request<Body>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let lines = |name: &str| {
            req.headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join("|")
        };
        let body = format!("host={} tenant={}", lines("host"), lines("x-tenant"));
        async move {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .header("cache-control", "max-age=60")
                    .body(Body::from(body))
                    .unwrap(),
            )
        }
    });
    let service = cachet::CacheLayer::new(cache).layer(origin);
    (tower::util::BoxCloneService::new(service), calls)
}

#[tokio::test]
async fn the_application_receives_the_host_and_headers_the_key_holds() {
    let (app, calls) = reflecting();
    let send = |headers: &[(&str, &str)]| {
        let mut req = http::Request::get("/page");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let app = app.clone();
        let req = req.body(Body::empty()).unwrap();
        async move {
            let response = app.oneshot(req).await.unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            String::from_utf8_lossy(&body).into_owned()
        }
    };
    let first = send(&[
        ("host", "Shop.EXAMPLE:80"),
        ("x-tenant", "a"),
        ("x-tenant", "b"),
    ])
    .await;
    assert_eq!(
        first, "host=shop.example tenant=a, b",
        "as keyed, in one line"
    );
    // Every request of that key gets what the application built for it.
    assert_eq!(
        send(&[("host", "shop.example"), ("x-tenant", "a, b")]).await,
        first
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // An application reading only the first line sees `a` here: its own key.
    assert_eq!(
        send(&[("host", "shop.example"), ("x-tenant", "a")]).await,
        "host=shop.example tenant=a"
    );
    // Two Hosts: never cached, whichever one the application reads.
    send(&[("host", "shop.example"), ("host", "evil.example")]).await;
    send(&[("host", "shop.example"), ("host", "evil.example")]).await;
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 4);
}
