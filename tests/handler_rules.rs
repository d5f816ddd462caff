//! Rules attached to one handler: counted under their cache, refused where
//! a cache holds values (a named cache holds values or responses, never
//! both), errors naming the field.

use axum::routing::get;
use axum::Router;
use cachet::{Cache, Rule};
use std::time::Duration;
use tower::ServiceExt;

fn cache() -> Cache {
    cachet::CacheBuilder::from_toml(
        r#"
        [caches.pages]
        max_bytes = "1MiB"
        ttl = "1m"

        [caches.user]
        max_bytes = "1MiB"
        ttl = "10m"
        "#,
    )
    .unwrap()
    .clock(cachet::clock::MockClock::new())
    .build()
    .unwrap()
}

async fn status(app: &Router, path: &str) -> String {
    let req = http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_handler_rule_counts_under_its_cache_in_stats() {
    let cache = cache();
    let layer = cachet::route(&cache, &Rule::handler().cache("pages")).unwrap();
    let app = Router::new().route("/page", get(|| async { "page" }).layer(layer));
    assert!(status(&app, "/page").await.ends_with("stored"));
    let hit = status(&app, "/page").await;
    assert_eq!(hit, "cachet; hit; ttl=60", "the cache's ttl");
    let stats = cache.stats();
    let pages = &stats.caches["pages"];
    assert_eq!((pages.hits, pages.misses, pages.entries), (1, 1, 1));
    assert_eq!(stats.caches["default"].misses, 0);
}

#[test]
fn a_cache_holds_values_or_responses_never_both() {
    let cache = cache();
    cache.values_in("user").unwrap();
    let error = cachet::route(&cache, &Rule::handler().cache("user")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cache `user`: field `cache`: it holds values (Cache::values_in); store responses in another cache"
    );
    cachet::route(&cache, &Rule::handler().cache("pages")).unwrap();
    let error = cache.values_in("pages").unwrap_err().to_string();
    assert!(
        error.contains("a handler's rule stores responses in it"),
        "{error}"
    );
    let error = cachet::route(&cache, &Rule::handler().cache("values"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("section `handler rule`: field `cache`"),
        "{error}"
    );
    let error = cachet::route(&cache, &Rule::handler().ttl(Duration::ZERO))
        .unwrap_err()
        .to_string();
    assert!(error.contains("field `ttl`"), "{error}");
}
