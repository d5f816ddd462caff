//! The proxied port: each request prepared ([`Inbound`]), run through
//! invalidation, the cache and the upstream, and logged, on connections
//! bounded like every listener's ([`crate::connection`]).

use crate::access_log::{AccessLog, Line};
use crate::config::ProxyConfig;
use crate::connection::{self, Policy};
use crate::inbound::Inbound;
use crate::upstream::{ProxyBody, Upstream};
use cachet_core::Cache;
use cachet_tower::{CacheLayer, InvalidationLayer, ResponseBody};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};

/// A caching reverse proxy, ready to serve.
#[derive(Debug)]
pub struct Proxy {
    cache: Cache,
    upstream: Upstream,
    inbound: Inbound,
    policy: Policy,
}

impl Proxy {
    /// A proxy for `config`.
    pub fn new(config: &ProxyConfig) -> Self {
        Self {
            cache: config.cache.clone(),
            upstream: Upstream::new(config),
            inbound: Inbound::new(config),
            policy: Policy::of(config),
        }
    }

    /// The cache, for its statistics and key operations.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Serves connections (HTTP/1.1, or HTTP/2 with prior knowledge) from
    /// `listener` until `shutdown` completes, then stops accepting and lets
    /// in-flight requests finish (for at most the configured
    /// `shutdown_timeout`).
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let inbound = Arc::new(self.inbound);
        // `RUST_LOG` is read once: a request only checks an `Option`.
        let log = AccessLog::enabled().then(|| Arc::new(AccessLog::stdout()));
        let (cache, upstream) = (self.cache, self.upstream);
        let make = move |remote: SocketAddr| Proxied {
            app: ServiceBuilder::new()
                .layer(InvalidationLayer::new(cache.clone()))
                .layer(CacheLayer::new(cache.clone()).rewrite_paths(true))
                .service(upstream.for_client(remote)),
            inbound: Arc::clone(&inbound),
            log: log.clone(),
            remote: Arc::from(remote.to_string()),
        };
        connection::serve(listener, self.policy, make, shutdown, "proxy").await;
    }
}

/// The answer to a request that names no single host (RFC 9112 §3.2):
/// 400, and the connection closed, since what else it carries cannot be
/// trusted either.
fn bad_request() -> Response<ResponseBody<ProxyBody>> {
    let body = Empty::new().map_err(|never| match never {}).boxed();
    let mut response = Response::new(ResponseBody::passthrough(body));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The proxied port's service for one client's connection: each request
/// prepared, through the stack, and one access-log line when its response
/// head is ready. It calls the stack in place: hyper-util's glue already
/// clones it once per request, and the future it returns owns nothing of
/// it, so the per-request future stays small to move.
#[derive(Clone)]
struct Proxied<S> {
    app: S,
    inbound: Arc<Inbound>,
    log: Option<Arc<AccessLog>>,
    /// The client's address as the access log writes it, written once
    /// for the connection rather than for each of its requests.
    remote: Arc<str>,
}

/// What the proxied port answers.
type ProxyResponse = Response<ResponseBody<ProxyBody>>;

impl<S> Service<Request<Incoming>> for Proxied<S>
where
    S: Service<Request<Incoming>, Response = ProxyResponse, Error = Infallible>,
{
    type Response = ProxyResponse;
    type Error = Infallible;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        // Only what the line needs is kept, and only when lines are written.
        let line = self.log.as_ref().map(|log| PendingLine {
            log: Arc::clone(log),
            started: Instant::now(),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            remote: Arc::clone(&self.remote),
        });
        let inner = match self.inbound.prepare(&mut req) {
            Ok(()) => Some(self.app.call(req)),
            Err(bad) => {
                tracing::debug!(remote = %self.remote, %bad, "a malformed request: 400");
                None
            }
        };
        Logged { inner, line }
    }
}

/// What a request's access-log line needs from the request.
struct PendingLine {
    log: Arc<AccessLog>,
    started: Instant,
    method: Method,
    path: String,
    remote: Arc<str>,
}

pin_project_lite::pin_project! {
    /// A request's answer on its way (or `None`: a 400), logged once ready.
    struct Logged<F> {
        #[pin]
        inner: Option<F>,
        line: Option<PendingLine>,
    }
}

impl<F> Future for Logged<F>
where
    F: Future<Output = Result<ProxyResponse, Infallible>>,
{
    type Output = Result<ProxyResponse, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match this.inner.as_pin_mut() {
            Some(inner) => std::task::ready!(inner.poll(cx))?,
            None => bad_request(),
        };
        if let Some(line) = this.line.take() {
            let cache_status = response
                .headers()
                .get(cachet_core::adapter::CACHE_STATUS)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            line.log.write(&Line {
                remote: &line.remote,
                method: &line.method,
                path: &line.path,
                status: response.status().as_u16(),
                cache_status,
                started: line.started,
            });
        }
        Poll::Ready(Ok(response))
    }
}
