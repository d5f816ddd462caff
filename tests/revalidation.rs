//! Validation (RFC 9111 §4.3) through the Tower layer: stale entries kept
//! and revalidated with their validators, 304s merged, the client's own
//! preconditions answered by the cache.

mod support;

use axum::body::Body;
use cachet::clock::MockClock;
use cachet::CacheLayer;
use http::{Request, Response, StatusCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{request, App};
use tower::{Layer, Service, ServiceExt};

const COND: &str = "/api/cond";

fn cond(headers: &[(&str, &str)]) -> Request<Body> {
    request("GET", COND, headers)
}

const MAX_AGE_10: (&str, &str) = ("x-respond-cache-control", "max-age=10");

#[tokio::test]
async fn a_stale_entry_is_revalidated_with_its_etag_rfc9111_4_3_1() {
    let app = App::new();
    let first = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(
        first.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
    app.clock.advance(Duration::from_secs(11));

    let revalidated = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(revalidated.status, 200);
    assert_eq!(
        revalidated.body, "body #1",
        "the stored body, not a new one"
    );
    assert_eq!(
        revalidated.header("cache-status"),
        Some("cachet; fwd=stale; fwd-status=304; stored")
    );
    assert_eq!(app.origin.conditions(), ["inm=- ims=-", "inm=\"v1\" ims=-"]);

    // The 304 made the entry fresh again.
    let hit = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=10"));
    assert_eq!(app.origin.calls(), 2);
}

#[tokio::test]
async fn last_modified_is_sent_as_if_modified_since_rfc9111_4_3_1() {
    let app = App::new();
    let modified = ("x-respond-last-modified", "Tue, 01 Sep 2026 10:00:00 GMT");
    app.send(request("GET", "/api/respond", &[MAX_AGE_10, modified]))
        .await;
    app.clock.advance(Duration::from_secs(11));
    // The echoing origin ignores the precondition and answers 200: stored anew.
    let refetched = app
        .send(request("GET", "/api/respond", &[MAX_AGE_10, modified]))
        .await;
    assert_eq!(refetched.body, "headers #2");
    assert_eq!(
        refetched.header("cache-status"),
        Some("cachet; fwd=stale; fwd-status=200; stored")
    );
}

#[tokio::test]
async fn a_304_updates_the_stored_headers_but_not_content_length_rfc9111_4_3_4() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10, ("x-respond-x-version", "1")]))
        .await;
    app.clock.advance(Duration::from_secs(11));
    let revalidated = app
        .send(cond(&[
            ("x-respond-cache-control", "max-age=30"),
            ("x-respond-x-version", "2"),
        ]))
        .await;
    assert_eq!(revalidated.header("x-version"), Some("2"));
    assert_eq!(revalidated.header("content-length"), Some("7"));
    assert_eq!(revalidated.body, "body #1");

    let hit = app.send(cond(&[])).await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=30"));
    assert_eq!(hit.header("x-version"), Some("2"));
    assert_eq!(hit.header("content-length"), Some("7"));
}

#[tokio::test]
async fn a_304_for_another_representation_is_not_merged_rfc9111_4_3_4() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10])).await;
    app.clock.advance(Duration::from_secs(11));
    // The origin's current tag is "v2", but it claims "not modified" with it:
    // that 304 does not describe the stored "v1" response.
    let odd = app
        .send(cond(&[
            MAX_AGE_10,
            ("x-etag", "\"v1\""),
            ("x-respond-etag", "\"v2\""),
        ]))
        .await;
    assert_eq!(odd.status, 304);
    assert_eq!(
        odd.header("cache-status"),
        Some("cachet; fwd=stale; fwd-status=304")
    );
    // The stored copy was dropped, not refreshed.
    let next = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(
        next.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
}

#[tokio::test]
async fn a_304_without_a_revalidation_is_passed_on_not_stored_rfc9111_4_3_4() {
    let app = App::new();
    let unsolicited = app
        .send(request(
            "GET",
            "/api/respond",
            &[
                ("x-status", "304"),
                ("x-respond-cache-control", "max-age=60"),
            ],
        ))
        .await;
    assert_eq!(unsolicited.status, 304);
    assert_eq!(
        unsolicited.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=304")
    );
    let next = app.send(request("GET", "/api/respond", &[])).await;
    assert_eq!(next.outcome(), "MISS");
}

#[tokio::test]
async fn no_cache_responses_are_stored_and_revalidated_on_every_use_rfc9111_5_2_2_4() {
    let app = App::new();
    let no_cache = ("x-respond-cache-control", "no-cache");
    let first = app.send(cond(&[no_cache])).await;
    assert!(first.header("cache-status").unwrap().ends_with("stored"));
    for _ in 0..2 {
        let again = app.send(cond(&[no_cache])).await;
        assert_eq!(again.body, "body #1");
        assert_eq!(
            again.header("cache-status"),
            Some("cachet; fwd=stale; fwd-status=304; stored")
        );
    }
    assert_eq!(
        app.origin.conditions(),
        ["inm=- ims=-", "inm=\"v1\" ims=-", "inm=\"v1\" ims=-"]
    );
}

#[tokio::test]
async fn request_no_cache_revalidates_a_fresh_entry_rfc9111_5_2_1_4() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10])).await;
    let validated = app
        .send(cond(&[MAX_AGE_10, ("cache-control", "no-cache")]))
        .await;
    assert_eq!(validated.body, "body #1");
    assert_eq!(
        validated.header("cache-status"),
        Some("cachet; fwd=request; fwd-status=304; stored")
    );
}

#[tokio::test]
async fn max_stale_serves_a_stale_entry_within_its_bound_rfc9111_5_2_1_2() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10])).await;
    app.clock.advance(Duration::from_secs(15));
    let stale = app.send(cond(&[("cache-control", "max-stale=5")])).await;
    assert_eq!(stale.header("cache-status"), Some("cachet; hit; ttl=-5"));
    assert_eq!(stale.header("age"), Some("15"));
    let too_stale = app
        .send(cond(&[MAX_AGE_10, ("cache-control", "max-stale=4")]))
        .await;
    assert_eq!(too_stale.outcome(), "MISS");
    assert_eq!(app.origin.calls(), 2);
}

#[tokio::test]
async fn max_stale_never_overrides_must_revalidate_rfc9111_5_2_2_2() {
    let app = App::new();
    let strict = ("x-respond-cache-control", "max-age=10, must-revalidate");
    app.send(cond(&[strict])).await;
    app.clock.advance(Duration::from_secs(15));
    let validated = app
        .send(cond(&[strict, ("cache-control", "max-stale")]))
        .await;
    assert_eq!(
        validated.header("cache-status"),
        Some("cachet; fwd=stale; fwd-status=304; stored")
    );
}

#[tokio::test]
async fn client_preconditions_are_answered_by_the_cache_on_a_miss_rfc9111_4_3_2() {
    let app = App::new();
    let mine = app
        .send(cond(&[MAX_AGE_10, ("if-none-match", "\"v1\"")]))
        .await;
    assert_eq!(mine.status, 304);
    assert_eq!(mine.header("etag"), Some("\"v1\""));
    assert!(mine.body.is_empty());
    assert_eq!(
        mine.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
    // The origin was asked without the client's precondition, so the whole
    // response was stored for the next client.
    assert_eq!(app.origin.conditions(), ["inm=- ims=-"]);
    let next = app.send(cond(&[])).await;
    assert_eq!((next.outcome(), next.body.as_str()), ("HIT", "body #1"));
}

#[tokio::test]
async fn keep_zero_drops_entries_when_they_go_stale() {
    let app = App::with_rules("[[rules]]\npath = '^/api/'\nkeep = 0\n");
    app.send(cond(&[MAX_AGE_10])).await;
    app.clock.advance(Duration::from_secs(11));
    let refetched = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(
        refetched.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
    assert_eq!(app.origin.conditions(), ["inm=- ims=-", "inm=- ims=-"]);
}

/// An origin that answers with an ETag and `cache_control`, and fails
/// (a connection error, as a proxy's client would report) when `down`.
fn flaky_origin(
    cache_control: &'static str,
    down: Arc<AtomicBool>,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = std::io::Error, Future: Send>
       + Clone
       + Send
       + 'static {
    tower::service_fn(move |_req: Request<Body>| {
        let down = Arc::clone(&down);
        async move {
            if down.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("connection refused"));
            }
            Ok(Response::builder()
                .header("etag", "\"v1\"")
                .header("cache-control", cache_control)
                .body(Body::from("page"))
                .unwrap())
        }
    })
}

async fn through_flaky(cache_control: &'static str) -> Result<StatusCode, std::io::Error> {
    let clock = MockClock::new();
    let cache = cachet::Cache::builder()
        .rule(cachet::Rule::new("^/"))
        .clock(clock.clone())
        .build()
        .unwrap();
    let down = Arc::new(AtomicBool::new(false));
    let mut service = CacheLayer::new(cache).layer(flaky_origin(cache_control, Arc::clone(&down)));
    let get = || Request::get("/page").body(Body::empty()).unwrap();
    let first = service.ready().await?.call(get()).await?;
    assert_eq!(first.status(), StatusCode::OK);
    clock.advance(Duration::from_secs(11));
    down.store(true, Ordering::SeqCst);
    let response = service.ready().await?.call(get()).await?;
    Ok(response.status())
}

#[tokio::test]
async fn must_revalidate_with_the_origin_unreachable_answers_504_rfc9111_5_2_2_2() {
    assert_eq!(
        through_flaky("max-age=10, must-revalidate").await.unwrap(),
        StatusCode::GATEWAY_TIMEOUT
    );
}

#[tokio::test]
async fn without_must_revalidate_the_origin_error_is_passed_on() {
    let error = through_flaky("max-age=10").await.unwrap_err();
    assert_eq!(error.to_string(), "connection refused");
}

#[tokio::test]
async fn stale_entries_are_dropped_after_keep() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10])).await;
    app.clock.advance(Duration::from_secs(11 + 300));
    // Past `keep` (five minutes by default): gone, fetched anew.
    let refetched = app.send(cond(&[MAX_AGE_10])).await;
    assert_eq!(
        refetched.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
    assert_eq!(app.cache.stats().caches["default"].expirations, 1);
}

#[tokio::test]
async fn only_if_cached_never_revalidates_a_stale_entry_rfc9111_5_2_1_7() {
    let app = App::new();
    app.send(cond(&[MAX_AGE_10])).await;
    app.clock.advance(Duration::from_secs(11));
    let reply = app
        .send(cond(&[MAX_AGE_10, ("cache-control", "only-if-cached")]))
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(app.origin.calls(), 1);
}
