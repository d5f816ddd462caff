//! Request coalescing through the Tower layer: one origin call per cold
//! key, waiters released when the response cannot be shared, and no hang
//! when the fetching request is dropped, fails or takes too long.
//!
//! Time is Tokio's paused clock: the origin's delays (`x-delay-ms`) and the
//! lock timeouts advance it only once every task is idle, so each test is
//! deterministic and finishes at once.

mod support;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{fetch, fetch_concurrently, request, App, Reply};
use tokio::time::Instant;
use tower::Layer;

const RULES: &str = r#"
[[rules]]
path = '^/api/respond$'
ttl = "60s"

[[rules]]
path = '^/api/items$'
ttl = "60s"
lock_timeout = "1s"

[[rules]]
path = '^/api/cond$'
ttl = "60s"
coalesce = false
"#;

/// Every test is bounded: a hang fails it instead of stalling the suite.
const BOUND: Duration = Duration::from_secs(600);

/// `n` concurrent requests for `uri` with `headers`, each on its own task.
async fn concurrently(app: &Arc<App>, n: usize, uri: &str, headers: &[(&str, &str)]) -> Vec<Reply> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let app = Arc::clone(app);
            let req = request("GET", uri, headers);
            tokio::spawn(async move { app.send(req).await })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(tokio::time::timeout(BOUND, task).await.unwrap().unwrap());
    }
    replies
}

fn app() -> Arc<App> {
    Arc::new(App::with_rules(RULES))
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_call_the_origin_once() {
    let app = app();
    let replies = concurrently(&app, 1000, "/api/respond", &[("x-delay-ms", "100")]).await;
    assert_eq!(app.origin.calls(), 1);
    assert!(replies.iter().all(|reply| reply.body == "headers #1"));
    assert!(replies.iter().all(|reply| reply.status == StatusCode::OK));
    let stats = &app.cache.stats().caches["default"];
    assert_eq!(
        (stats.misses, stats.coalesced, stats.inserts),
        (1000, 999, 1)
    );
    // The waiters were answered from the stored response.
    let hits = replies.iter().filter(|r| r.outcome() == "HIT").count();
    assert_eq!(hits, 999);
}

#[tokio::test(start_paused = true)]
async fn an_unshareable_response_releases_the_waiters_and_marks_the_key() {
    let app = app();
    let private = [
        ("x-delay-ms", "1000"),
        ("x-respond-cache-control", "private"),
    ];
    let started = Instant::now();
    let replies = concurrently(&app, 10, "/api/respond", &private).await;
    // The waiters were released when the leader's response came back, and
    // each went to the origin for its own: ten distinct responses.
    let mut bodies: Vec<&str> = replies.iter().map(|r| r.body.as_str()).collect();
    bodies.sort_unstable();
    bodies.dedup();
    assert_eq!((bodies.len(), app.origin.calls()), (10, 10));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "leader, then the rest"
    );
    // Hit-for-miss: the next requests go to the origin at once, together.
    let started = Instant::now();
    concurrently(&app, 10, "/api/respond", &private).await;
    assert_eq!(app.origin.calls(), 20);
    assert_eq!(started.elapsed(), Duration::from_secs(1), "nobody queued");
    // The mark lasts the rule's window (ten seconds by default), on the
    // cache's clock; then requests coalesce again.
    app.clock.advance(Duration::from_secs(10));
    let shareable = [("x-delay-ms", "1000")];
    let replies = concurrently(&app, 10, "/api/respond", &shareable).await;
    assert_eq!(app.origin.calls(), 21);
    assert!(replies.iter().all(|reply| reply.body == "headers #21"));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_leader_hands_the_fetch_to_a_waiter() {
    let app = app();
    let slow = [("x-delay-ms", "1000")];
    let leader = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.send(request("GET", "/api/respond", &slow)).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(app.origin.calls(), 1, "the leader is at the origin");
    let waiters = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { concurrently(&app, 20, "/api/respond", &slow).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The leader's client goes away: its future is dropped mid-flight.
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let replies = tokio::time::timeout(BOUND, waiters).await.unwrap().unwrap();
    // One waiter took over; the others waited for it. Nothing of the
    // dropped fetch was stored.
    assert_eq!(app.origin.calls(), 2);
    assert!(replies.iter().all(|reply| reply.body == "headers #2"));
    assert_eq!(app.get("/api/respond").await.body, "headers #2");
}

#[tokio::test(start_paused = true)]
async fn waiters_past_the_lock_timeout_fetch_and_store_nothing() {
    let app = app();
    // `/api/items` waits one second for another's fetch; the origin takes
    // five for the first request only.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let origin = tower::service_fn(move |_req: Request<Body>| {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            let delay = if n == 1 { 5000 } else { 100 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(format!(
                "items #{n}"
            )))))
        }
    });
    let service = cachet::CacheLayer::new(app.cache.clone()).layer(origin);
    let leader = tokio::spawn(fetch(service.clone(), "/api/items"));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    for waiter in fetch_concurrently(&service, 5, "/api/items") {
        let waited = tokio::time::timeout(BOUND, waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            waited.cache_status, "cachet; fwd=uri-miss; fwd-status=200",
            "not stored"
        );
        assert_ne!(waited.body, "items #1");
    }
    assert_eq!(started.elapsed(), Duration::from_millis(1100));
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(leader.await.unwrap().unwrap().body, "items #1");
    // Only the leader's response was stored.
    let hit = fetch(service.clone(), "/api/items").await.unwrap();
    assert_eq!(
        (hit.cache_status.starts_with("cachet; hit"), &hit.body[..]),
        (true, &b"items #1"[..])
    );
}

/// An origin whose calls fail (the inner service's error) until told to
/// answer, after `delay` each.
#[derive(Clone)]
struct Flaky {
    calls: Arc<AtomicUsize>,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Flaky {
    fn service(
        &self,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response<Full<Bytes>>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
           + Send {
        let this = self.clone();
        tower::service_fn(move |_req: Request<Body>| {
            let this = this.clone();
            async move {
                let n = this.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(1000)).await;
                if this.failing.load(Ordering::SeqCst) {
                    return Err(std::io::Error::other("connection refused"));
                }
                Ok(Response::new(Full::new(Bytes::from(format!("ok #{n}")))))
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn an_origin_error_releases_every_waiter_and_stores_nothing() {
    let app = app();
    let flaky = Flaky {
        calls: Arc::default(),
        failing: Arc::new(true.into()),
    };
    let service = cachet::CacheLayer::new(app.cache.clone()).layer(flaky.service());
    for task in fetch_concurrently(&service, 10, "/api/items") {
        let result = tokio::time::timeout(BOUND, task).await.unwrap().unwrap();
        assert_eq!(result.unwrap_err().to_string(), "connection refused");
    }
    // The leader failed; the waiters were released to try for themselves.
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 10);
    assert_eq!(app.cache.stats().caches["default"].inserts, 0);
    // An error does not mark the key: once the origin is back, requests
    // coalesce again.
    flaky.failing.store(false, Ordering::SeqCst);
    for task in fetch_concurrently(&service, 10, "/api/items") {
        assert_eq!(task.await.unwrap().unwrap().body, "ok #11");
    }
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 11);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_releases_the_waiters_without_marking_the_key() {
    let app = app();
    let failing = [("x-delay-ms", "1000"), ("x-status", "503")];
    let replies = concurrently(&app, 5, "/api/respond", &failing).await;
    assert!(replies
        .iter()
        .all(|r| r.status == StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(app.origin.calls(), 5);
    let replies = concurrently(&app, 5, "/api/respond", &[("x-delay-ms", "1000")]).await;
    assert_eq!(app.origin.calls(), 6, "coalesced again at once");
    assert!(replies.iter().all(|r| r.body == "headers #6"));
}

#[tokio::test(start_paused = true)]
async fn coalescing_can_be_turned_off_per_rule() {
    let app = app();
    concurrently(&app, 10, "/api/cond", &[("x-delay-ms", "1000")]).await;
    assert_eq!(app.origin.calls(), 10);
}
