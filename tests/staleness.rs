//! Serving stale responses (RFC 5861) through the Tower layer:
//! `stale-while-revalidate` with one background refresh per key,
//! `stale-if-error` on server errors and connection errors, and early
//! refresh (XFetch).
//!
//! The cache's clock is a `MockClock`; the origin's delays run on Tokio's
//! paused clock.

mod support;

use axum::body::Body;
use bytes::Bytes;
use cachet::clock::MockClock;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{fetch, request, App};
use tower::Layer;

const SECOND: Duration = Duration::from_secs(1);

/// Lets background refreshes run: Tokio's paused clock moves on once every
/// task is idle.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
    let app = Arc::new(App::with_rules(
        "[[rules]]\npath = '^/api/respond$'\nttl = \"10s\"\nstale_while_revalidate = \"30s\"\n",
    ));
    let slow = [("x-delay-ms", "1000")];
    assert_eq!(
        app.send(request("GET", "/api/respond", &slow)).await.body,
        "headers #1"
    );
    app.clock.advance(15 * SECOND);
    let started = tokio::time::Instant::now();
    for _ in 0..5 {
        let stale = app.send(request("GET", "/api/respond", &slow)).await;
        assert_eq!(stale.body, "headers #1");
        assert_eq!(
            stale.header("cache-status"),
            Some("cachet; hit; fwd=stale; ttl=-5; detail=stale-while-revalidate")
        );
        assert_eq!(stale.header("age"), Some("15"));
    }
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "nobody waited for the origin"
    );
    settle().await;
    assert_eq!(app.origin.calls(), 2, "one refresh for five stale hits");
    let fresh = app.get("/api/respond").await;
    assert_eq!(
        (fresh.outcome(), fresh.body.as_str()),
        ("HIT", "headers #2")
    );
    let stats = &app.cache.stats().caches["default"];
    assert_eq!((stats.stale, stats.refreshes), (5, 1));
}

#[tokio::test(start_paused = true)]
async fn the_refresh_revalidates_with_the_stored_validators() {
    let app = App::with_rules(
        "[[rules]]\npath = '^/api/cond$'\nttl = \"10s\"\nstale_while_revalidate = \"30s\"\n",
    );
    assert_eq!(app.get("/api/cond").await.body, "body #1");
    app.clock.advance(15 * SECOND);
    assert_eq!(app.get("/api/cond").await.body, "body #1");
    settle().await;
    assert_eq!(
        app.origin.conditions(),
        ["inm=- ims=-", "inm=\"v1\" ims=-"],
        "the refresh asked If-None-Match"
    );
    // The 304 refreshed the entry: fresh again, served as a plain hit.
    let hit = app.get("/api/cond").await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=10"));
    assert_eq!(hit.body, "body #1");
}

#[tokio::test(start_paused = true)]
async fn the_origin_can_ask_for_it_and_forbid_it() {
    let app = App::with_rules("[[rules]]\npath = '^/api/respond$'\nttl = \"10s\"\n");
    let swr = [(
        "x-respond-cache-control",
        "max-age=10, stale-while-revalidate=30",
    )];
    app.send(request("GET", "/api/respond", &swr)).await;
    app.clock.advance(15 * SECOND);
    let stale = app.send(request("GET", "/api/respond", &swr)).await;
    assert_eq!(
        (stale.outcome(), stale.body.as_str()),
        ("HIT", "headers #1")
    );
    // A client that wants a validated or younger response is not served stale.
    for directive in ["no-cache", "max-age=5", "min-fresh=1"] {
        let app = App::with_rules("[[rules]]\npath = '^/api/respond$'\nttl = \"10s\"\n");
        app.send(request("GET", "/api/respond", &swr)).await;
        app.clock.advance(15 * SECOND);
        let req = request("GET", "/api/respond", &[("cache-control", directive)]);
        assert_eq!(app.send(req).await.body, "headers #2", "{directive}");
    }
    // Past the window the entry is gone.
    let app = App::with_rules("[[rules]]\npath = '^/api/respond$'\nttl = \"10s\"\n");
    app.send(request("GET", "/api/respond", &swr)).await;
    app.clock.advance(41 * SECOND);
    assert_eq!(app.get("/api/respond").await.body, "headers #2");
    // `must-revalidate` forbids serving it stale, whatever the window.
    let app = App::with_rules(
        "[[rules]]\npath = '^/api/respond$'\nttl = \"10s\"\nstale_while_revalidate = \"30s\"\n",
    );
    let strict = [("x-respond-cache-control", "max-age=10, must-revalidate")];
    app.send(request("GET", "/api/respond", &strict)).await;
    app.clock.advance(15 * SECOND);
    let reply = app.send(request("GET", "/api/respond", &strict)).await;
    assert_eq!(
        (reply.outcome(), reply.body.as_str()),
        ("MISS", "headers #2")
    );
}

/// A GET through the cache to a scripted origin: status, `Cache-Status`
/// and body, or the origin's error.
type Get =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(StatusCode, String, String), String>>>>>;

/// What the scripted origin does next.
const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const REFUSED: u8 = 2;

/// An origin scripted by `mode`: `ok #N`, a 503, or a connection error.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<AtomicUsize>,
    mode: Arc<AtomicU8>,
}

impl Scripted {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The origin behind a cache built from `rules`, and the cache's clock.
    fn behind(&self, rules: &str) -> (Get, MockClock) {
        let clock = MockClock::new();
        let cache = cachet::CacheBuilder::from_toml(rules)
            .unwrap()
            .clock(clock.clone())
            .build()
            .unwrap();
        let this = self.clone();
        let origin = tower::service_fn(move |_req: Request<Body>| {
            let this = this.clone();
            async move {
                let n = this.calls.fetch_add(1, Ordering::SeqCst) + 1;
                let mut response = Response::new(Full::new(Bytes::from(format!("ok #{n}"))));
                match this.mode.load(Ordering::SeqCst) {
                    OK => {}
                    UNAVAILABLE => *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE,
                    _ => return Err(std::io::Error::other("connection refused")),
                }
                Ok(response)
            }
        });
        let service = cachet::CacheLayer::new(cache).layer(origin);
        let get = move || {
            let service = service.clone();
            Box::pin(async move {
                let fetched = fetch(service, "/api/items")
                    .await
                    .map_err(|error| error.to_string())?;
                let body = String::from_utf8(fetched.body.to_vec()).unwrap();
                Ok((fetched.status, fetched.cache_status, body))
            }) as Pin<Box<dyn Future<Output = _>>>
        };
        (Box::new(get), clock)
    }
}

const STALE_IF_ERROR: &str =
    "[[rules]]\npath = '^/api/items$'\nttl = \"10s\"\nstale_if_error = \"60s\"\nstatuses = [503]\n";

#[tokio::test]
async fn stale_if_error_serves_the_entry_on_503_and_on_connection_error() {
    let origin = Scripted::default();
    let (get, clock) = origin.behind(STALE_IF_ERROR);
    assert_eq!(get().await.unwrap().2, "ok #1");
    clock.advance(15 * SECOND);
    origin.set(UNAVAILABLE);
    let (status, label, body) = get().await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok #1"));
    assert_eq!(
        label,
        "cachet; fwd=stale; fwd-status=503; ttl=-5; detail=stale-if-error"
    );
    // The 503 (a status this rule stores) did not replace the good entry.
    origin.set(REFUSED);
    let (status, label, body) = get().await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok #1"));
    assert_eq!(label, "cachet; fwd=stale; ttl=-5; detail=stale-if-error");
    assert_eq!(origin.calls(), 3);
    // Past the window the origin's answer passes on.
    clock.advance(56 * SECOND);
    assert_eq!(get().await.unwrap_err(), "connection refused");
    origin.set(UNAVAILABLE);
    let (status, label, _) = get().await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        label.starts_with("cachet; fwd=uri-miss; fwd-status=503"),
        "{label}"
    );
}

#[tokio::test]
async fn a_stale_server_error_is_never_served() {
    let origin = Scripted::default();
    let (get, clock) = origin.behind(STALE_IF_ERROR);
    origin.set(UNAVAILABLE);
    let (status, label, _) = get().await.unwrap();
    assert_eq!(
        (status, label.ends_with("; stored")),
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );
    clock.advance(15 * SECOND);
    origin.set(REFUSED);
    assert_eq!(get().await.unwrap_err(), "connection refused");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_fails_keeps_the_entry_and_tries_again() {
    let origin = Scripted::default();
    let rules = "[[rules]]\npath = '^/api/items$'\nttl = \"10s\"\nstale_while_revalidate = \"30s\"\nstatuses = [503]\n";
    let (get, clock) = origin.behind(rules);
    get().await.unwrap();
    clock.advance(15 * SECOND);
    origin.set(UNAVAILABLE);
    for attempt in 2..=3 {
        let (status, label, body) = get().await.unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok #1"));
        assert!(label.contains("detail=stale-while-revalidate"), "{label}");
        settle().await;
        assert_eq!(
            origin.calls(),
            attempt,
            "one refresh per stale hit, each failed"
        );
    }
    origin.set(OK);
    get().await.unwrap();
    settle().await;
    assert_eq!(get().await.unwrap().2, "ok #4");
}

#[tokio::test(start_paused = true)]
async fn early_refresh_renews_a_fresh_entry_in_the_background() {
    // Each fetch takes one second on the cache's clock, so the entry
    // records a fetch time; a huge beta makes the early refresh all but
    // certain (XFetch fires when fetch_time · beta · −ln(u) ≥ ttl).
    for (beta, refreshed) in [(Some("1e12"), true), (None, false)] {
        let clock = MockClock::new();
        let mut rules = "[[rules]]\npath = '^/api/items$'\nttl = \"60s\"\n".to_owned();
        if let Some(beta) = beta {
            rules.push_str(&format!("early_refresh = {beta}\n"));
        }
        let cache = cachet::CacheBuilder::from_toml(&rules)
            .unwrap()
            .clock(clock.clone())
            .build()
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let (counted, ticking) = (Arc::clone(&calls), clock.clone());
        let origin = tower::service_fn(move |_req: Request<Body>| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            ticking.advance(SECOND);
            async move {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(format!(
                    "items #{n}"
                )))))
            }
        });
        let service = cachet::CacheLayer::new(cache).layer(origin);
        let get = || async {
            let fetched = fetch(service.clone(), "/api/items").await.unwrap();
            (fetched.cache_status, fetched.body)
        };
        get().await;
        clock.advance(30 * SECOND);
        let (label, body) = get().await;
        assert_eq!(
            (label.as_str(), &body[..]),
            ("cachet; hit; ttl=30", &b"items #1"[..])
        );
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), if refreshed { 2 } else { 1 });
        let (_, body) = get().await;
        let expected = if refreshed { "items #2" } else { "items #1" };
        assert_eq!(body, expected);
    }
}
