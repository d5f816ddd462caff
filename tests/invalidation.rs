//! Invalidation after unsafe requests (RFC 9111 §4.4) and tags, through
//! `InvalidationLayer` + `CacheLayer` over an axum origin.

mod support;

use std::time::Duration;
use support::{request, App};

const RESPOND: &str = "/api/respond";

/// Caches `uri` (a GET) and checks the next GET is a hit.
async fn warm(app: &App, uri: &str, headers: &[(&str, &str)]) {
    app.send(request("GET", uri, headers)).await;
    assert_eq!(
        app.send(request("GET", uri, headers)).await.outcome(),
        "HIT",
        "{uri} is cached"
    );
}

async fn is_cached(app: &App, uri: &str, headers: &[(&str, &str)]) -> bool {
    let reply = app.send(request("GET", uri, headers)).await;
    reply.outcome() == "HIT"
}

#[tokio::test]
async fn each_unsafe_method_invalidates_the_target_uri_rfc9111_4_4() {
    for method in ["POST", "PUT", "PATCH", "DELETE", "PURGE"] {
        let app = App::new();
        warm(&app, RESPOND, &[]).await;
        let mutation = app.send(request(method, RESPOND, &[])).await;
        assert_eq!(mutation.status, 200);
        assert!(!is_cached(&app, RESPOND, &[]).await, "{method}");
    }
}

#[tokio::test]
async fn the_target_uri_goes_with_all_its_methods_users_and_variants_rfc9111_4_4() {
    let app = App::new();
    let vary = ("x-respond-vary", "accept-encoding");
    warm(&app, RESPOND, &[vary, ("accept-encoding", "gzip")]).await;
    warm(&app, RESPOND, &[vary, ("accept-encoding", "br")]).await;
    warm(&app, "/api/me", &[("authorization", "alice")]).await;
    warm(&app, "/api/me", &[("authorization", "bob")]).await;
    app.send(request("POST", RESPOND, &[])).await;
    app.send(request("DELETE", "/api/me", &[])).await;
    assert!(app.cache.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_query_is_part_of_the_target_uri_rfc9111_4_4() {
    let app = App::new();
    warm(&app, "/api/respond?b=2&a=1", &[]).await;
    warm(&app, "/api/respond?a=2", &[]).await;
    app.send(request("PUT", "/api/respond?b=2&a=1", &[])).await;
    assert!(!is_cached(&app, "/api/respond?b=2&a=1", &[]).await);
    assert!(is_cached(&app, "/api/respond?a=2", &[]).await);
}

#[tokio::test]
async fn location_and_content_location_are_invalidated_when_same_origin_rfc9111_4_4() {
    let app = App::new();
    warm(&app, "/api/items", &[]).await;
    warm(&app, "/api/shared-head", &[]).await;
    app.send(request(
        "POST",
        RESPOND,
        &[
            ("host", "example.com"),
            ("x-status", "201"),
            ("x-respond-location", "/api/items"),
            (
                "x-respond-content-location",
                "http://EXAMPLE.com/api/shared-head",
            ),
        ],
    ))
    .await;
    assert!(!is_cached(&app, "/api/items", &[]).await);
    assert!(!is_cached(&app, "/api/shared-head", &[]).await);
}

#[tokio::test]
async fn a_cross_origin_location_is_ignored_rfc9111_4_4() {
    let app = App::new();
    warm(&app, "/api/items", &[]).await;
    app.send(request(
        "POST",
        RESPOND,
        &[
            ("host", "example.com"),
            ("x-status", "303"),
            ("x-respond-location", "https://other.example/api/items"),
        ],
    ))
    .await;
    assert!(is_cached(&app, "/api/items", &[]).await);
}

#[tokio::test]
async fn error_responses_invalidate_nothing_rfc9111_4_4() {
    for status in ["400", "404", "409", "500", "503"] {
        let app = App::new();
        warm(&app, RESPOND, &[]).await;
        let failed = app
            .send(request("POST", RESPOND, &[("x-status", status)]))
            .await;
        assert_eq!(failed.status.as_str(), status);
        assert!(is_cached(&app, RESPOND, &[]).await, "{status}");
    }
}

#[tokio::test]
async fn safe_methods_invalidate_nothing() {
    let app = App::new();
    warm(&app, RESPOND, &[]).await;
    app.send(request("OPTIONS", RESPOND, &[])).await;
    assert!(is_cached(&app, RESPOND, &[]).await);
}

const PER_USER: &str = r#"
[[rules]]
path = '^/api/'
vary_by_user = true
invalidate_scope = "user"
invalidates = ['^/api/items']
"#;

#[tokio::test]
async fn user_scope_clears_the_users_entries_and_leaves_others() {
    let app = App::with_rules(PER_USER);
    let alice = [("authorization", "alice")];
    let bob = [("authorization", "bob")];
    warm(&app, RESPOND, &alice).await;
    warm(&app, RESPOND, &bob).await;
    warm(&app, "/api/items", &alice).await;
    warm(&app, "/api/items", &bob).await;
    app.send(request("POST", RESPOND, &alice)).await;
    assert!(!is_cached(&app, RESPOND, &alice).await);
    assert!(
        !is_cached(&app, "/api/items", &alice).await,
        "the rule's regex"
    );
    assert!(is_cached(&app, RESPOND, &bob).await);
    assert!(is_cached(&app, "/api/items", &bob).await);
}

#[tokio::test]
async fn the_rules_invalidates_regexes_clear_matching_keys() {
    let app = App::with_rules(
        "[[rules]]\npath = '^/api/respond'\ninvalidates = ['^/api/items', '^/api/small/']\n\n[[rules]]\npath = '^/api/'\n",
    );
    warm(&app, "/api/items", &[]).await;
    warm(&app, "/api/small/1", &[]).await;
    warm(&app, "/api/shared-head", &[]).await;
    app.send(request("PATCH", RESPOND, &[])).await;
    assert!(!is_cached(&app, "/api/items", &[]).await);
    assert!(!is_cached(&app, "/api/small/1", &[]).await);
    assert!(is_cached(&app, "/api/shared-head", &[]).await);
}

#[tokio::test]
async fn a_mutation_purges_the_tags_its_response_carries() {
    let app = App::new();
    let material = |id: &str| format!("/api/respond?material={id}");
    let tag_42 = [("x-respond-cache-tag", "material:42, materials")];
    warm(&app, &material("42"), &tag_42).await;
    warm(
        &app,
        &material("7"),
        &[("x-respond-cache-tag", "material:7 materials")],
    )
    .await;
    // Saving material 42 answers with its tag: only its entries go.
    let saved = app
        .send(request(
            "PUT",
            "/api/materials/42",
            &[("x-respond-cache-tag", "material:42")],
        ))
        .await;
    assert_eq!(saved.status, 404, "no such route: nothing invalidated");
    assert!(is_cached(&app, &material("42"), &tag_42).await);
    app.send(request(
        "PUT",
        "/api/respond?save=42",
        &[("x-respond-cache-tag", "material:42")],
    ))
    .await;
    assert!(!is_cached(&app, &material("42"), &tag_42).await);
    assert!(is_cached(&app, &material("7"), &[]).await);
}

#[tokio::test]
async fn the_tag_header_never_reaches_the_client() {
    let app = App::new();
    let tagged = [("x-respond-cache-tag", "material:1")];
    let miss = app.send(request("GET", RESPOND, &tagged)).await;
    assert_eq!(miss.header("cache-tag"), None);
    let hit = app.send(request("GET", RESPOND, &tagged)).await;
    assert_eq!((hit.outcome(), hit.header("cache-tag")), ("HIT", None));
    let post = app.send(request("POST", RESPOND, &tagged)).await;
    assert_eq!(post.header("cache-tag"), None);
}

#[tokio::test]
async fn the_tag_header_is_configurable_and_can_be_kept() {
    let app = App::with_rules(
        "[tags]\nheader = 'Surrogate-Key'\nstrip = false\n\n[[rules]]\npath = '^/api/'\n",
    );
    let tagged = [("x-respond-surrogate-key", "a b")];
    let reply = app.send(request("GET", RESPOND, &tagged)).await;
    assert_eq!(reply.header("surrogate-key"), Some("a b"));
    assert_eq!(app.cache.purge_tag("b").await.unwrap(), 1);
    assert!(!is_cached(&app, RESPOND, &tagged).await);
}

#[tokio::test]
async fn purge_uri_clears_every_variant_of_a_url() {
    let app = App::new();
    let vary = ("x-respond-vary", "accept-language");
    warm(&app, RESPOND, &[vary, ("accept-language", "en")]).await;
    warm(&app, RESPOND, &[vary, ("accept-language", "fr")]).await;
    assert!(app.cache.purge_uri(RESPOND, None).await.unwrap() >= 3);
    assert!(!is_cached(&app, RESPOND, &[vary, ("accept-language", "fr")]).await);
}

#[tokio::test]
async fn purge_by_tag_over_100_000_entries_removes_exactly_the_tagged_ones() {
    let cache = cachet::Cache::builder()
        .cache(
            "default",
            cachet::CacheSpec::new(1 << 30, Duration::from_secs(600)),
        )
        .rule(cachet::Rule::new("^/"))
        .build()
        .unwrap();
    for n in 0..100_000u32 {
        let req = http::Request::get(format!("/m/{n}")).body(()).unwrap();
        let cachet::adapter::Route::Cache(plan) = cachet::adapter::route(&cache, &req) else {
            unreachable!()
        };
        let origin = |_req: http::Request<()>| async move {
            let mut response =
                http::Response::new(http_body_util::Full::new(bytes::Bytes::from("x")));
            if n % 10 == 0 {
                response
                    .headers_mut()
                    .insert("cache-tag", "tenth".parse().unwrap());
            }
            Ok::<_, std::convert::Infallible>(response)
        };
        cachet::adapter::serve(cache.clone(), plan.into(), origin, req)
            .await
            .unwrap();
    }
    assert_eq!(cache.purge_tag("tenth").await.unwrap(), 10_000);
    let keys = cache.keys().await.unwrap();
    assert_eq!(keys.len(), 90_000);
    assert!(keys.iter().all(|k| {
        let n: u32 = k.key.as_str()[3..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        n % 10 != 0
    }));
    assert_eq!(cache.purge_tag("tenth").await.unwrap(), 0);
}

#[tokio::test]
async fn the_tag_index_holds_nothing_for_expired_keys() {
    let app = App::new();
    let tagged = [
        ("x-respond-cache-tag", "material:1"),
        ("x-respond-cache-control", "max-age=10"),
    ];
    for n in 0..50 {
        app.send(request("GET", &format!("{RESPOND}?n={n}"), &tagged))
            .await;
    }
    // Each entry: its tag and its URI.
    assert_eq!(app.cache.stats().caches["default"].tagged, 100);
    app.clock.advance(Duration::from_secs(11));
    let stats = app.cache.stats();
    assert_eq!(stats.caches["default"].entries, 0);
    assert_eq!(stats.caches["default"].tagged, 0);
    assert_eq!(app.cache.purge_tag("material:1").await.unwrap(), 0);
}

#[tokio::test]
async fn handlers_can_tag_with_a_response_extension() {
    use axum::response::IntoResponse;
    use axum::routing::get;
    let cache = cachet::Cache::builder()
        .rule(cachet::Rule::new("^/"))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/materials/{id}",
            get(|| async {
                let mut response = "steel".into_response();
                response
                    .extensions_mut()
                    .insert(cachet::CacheTags::new(["material:42"]));
                response
            }),
        )
        .layer(cachet::CacheLayer::new(cache.clone()));
    let get = || http::Request::get("/materials/42").body(axum::body::Body::empty());
    tower::ServiceExt::oneshot(app.clone(), get().unwrap())
        .await
        .unwrap();
    assert_eq!(cache.purge_tag("material:42").await.unwrap(), 1);
    assert!(cache.keys().await.unwrap().is_empty());
}

/// The migration guide's list/detail pattern: a detail's mutation clears
/// its list, every page of it, and nothing that merely shares a prefix.
#[tokio::test]
async fn an_invalidates_regex_over_keys_reaches_a_list_and_its_pages_only() {
    let app = App::with_rules(
        "[[rules]]\npath = '^/api/respond'\ninvalidates = ['^/api/items[? ]']\n\n[[rules]]\npath = '^/api/'\n",
    );
    warm(&app, "/api/items", &[]).await;
    warm(&app, "/api/items?page=2", &[]).await;
    warm(&app, "/api/itemsets", &[]).await;
    app.send(request("PUT", RESPOND, &[])).await;
    assert!(!is_cached(&app, "/api/items", &[]).await);
    assert!(!is_cached(&app, "/api/items?page=2", &[]).await);
    assert!(is_cached(&app, "/api/itemsets", &[]).await);
}
