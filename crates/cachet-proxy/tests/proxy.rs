//! The proxy end to end over 127.0.0.1: a real axum upstream, the proxy in
//! front of it in this process, a hyper client.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use cachet_core::clock::MockClock;
use cachet_proxy::{Overrides, Proxy, ProxyConfig};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

const BOUND: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
struct Upstream {
    calls: Arc<AtomicUsize>,
    /// `/gated` waits for this before answering.
    gate: Arc<Notify>,
    /// Told when `/gated` has a request in hand.
    arrived: Arc<Notify>,
}

fn next(upstream: &Upstream) -> usize {
    upstream.calls.fetch_add(1, Ordering::SeqCst) + 1
}

/// A body the test can read back: the request headers, one per line; and
/// a hop-by-hop header of the upstream's own.
async fn echo(
    State(upstream): State<Upstream>,
    headers: HeaderMap,
) -> ([(&'static str, &'static str); 3], String) {
    next(&upstream);
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
        .collect();
    lines.sort();
    (
        [
            ("connection", "x-upstream-hop"),
            ("x-upstream-hop", "secret"),
            ("cache-control", "no-store"),
        ],
        lines.join("\n"),
    )
}

fn router(upstream: Upstream) -> Router {
    Router::new()
        .route(
            "/cached",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                ([("cache-control", "max-age=60")], format!("cached #{n}"))
            }),
        )
        .route(
            "/host",
            get(|State(upstream): State<Upstream>, headers: HeaderMap| async move {
                next(&upstream);
                let host = headers["host"].to_str().unwrap().to_owned();
                ([("cache-control", "max-age=60")], format!("for {host}"))
            }),
        )
        .route(
            "/fragile",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [("cache-control", "max-age=10, stale-if-error=600")],
                    format!("fragile #{n}"),
                )
            }),
        )
        .route(
            "/no-freshness",
            get(|State(upstream): State<Upstream>| async move {
                format!("plain #{}", next(&upstream))
            }),
        )
        .route(
            "/gated",
            get(|State(upstream): State<Upstream>| async move {
                next(&upstream);
                upstream.arrived.notify_one();
                upstream.gate.notified().await;
                "finished"
            }),
        )
        .route(
            "/targeted",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [
                        ("cache-control", "no-store"),
                        ("expires", "0"),
                        ("cdn-cache-control", "no-store"),
                        ("cachet-cache-control", "max-age=30"),
                    ],
                    format!("targeted #{n}"),
                )
            }),
        )
        // The proxy's mock clock starts at Thu, 01 Jan 2026 00:00:00 GMT.
        .route(
            "/age-list",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                ([("cache-control", "max-age=60"), ("age", "20, 40")], format!("age #{n}"))
            }),
        )
        .route(
            "/rfc850",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [
                        ("date", "thu, 01 jan 2026 00:00:00 gmt"),
                        ("expires", "THURSDAY, 01-JAN-26 00:00:30 GMT"),
                    ],
                    format!("rfc850 #{n}"),
                )
            }),
        )
        .route(
            "/dated",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [
                        ("cache-control", "max-age=600"),
                        ("date", "Wed, 31 Dec 2025 23:58:20 GMT"),
                    ],
                    format!("dated #{n}"),
                )
            }),
        )
        .route(
            "/must-understand",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [("cache-control", "must-understand, no-store, max-age=60")],
                    format!("understood #{n}"),
                )
            }),
        )
        .route(
            "/grouped",
            get(|State(upstream): State<Upstream>| async move {
                let n = next(&upstream);
                (
                    [("cache-control", "max-age=60"), ("cache-groups", "\"news\"")],
                    format!("grouped #{n}"),
                )
            }),
        )
        .route(
            "/write",
            axum::routing::post(|| async { ([("cache-group-invalidation", "\"news\"")], "written") }),
        )
        .route("/echo", get(echo))
        .route(
            "/upload",
            axum::routing::post(|body: Bytes| async move { format!("got {} bytes", body.len()) }),
        )
        .with_state(upstream)
}

/// Starts the upstream on a free port; abort the handle to kill it.
async fn start_upstream() -> (SocketAddr, Upstream, JoinHandle<()>) {
    let upstream = Upstream::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(upstream.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, upstream, task)
}

struct Running {
    addr: SocketAddr,
    clock: MockClock,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Starts the proxy on a free port in front of `upstream`.
async fn start_proxy(upstream: SocketAddr, config: &str) -> Running {
    let clock = MockClock::new();
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("http://{upstream}")),
        clock: Some(clock.clone()),
    };
    let config = ProxyConfig::from_toml(config, &overrides).unwrap();
    let listener = TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let proxy = Proxy::new(&config);
    let task = tokio::spawn(async move {
        proxy
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    Running {
        addr,
        clock,
        stop: Some(stop),
        task,
    }
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap())
    }
}

async fn send(
    client: &HttpClient,
    proxy: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut builder = Request::get(format!("http://{proxy}{path}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response: Response<_> =
        tokio::time::timeout(BOUND, client.request(builder.body(Empty::new()).unwrap()))
            .await
            .unwrap()
            .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

const NO_RULES: &str = "";

#[tokio::test]
async fn a_miss_then_a_hit_without_reaching_the_upstream() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    let first = send(&client, proxy.addr, "/cached", &[]).await;
    assert_eq!(first.body, "cached #1");
    assert_eq!(
        first.header("cache-status"),
        "cachet; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(first.header("via"), "1.1 cachet");
    for _ in 0..2 {
        // The first hit prepares the entry's headers, the next copies them.
        let hit = send(&client, proxy.addr, "/cached", &[]).await;
        assert_eq!(hit.body, "cached #1");
        assert!(hit.header("cache-status").starts_with("cachet; hit"));
        // The length as the miss had it, once.
        assert_eq!(hit.headers.get_all("content-length").iter().count(), 1);
        assert_eq!(hit.header("content-length"), "9");
        assert_eq!(hit.header("etag"), first.header("etag"));
        assert_eq!(hit.headers.get_all("age").iter().count(), 1);
    }
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn targeted_cache_control_decides_and_cachets_own_field_stays_here_rfc9213() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let config =
        "[headers]\ntarget = \"Cachet-Cache-Control\"\nforward_cdn_cache_control = false\n";
    let proxy = start_proxy(upstream_addr, config).await;
    let client = client();
    // Cache-Control, Expires and CDN-Cache-Control all forbid storing;
    // cachet's own field, the most specific, allows 30 s.
    let first = send(&client, proxy.addr, "/targeted", &[]).await;
    assert_eq!(first.body, "targeted #1");
    assert_eq!(
        first.header("cache-status"),
        "cachet; fwd=uri-miss; fwd-status=200; stored"
    );
    assert_eq!(first.header("cache-control"), "no-store");
    assert_eq!(first.header("cachet-cache-control"), "");
    assert_eq!(first.header("cdn-cache-control"), "", "not forwarded");
    proxy.clock.advance(Duration::from_secs(29));
    let hit = send(&client, proxy.addr, "/targeted", &[]).await;
    assert_eq!(hit.body, "targeted #1");
    assert_eq!(hit.header("cache-status"), "cachet; hit; ttl=1");
    assert_eq!(hit.header("cachet-cache-control"), "");
    proxy.clock.advance(Duration::from_secs(1));
    assert_eq!(
        send(&client, proxy.addr, "/targeted", &[]).await.body,
        "targeted #2"
    );
    // Without cachet's own field configured, CDN-Cache-Control decides: no-store.
    let cdn = start_proxy(upstream_addr, NO_RULES).await;
    for n in 3..=4 {
        let reply = send(&client, cdn.addr, "/targeted", &[]).await;
        assert_eq!(reply.body, format!("targeted #{n}"));
        assert_eq!(
            reply.header("cdn-cache-control"),
            "no-store",
            "forwarded by default"
        );
    }
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn age_dates_conditionals_and_must_understand_rfc9111_5_1_rfc9110_5_6_7_13_1_3_rfc9111_5_2_2_3(
) {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    // §5.1: a list-valued Age counts by its first value.
    send(&client, proxy.addr, "/age-list", &[]).await;
    let hit = send(&client, proxy.addr, "/age-list", &[]).await;
    assert_eq!(hit.header("cache-status"), "cachet; hit; ttl=40");
    // RFC 9110 §5.6.7: an RFC 850 Expires in upper case, a lower-case Date.
    send(&client, proxy.addr, "/rfc850", &[]).await;
    let hit = send(&client, proxy.addr, "/rfc850", &[]).await;
    assert_eq!(hit.header("cache-status"), "cachet; hit; ttl=30");
    // RFC 9110 §13.1.3: If-Modified-Since against Date without Last-Modified.
    send(&client, proxy.addr, "/dated", &[]).await;
    let since = [("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT")];
    let current = send(&client, proxy.addr, "/dated", &since).await;
    assert_eq!(current.status, StatusCode::NOT_MODIFIED);
    let before = [("if-modified-since", "Wed, 31 Dec 2025 00:00:00 GMT")];
    let older = send(&client, proxy.addr, "/dated", &before).await;
    assert_eq!(
        (older.status, older.body.as_str()),
        (StatusCode::OK, "dated #3")
    );
    // RFC 9111 §5.2.2.3: must-understand on a 200 overrides no-store.
    send(&client, proxy.addr, "/must-understand", &[]).await;
    let hit = send(&client, proxy.addr, "/must-understand", &[]).await;
    assert_eq!(hit.body, "understood #4");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_cache_group_invalidation_clears_the_group_on_its_origin_only_rfc9875_3() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    let write = |host: &'static str| {
        let request = Request::post(format!("http://{}/write", proxy.addr))
            .header("host", host)
            .body(Empty::new())
            .unwrap();
        tokio::time::timeout(BOUND, client.request(request))
    };
    for host in ["a.example", "b.example"] {
        send(&client, proxy.addr, "/grouped", &[("host", host)]).await;
    }
    // A write on b.example clears b.example's group, not a.example's.
    assert_eq!(
        write("b.example").await.unwrap().unwrap().status(),
        StatusCode::OK
    );
    let a = send(&client, proxy.addr, "/grouped", &[("host", "a.example")]).await;
    assert_eq!(a.body, "grouped #1");
    let b = send(&client, proxy.addr, "/grouped", &[("host", "b.example")]).await;
    assert_eq!(b.body, "grouped #3");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn ranges_are_answered_from_the_stored_response_rfc9110_14() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    // A miss with Range fetches the whole, stores it, and answers the range.
    let first = send(&client, proxy.addr, "/cached", &[("range", "bytes=0-5")]).await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "cached")
    );
    assert_eq!(
        first.header("cache-status"),
        "cachet; fwd=uri-miss; fwd-status=200; stored"
    );
    let part = send(&client, proxy.addr, "/cached", &[("range", "bytes=0-5")]).await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, "cached");
    assert_eq!(part.header("content-range"), "bytes 0-5/9");
    assert_eq!(part.header("content-length"), "6");
    let suffix = send(&client, proxy.addr, "/cached", &[("range", "bytes=-2")]).await;
    assert_eq!(
        (suffix.status, suffix.body.as_str()),
        (StatusCode::PARTIAL_CONTENT, "#1")
    );
    let past = send(&client, proxy.addr, "/cached", &[("range", "bytes=9-")]).await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(past.header("content-range"), "bytes */9");
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    // A key whose responses are not stored (no-store, so hit-for-miss after
    // the first): its next ranges go upstream as the client asked.
    let range = [("range", "bytes=0-5")];
    let whole = send(&client, proxy.addr, "/echo", &range).await;
    assert!(!whole.body.contains("range:"), "{}", whole.body);
    let passed = send(&client, proxy.addr, "/echo", &range).await;
    assert!(passed.body.contains("range: bytes=0-5"), "{}", passed.body);
}

#[tokio::test]
async fn a_head_is_answered_from_the_stored_get_and_never_becomes_it_rfc9111_4() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    let head = |path: &str| {
        let request = Request::head(format!("http://{}{path}", proxy.addr))
            .body(Empty::new())
            .unwrap();
        tokio::time::timeout(BOUND, client.request(request))
    };
    send(&client, proxy.addr, "/cached", &[]).await;
    let answered = head("/cached").await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    assert_eq!(answered.headers()["content-length"], "9");
    assert!(answered.headers()["cache-status"]
        .to_str()
        .unwrap()
        .starts_with("cachet; hit"));
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    // A HEAD that misses goes upstream; its answer never serves a GET.
    head("/fragile").await.unwrap().unwrap();
    let get = send(&client, proxy.addr, "/fragile", &[]).await;
    assert_eq!(get.body, "fragile #3");
}

#[tokio::test]
async fn the_upstream_receives_accept_encoding_and_language_in_the_keyed_spelling_rfc9111_4_1() {
    let (upstream_addr, _upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    let echoed = send(
        &client,
        proxy.addr,
        "/echo",
        &[
            ("accept-encoding", "GZIP,br;q=1.0"),
            ("accept-language", "fr;q=0.50, EN-us"),
        ],
    )
    .await;
    assert!(
        echoed.body.contains("accept-encoding: br, gzip"),
        "{}",
        echoed.body
    );
    assert!(
        echoed.body.contains("accept-language: en-us, fr;q=0.5"),
        "{}",
        echoed.body
    );
    // Anything it cannot spell canonically goes as it came.
    let odd = send(
        &client,
        proxy.addr,
        "/echo",
        &[("accept-encoding", "gzip;level=9")],
    )
    .await;
    assert!(
        odd.body.contains("accept-encoding: gzip;level=9"),
        "{}",
        odd.body
    );
}

#[tokio::test]
async fn with_no_rules_nothing_gets_a_forced_ttl() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    // No Cache-Control, no Expires, no Last-Modified: not fresh, not stored.
    for n in 1..=2 {
        let reply = send(&client, proxy.addr, "/no-freshness", &[]).await;
        assert_eq!(reply.body, format!("plain #{n}"));
    }
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_and_forwarding_headers_set() {
    let (upstream_addr, _upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let reply = send(
        &client(),
        proxy.addr,
        "/echo",
        &[
            ("connection", "x-client-hop"),
            ("x-client-hop", "secret"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-kept", "yes"),
        ],
    )
    .await;
    let seen: Vec<&str> = reply.body.lines().collect();
    for line in [
        "x-kept: yes",
        "via: 1.1 cachet",
        // The client's own is dropped: the connection says who it is.
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
    ] {
        assert!(
            seen.contains(&line),
            "upstream did not see {line:?} in {seen:?}"
        );
    }
    let host = format!("host: {}", proxy.addr);
    assert!(
        seen.contains(&host.as_str()),
        "the client's Host is kept: {seen:?}"
    );
    let forwarded_host = format!("x-forwarded-host: {}", proxy.addr);
    assert!(seen.contains(&forwarded_host.as_str()));
    assert!(!reply.body.contains("x-client-hop") && !reply.body.contains("proxy-authorization"));
    // And on the way back.
    assert_eq!(reply.header("x-upstream-hop"), "");
    assert_eq!(reply.header("via"), "1.1 cachet");
}

#[tokio::test]
async fn the_host_can_be_rewritten_to_the_upstreams() {
    let (upstream_addr, _upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(
        upstream_addr,
        "[proxy]\npreserve_host = false\nforwarded_headers = false\n",
    )
    .await;
    let reply = send(&client(), proxy.addr, "/echo", &[]).await;
    assert!(
        reply.body.contains(&format!("host: {upstream_addr}")),
        "{}",
        reply.body
    );
    assert!(!reply.body.contains("x-forwarded"));
}

#[tokio::test]
async fn a_dead_upstream_is_a_502() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = start_proxy(addr, NO_RULES).await;
    let reply = send(&client(), proxy.addr, "/cached", &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(reply.header("cache-status").contains("fwd-status=502"));
}

#[tokio::test]
async fn a_slow_upstream_is_a_504() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, "[proxy]\ntimeout = \"200ms\"\n").await;
    let reply = send(&client(), proxy.addr, "/gated", &[]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    upstream.gate.notify_one();
}

#[tokio::test]
async fn request_bodies_go_upstream_and_http2_clients_are_served() {
    let (upstream_addr, _upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let body = Bytes::from(vec![b'x'; 256 * 1024]);
    let client: Client<HttpConnector, http_body_util::Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::post(format!("http://{}/upload", proxy.addr))
        .body(http_body_util::Full::new(body))
        .unwrap();
    let response = client.request(req).await.unwrap();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, "got 262144 bytes");
    // HTTP/2 with prior knowledge (h2c) from the client.
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new());
    for expected in ["cachet; fwd=uri-miss", "cachet; hit"] {
        let reply = send(&h2, proxy.addr, "/cached", &[]).await;
        assert_eq!(reply.body, "cached #1");
        assert!(reply.header("cache-status").starts_with(expected));
    }
}

#[tokio::test]
async fn stale_if_error_answers_when_the_upstream_is_killed() {
    let (upstream_addr, _upstream, upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    assert_eq!(
        send(&client, proxy.addr, "/fragile", &[]).await.body,
        "fragile #1"
    );
    upstream_task.abort();
    let _ = upstream_task.await;
    proxy.clock.advance(Duration::from_secs(20));
    let reply = send(&client, proxy.addr, "/fragile", &[]).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "fragile #1")
    );
    assert_eq!(
        reply.header("cache-status"),
        "cachet; fwd=stale; fwd-status=502; ttl=-10; detail=stale-if-error"
    );
}

#[tokio::test]
async fn virtual_hosts_never_share_entries() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    for _ in 0..2 {
        // The upstream receives the host as keyed.
        for (host, keyed) in [("a.example", "a.example"), ("B.Example:80", "b.example")] {
            let reply = send(&client, proxy.addr, "/host", &[("host", host)]).await;
            assert_eq!(reply.body, format!("for {keyed}"));
        }
    }
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 2);
    // The same host, written differently, is the same entry.
    let reply = send(&client, proxy.addr, "/host", &[("host", "b.example")]).await;
    assert_eq!(reply.body, "for b.example");
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let mut proxy = start_proxy(upstream_addr, NO_RULES).await;
    let client = client();
    let in_flight = {
        let client = client.clone();
        let addr = proxy.addr;
        tokio::spawn(async move { send(&client, addr, "/gated", &[]).await })
    };
    tokio::time::timeout(BOUND, upstream.arrived.notified())
        .await
        .unwrap();
    proxy.stop.take().unwrap().send(()).unwrap();
    // Stops accepting: the serve loop drops its listener.
    tokio::time::timeout(BOUND, async {
        while tokio::net::TcpStream::connect(proxy.addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    upstream.gate.notify_one();
    let reply = tokio::time::timeout(BOUND, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "finished")
    );
    tokio::time::timeout(BOUND, proxy.task)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn check_validates_a_config_and_names_what_is_wrong() {
    let dir = std::env::temp_dir().join(format!("cachet-proxy-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "[proxy]\nupstream = \"http://127.0.0.1:8000\"\n[[rules]]\npath = '^/api/'\nttl = \"1m\"\n",
    )
    .unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[proxy]\nupstream = \"http://127.0.0.1:8000\"\n[[rules]]\npath = '^/api/'\nttl = \"soon\"\n",
    )
    .unwrap();
    let run = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cachet-proxy"))
            .arg("--config")
            .arg(path)
            .arg("--check")
            .output()
            .unwrap()
    };
    let ok = run(&good);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration ok: 1 rule(s)"));
    let refused = run(&bad);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("rule 0") && message.contains("ttl"),
        "{message}"
    );
    let missing = run(&dir.join("missing.toml"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The cachet-proxy binary in front of `upstream` with `RUST_LOG` set to
/// `log`: the process, its stdout's lines after the banner, and the
/// address the banner names.
async fn spawn_binary(
    upstream: SocketAddr,
    log: &str,
) -> (tokio::process::Child, StdoutLines, SocketAddr) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_cachet-proxy"))
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}"))
        .env("RUST_LOG", log)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = next_line(&mut lines).await;
    let addr: SocketAddr = banner
        .strip_prefix("cachet-proxy listening on http://")
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    (child, lines, addr)
}

type StdoutLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

async fn next_line(lines: &mut StdoutLines) -> String {
    tokio::time::timeout(BOUND, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn the_access_log_names_each_requests_client_and_cache_status() {
    let (upstream_addr, _upstream, _upstream_task) = start_upstream().await;
    let (_child, mut lines, addr) =
        spawn_binary(upstream_addr, "warn,cachet_proxy::access=info").await;
    // One connection, its local address known, for a miss and a hit.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    for _ in 0..2 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /cached HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"cached #1") {
            let mut byte = [0; 1];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1);
            head.push(byte[0]);
        }
    }
    for expected in [
        "\"cachet; fwd=uri-miss; fwd-status=200; stored\"",
        "\"cachet; hit; ttl=",
    ] {
        let line = next_line(&mut lines).await;
        // `<date> <client> "GET /cached" 200 "<cache-status>" <n>us`
        let (_, rest) = line.split_once(" GMT ").unwrap();
        let prefix = format!("{client} \"GET /cached\" 200 {expected}");
        assert!(rest.starts_with(&prefix), "{line}");
        assert!(rest.ends_with("us"), "{line}");
    }
}

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let (upstream_addr, upstream, _upstream_task) = start_upstream().await;
    let (mut child, _lines, addr) = spawn_binary(upstream_addr, "warn").await;
    let client = client();
    for _ in 0..2 {
        assert_eq!(send(&client, addr, "/cached", &[]).await.body, "cached #1");
    }
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 1);
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(BOUND, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
