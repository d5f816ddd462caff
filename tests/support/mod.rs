//! Shared fixtures: an axum origin that counts its calls, wrapped in cachet.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use cachet::clock::MockClock;
use cachet::{Cache, CacheLayer, InvalidationLayer};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub const RULES: &str = r#"
[caches.small]
max_bytes = "8KiB"
ttl = "1m"

[[rules]]
path = '^/api/items$'
ttl = "60s"

[[rules]]
path = '^/api/shared-head$'
vary_by_method = false

[[rules]]
path = '^/api/me$'
vary_by_user = true

[[rules]]
path = '^/api/lang$'
vary_headers = ["Accept-Language"]

[[rules]]
path = '^/api/big$'
max_body = "1KiB"

[[rules]]
path = '^/api/small/'
cache = "small"

[[rules]]
path = '^/api/'
"#;

/// The origin: every handler counts its calls and puts the count in the body.
#[derive(Clone, Default)]
pub struct Origin {
    pub calls: Arc<AtomicUsize>,
    /// The preconditions each call to `/api/cond` carried, in order.
    pub conditions: Arc<Mutex<Vec<String>>>,
}

impl Origin {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// What `/api/cond` received, one line per call: `inm=…` and `ims=…`.
    pub fn conditions(&self) -> Vec<String> {
        self.conditions.lock().unwrap().clone()
    }

    fn next(&self) -> usize {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1
    }
}

async fn items(State(origin): State<Origin>) -> String {
    format!("items #{}", origin.next())
}

/// Shows the target the application received: what it routes on.
async fn target(State(origin): State<Origin>, req: Request<Body>) -> String {
    format!("{} #{}", req.uri(), origin.next())
}

async fn me(State(origin): State<Origin>, req: Request<Body>) -> String {
    let user = match req.extensions().get::<cachet::UserId>() {
        Some(id) => format!("ext:{}", id.as_str()),
        None => req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("?").to_owned())
            .unwrap_or_else(|| "anonymous".into()),
    };
    format!("me={user} #{}", origin.next())
}

async fn lang(State(origin): State<Origin>, headers: HeaderMap) -> Response<Body> {
    let lang = headers
        .get("accept-language")
        .map(|v| v.to_str().unwrap_or("?").to_owned())
        .unwrap_or_else(|| "none".into());
    Response::builder()
        .header("vary", "Accept-Language")
        .body(Body::from(format!("lang={lang} #{}", origin.next())))
        .unwrap()
}

async fn big(State(origin): State<Origin>) -> Vec<u8> {
    origin.next();
    vec![b'b'; 4096]
}

async fn streamed(State(origin): State<Origin>) -> Body {
    let n = origin.next();
    let chunks = (0..4).map(move |i| Ok::<_, std::io::Error>(format!("chunk{i}-{n};")));
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// Waits the request's `x-delay-ms` on Tokio's clock (paused in the
/// tests that use it, so no test sleeps).
async fn delay(headers: &HeaderMap) {
    let millis = headers
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(millis) = millis {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// Answers `headers #N` with the request's `x-respond-*` headers and
/// `x-status` status, after its `x-delay-ms`.
async fn with_headers(State(origin): State<Origin>, req: Request<Body>) -> Response<Body> {
    let n = origin.next();
    delay(req.headers()).await;
    let mut builder = Response::builder();
    for (name, value) in req.headers() {
        if let Some(name) = name.as_str().strip_prefix("x-respond-") {
            builder = builder.header(name, value);
        }
    }
    let status = req
        .headers()
        .get("x-status")
        .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
        .unwrap_or(200);
    builder
        .status(StatusCode::from_u16(status).unwrap())
        .body(Body::from(format!("headers #{n}")))
        .unwrap()
}

/// A resource with an entity-tag (the request's `x-etag`, else `"v1"`):
/// answers 304 when `If-None-Match` matches it, else 200. Echoes
/// `x-respond-*` headers on both, records the preconditions it saw, and
/// waits `x-delay-ms`.
async fn conditional(State(origin): State<Origin>, req: Request<Body>) -> Response<Body> {
    let n = origin.next();
    delay(req.headers()).await;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let etag = header("x-etag").unwrap_or_else(|| "\"v1\"".to_owned());
    let inm = header("if-none-match");
    origin.conditions.lock().unwrap().push(format!(
        "inm={} ims={}",
        inm.as_deref().unwrap_or("-"),
        header("if-modified-since").as_deref().unwrap_or("-")
    ));
    let mut response = if inm.as_deref() == Some(etag.as_str()) {
        let mut not_modified = Response::new(Body::empty());
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified
    } else {
        Response::new(Body::from(format!("body #{n}")))
    };
    let headers = response.headers_mut();
    headers.insert("etag", etag.parse().unwrap());
    // `x-respond-*` replaces what the handler set (an `etag`, for one).
    for (name, value) in req.headers() {
        if let Some(name) = name.as_str().strip_prefix("x-respond-") {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.clone(),
            );
        }
    }
    response
}

pub fn router(origin: Origin) -> Router {
    Router::new()
        .route("/api/items", get(items))
        .route("/api/itemsets", get(items))
        .route("/api/target", get(target))
        .route("/api/shared-head", get(items))
        .route("/api/me", get(me).delete(me))
        .route("/api/lang", get(lang))
        .route("/api/big", get(big))
        .route("/api/stream", get(streamed))
        .route("/api/small/{n}", get(items))
        .route("/api/respond", any(with_headers))
        .route("/api/cond", get(conditional))
        .route("/uncached", get(items))
        .with_state(origin)
}

/// The origin wrapped in a cache built from [`RULES`] on a mock clock.
pub struct App {
    pub router: Router,
    pub origin: Origin,
    pub cache: Cache,
    pub clock: MockClock,
}

impl App {
    pub fn new() -> Self {
        Self::with_rules(RULES)
    }

    pub fn with_rules(rules: &str) -> Self {
        let clock = MockClock::new();
        let cache = cachet::CacheBuilder::from_toml(rules)
            .unwrap()
            .identity(cachet::Identity::default().secret("test"))
            .clock(clock.clone())
            .build()
            .unwrap();
        Self::around(cache, clock)
    }

    /// A fresh origin behind `cache` (reading `clock`) and its
    /// invalidation layer.
    pub fn around(cache: Cache, clock: MockClock) -> Self {
        let origin = Origin::default();
        let router = router(origin.clone())
            .layer(CacheLayer::new(cache.clone()))
            .layer(InvalidationLayer::new(cache.clone()));
        Self {
            router,
            origin,
            cache,
            clock,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// HIT, MISS or BYPASS, read from `Cache-Status`; `-` without one.
    pub fn outcome(&self) -> &str {
        match self.header("cache-status") {
            None => "-",
            Some(status) if status.contains("; hit") => "HIT",
            Some(status) if status.contains("fwd=bypass") || status.contains("fwd=method") => {
                "BYPASS"
            }
            Some(_) => "MISS",
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// What a GET through a Tower service came back with.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    /// The `Cache-Status` header, empty when absent.
    pub cache_status: String,
    pub body: bytes::Bytes,
}

/// GETs `uri` through `service` and reads the whole response, or returns
/// the service's own error.
pub async fn fetch<S, B>(service: S, uri: &str) -> Result<Fetched, S::Error>
where
    S: tower::Service<Request<Body>, Response = Response<B>>,
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service.oneshot(request("GET", uri, &[])).await?;
    let (parts, body) = response.into_parts();
    let cache_status = parts
        .headers
        .get("cache-status")
        .map_or("", |value| value.to_str().unwrap())
        .to_owned();
    Ok(Fetched {
        status: parts.status,
        cache_status,
        body: body.collect().await.unwrap().to_bytes(),
    })
}

/// `n` tasks, spawned at once, each fetching `uri` through a clone of
/// `service`.
pub fn fetch_concurrently<S, B>(
    service: &S,
    n: usize,
    uri: &'static str,
) -> Vec<tokio::task::JoinHandle<Result<Fetched, S::Error>>>
where
    S: tower::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    (0..n)
        .map(|_| tokio::spawn(fetch(service.clone(), uri)))
        .collect()
}

pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}
