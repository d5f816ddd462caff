//! The hardening round through the real `cachet-proxy` binary over
//! 127.0.0.1, in front of an origin that reflects what it receives: what
//! the key normalizes the origin receives normalized; the admin listener
//! is bounded like the proxied port; malformed requests are answered 400;
//! a forged dump is never restored; client revalidations are coalesced;
//! an HTTP/1.0 origin neither downgrades nor closes the client's connection.
//! Each asserts what the victim or the operator gets. Connection tests
//! wait in real time, on timeouts of a second or two.

mod common;
#[path = "common/forge.rs"]
mod forge;

use axum::http::HeaderMap;
use axum::routing::get;
use bytes::Bytes;
use common::{start, Running, BOUND};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Counts what the origin was asked for.
#[derive(Clone, Default)]
struct Origin {
    calls: Arc<AtomicUsize>,
    bodies: Arc<AtomicUsize>,
}

impl Origin {
    async fn start(&self) -> SocketAddr {
        let (reflect, slow, post, keyed) = (self.clone(), self.clone(), self.clone(), self.clone());
        let app = axum::Router::new()
            // The host as the origin sees it, in the body: absolute links,
            // canonical URLs and redirects are built from it.
            .route(
                "/page",
                get(move |headers: HeaderMap| async move {
                    reflect.calls.fetch_add(1, Ordering::SeqCst);
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned()
                    };
                    (
                        [("cache-control", "max-age=60")],
                        format!("host={} xfh={}", header("host"), header("x-forwarded-host")),
                    )
                }),
            )
            // Fresh for a minute, with a validator; slow to answer, so that
            // a burst of revalidations overlaps.
            .route(
                "/fresh",
                get(move |headers: HeaderMap| async move {
                    slow.calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let cached = [("cache-control", "max-age=60"), ("etag", "\"v1\"")];
                    if headers.get("if-none-match").is_some() {
                        (axum::http::StatusCode::NOT_MODIFIED, cached, String::new())
                    } else {
                        (axum::http::StatusCode::OK, cached, "original".to_owned())
                    }
                }),
            )
            // Every line of each input the rules below key, and the method.
            .route(
                "/reflect",
                get(move |method: http::Method, headers: HeaderMap| async move {
                    keyed.calls.fetch_add(1, Ordering::SeqCst);
                    let lines = |name: &str| {
                        let lines: Vec<_> = headers
                            .get_all(name)
                            .iter()
                            .map(|v| v.to_str().unwrap_or("?").to_owned())
                            .collect();
                        lines.join("|")
                    };
                    (
                        [("cache-control", "max-age=60"), ("vary", "accept-encoding")],
                        format!(
                            "{method} tenant={} ae={}",
                            lines("x-tenant"),
                            lines("accept-encoding")
                        ),
                    )
                }),
            )
            .route(
                "/upload",
                axum::routing::post(move |body: Bytes| async move {
                    post.bodies.fetch_add(1, Ordering::SeqCst);
                    format!("{} bytes", body.len())
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cachet-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration file: the admin listener, short connection timeouts,
/// and `extra`.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("cachet.toml");
    std::fs::write(
        &path,
        format!(
            "[proxy]\nheader_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n\n{extra}"
        ),
    )
    .unwrap();
    path
}

async fn proxy(name: &str, extra: &str) -> (Running, Origin, PathBuf) {
    let origin = Origin::default();
    let upstream = origin.start().await;
    let dir = dir(name);
    let running = start(&config(&dir, extra), upstream).await;
    (running, origin, dir)
}

/// Sends `request` as written on a new connection; the whole answer, up to
/// the server's close (or `BOUND`).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    send(addr, http::Method::GET, path, headers).await
}

/// The body and `Cache-Status` of `method path` with `headers` (a name
/// given twice is sent as two lines).
async fn send(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (String::from_utf8_lossy(&body).into_owned(), status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_receives_the_host_spelling_the_key_holds() {
    let (proxy, origin, _dir) = proxy("host", "").await;
    let (first, _) = get_with(proxy.addr, "/page", &[("host", "Shop.EXAMPLE:80")]).await;
    assert_eq!(
        first, "host=shop.example xfh=shop.example",
        "the keyed spelling went upstream"
    );
    let (victim, status) = get_with(proxy.addr, "/page", &[("host", "shop.example")]).await;
    assert_eq!(victim, first);
    assert!(status.contains("hit"), "{status}");
    // A trailing dot is another origin to browsers: another entry, as sent.
    let (dotted, status) = get_with(proxy.addr, "/page", &[("host", "shop.example.")]).await;
    assert_eq!(dotted, "host=shop.example. xfh=shop.example.");
    assert!(status.contains("uri-miss"), "{status}");
    assert_eq!(origin.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_receives_the_headers_and_method_the_key_holds() {
    let rules = "[[rules]]\npath = '^/reflect$'\nvary_headers = [\"X-Tenant\"]\n\
                 vary_by_method = false\n";
    let (proxy, origin, _dir) = proxy("keyed-inputs", rules).await;
    let head = || http::Method::HEAD;
    let get = || http::Method::GET;

    // A rule-keyed header in two lines goes upstream as the one line the
    // key holds, and a request sending that line is served what it built.
    let two_lines = [("x-tenant", "a"), ("x-tenant", "b")];
    let (first, _) = send(proxy.addr, get(), "/reflect", &two_lines).await;
    assert_eq!(first, "GET tenant=a, b ae=", "combined, as keyed");
    let (same, status) = send(proxy.addr, get(), "/reflect", &[("x-tenant", "a, b")]).await;
    assert_eq!(
        (same.as_str(), status.contains("hit")),
        (first.as_str(), true)
    );
    // An origin reading only the first line sees `a` under its own key.
    let (one, _) = send(proxy.addr, get(), "/reflect", &[("x-tenant", "a")]).await;
    assert_eq!(one, "GET tenant=a ae=");
    assert_eq!(origin.calls(), 2);

    // A stored Vary on Accept-Encoding keys — and forwards — one canonical
    // spelling: equivalent spellings, and its lines combined, share the
    // variant built for it.
    let gzip = [("x-tenant", "c"), ("accept-encoding", "gzip, br")];
    let spaced = [("x-tenant", "c"), ("accept-encoding", "GZIP ,br")];
    let combined = [
        ("x-tenant", "c"),
        ("accept-encoding", "gzip"),
        ("accept-encoding", "br"),
    ];
    assert_eq!(
        send(proxy.addr, get(), "/reflect", &gzip).await.0,
        "GET tenant=c ae=br, gzip"
    );
    for same in [&spaced[..], &combined] {
        let (answer, status) = send(proxy.addr, get(), "/reflect", same).await;
        assert_eq!(answer, "GET tenant=c ae=br, gzip");
        assert!(status.contains("hit"), "{status}");
    }
    assert_eq!(origin.calls(), 3);
    // A value it cannot respell is keyed as received, and a varied header
    // in two such lines is answered, never stored.
    let split = [
        ("x-tenant", "c"),
        ("accept-encoding", "gzip;level=1"),
        ("accept-encoding", "br"),
    ];
    for _ in 0..2 {
        let (answer, _) = send(proxy.addr, get(), "/reflect", &split).await;
        assert_eq!(answer, "GET tenant=c ae=gzip;level=1|br");
    }
    assert_eq!(origin.calls(), 5);

    // With vary_by_method = false a HEAD is keyed as the GET: a HEAD miss
    // reaches the origin as HEAD and is not stored for GETs, and a HEAD
    // after the GET is answered from the GET's entry.
    let tenant = [("x-tenant", "d")];
    send(proxy.addr, head(), "/reflect", &tenant).await;
    assert_eq!(origin.calls(), 6);
    let (body, status) = send(proxy.addr, get(), "/reflect", &tenant).await;
    assert_eq!(
        body, "GET tenant=d ae=",
        "the GET is not served a HEAD's answer: {status}"
    );
    let (body, status) = send(proxy.addr, head(), "/reflect", &tenant).await;
    assert!(body.is_empty() && status.contains("hit"), "{status}");
    assert_eq!(origin.calls(), 7);
}

/// Whether the server closes `stream` within `within`.
async fn closed_within(mut stream: TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// An HTTP/2 client that opens the connection and then only pings it,
/// never opening a stream, for `pings` half-seconds.
async fn pinging_http2(addr: SocketAddr, pings: usize) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    stream.write_all(&hello).await.unwrap();
    let ping = [0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    });
    for _ in 0..pings {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if reader.is_finished() || write.write_all(&ping).await.is_err() {
            break;
        }
    }
    // Closed by the server while it kept pinging.
    reader.is_finished()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_closes_silent_half_sent_and_idle_http2_connections() {
    let (proxy, _origin, _dir) = proxy("admin", "").await;
    let admin = proxy.admin;
    // More than the admin listener's 64 slots, held by clients that send
    // nothing, half a request head, or an HTTP/2 preface and then pings.
    let mut stalled = Vec::new();
    for n in 0..70 {
        let mut stream = TcpStream::connect(admin).await.unwrap();
        if n % 2 == 0 {
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
        }
        stalled.push(stream);
    }
    let pingers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(pinging_http2(admin, 20)))
        .collect();
    // The operator is served once the silent ones are gone, within seconds.
    let health = tokio::time::timeout(Duration::from_secs(10), get_with(admin, "/health", &[]))
        .await
        .expect("the admin API answers while others stall");
    assert!(health.0.contains("ok"), "{}", health.0);
    let closed = futures_util::future::join_all(
        stalled
            .into_iter()
            .map(|stream| closed_within(stream, Duration::from_secs(10))),
    )
    .await;
    assert!(closed.iter().all(|closed| *closed), "{closed:?}");
    for pinger in pingers {
        assert!(
            pinger.await.unwrap(),
            "an HTTP/2 connection with no stream is idle, pings or not"
        );
    }
    // The proxied port served throughout, and the admin API still does.
    assert!(get_with(proxy.addr, "/page", &[])
        .await
        .0
        .starts_with("host="));
    assert!(get_with(admin, "/health", &[]).await.0.contains("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_two_hosts_is_answered_400_rfc9112_3_2() {
    let (proxy, origin, _dir) = proxy("two-hosts", "").await;
    for request in [
        &b"GET /page HTTP/1.1\r\nHost: shop.example\r\nHost: evil.example\r\n\r\n"[..],
        b"GET http://shop.example/page HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    ] {
        let answer = raw(proxy.addr, request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    assert_eq!(origin.calls(), 0, "nothing was forwarded");
    // An absolute-form target that agrees with its Host is served.
    let answer = raw(
        proxy.addr,
        b"GET http://shop.example/page HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_is_not_chunked_coding_is_answered_400_rfc9112_7_1() {
    let (proxy, origin, _dir) = proxy("chunked", "").await;
    let head = "POST /upload HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
        "3\r\nabcdef\r\n0\r\n\r\n",
        "3;ext\nabc\r\n0\r\n\r\n",
    ] {
        let answer = raw(proxy.addr, format!("{head}{body}").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{body:?}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    assert_eq!(
        origin.bodies.load(Ordering::SeqCst),
        0,
        "no upstream request completed"
    );
    let valid = raw(
        proxy.addr,
        format!("{head}3\r\nabc\r\n0\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(valid.starts_with("HTTP/1.1 200"), "{valid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_forged_without_the_secret_is_never_restored() {
    let extra =
        "[identity]\nsecret_env = \"CACHET_TEST_SECRET\"\n\n[persistence]\ndump_file = \"DUMP\"\n";
    let origin = Origin::default();
    let upstream = origin.start().await;
    let dir = dir("forged");
    let dump = dir.join("dump");
    let extra = extra.replace("DUMP", dump.to_str().unwrap());
    let config = config(&dir, &extra);
    let mut proxy = start(&config, upstream).await;
    let (page, _) = get_with(proxy.addr, "/page", &[("host", "shop.example")]).await;
    assert_eq!(page, "host=shop.example xfh=shop.example");
    // SIGTERM: the shutdown dump is written.
    let pid = proxy.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::timeout(BOUND, proxy.child.wait())
        .await
        .unwrap()
        .unwrap();
    forge::forge(&dump, b"host=shop.example", b"host=evil.example");
    let proxy = start(&config, upstream).await;
    let (victim, status) = get_with(proxy.addr, "/page", &[("host", "shop.example")]).await;
    assert_eq!(victim, "host=shop.example xfh=shop.example", "{status}");
    assert!(
        status.contains("uri-miss"),
        "nothing was restored: {status}"
    );
    assert_eq!(origin.calls(), 2);
}

/// Sends `count` concurrent requests for `path` with `Cache-Control:
/// no-cache`, each on its own connection; the bodies.
async fn burst(addr: SocketAddr, path: &str, count: usize) -> Vec<String> {
    let requests = (0..count).map(|_| async move {
        get_with(addr, path, &[("cache-control", "no-cache")])
            .await
            .0
    });
    futures_util::future::join_all(requests).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_client_revalidations_share_one_origin_request() {
    let (proxy, origin, _dir) = proxy("no-cache", "").await;
    get_with(proxy.addr, "/fresh", &[]).await;
    assert_eq!(origin.calls(), 1);
    let bodies = burst(proxy.addr, "/fresh", 200).await;
    assert!(bodies.iter().all(|body| body == "original"), "{bodies:?}");
    let calls = origin.calls() - 1;
    println!("200 concurrent no-cache requests: {calls} origin request(s)");
    // One revalidation answers every request that arrived before it
    // landed; a request that arrived later revalidates again.
    assert!(calls <= 2, "{calls} origin requests for 200 revalidations");
    // A later one is not answered from before it arrived.
    get_with(proxy.addr, "/fresh", &[("cache-control", "no-cache")]).await;
    assert_eq!(origin.calls(), calls + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_no_cache_can_be_ignored() {
    let (proxy, origin, _dir) = proxy("ignore", "[security]\nclient_no_cache = \"ignore\"\n").await;
    get_with(proxy.addr, "/fresh", &[]).await;
    let bodies = burst(proxy.addr, "/fresh", 50).await;
    assert!(bodies.iter().all(|body| body == "original"));
    assert_eq!(origin.calls(), 1, "answered from the cache");
}

/// An origin that speaks HTTP/1.0: one answer per connection, then close.
async fn http10_origin() -> SocketAddr {
    raw_origin(b"HTTP/1.0 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok").await
}

/// An origin that answers every request with `answer`, as written.
async fn raw_origin(answer: &'static [u8]) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

/// One response read off `stream`, whose body is `Content-Length: 2`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    let complete = |answer: &[u8]| {
        answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .is_some_and(|end| answer.len() == end + 4 + 2)
    };
    while !complete(&answer) {
        match tokio::time::timeout(BOUND, stream.read(&mut byte)).await {
            Ok(Ok(1)) => answer.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_from_an_http10_origin_is_sent_in_the_proxys_own_version_rfc9110_6_2() {
    let dir = dir("http10");
    let proxy = start(&config(&dir, ""), http10_origin().await).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // A miss forwarded from the HTTP/1.0 origin, then a hit, on one
    // persistent connection: the miss must not downgrade or close it.
    for expected in ["stored", "hit"] {
        stream
            .write_all(b"GET /old HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(expected), "{answer}");
        assert!(answer.contains("via: 1.0 cachet"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_are_never_stored_or_merged_rfc9110_15_2() {
    // Two interim responses before the final one, with fields of their own.
    let origin = raw_origin(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nX-Interim: 1\r\n\r\n\
          HTTP/1.1 102 Processing\r\nX-Interim: 2\r\n\r\n\
          HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let dir = dir("interim");
    let proxy = start(&config(&dir, ""), origin).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    for expected in ["stored", "hit"] {
        stream
            .write_all(b"GET /hinted HTTP/1.1\r\nHost: shop.example\r\n\r\n")
            .await
            .unwrap();
        let answer = read_response(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(expected), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(
            !lower.contains("x-interim") && !lower.contains("link:"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    }
}
