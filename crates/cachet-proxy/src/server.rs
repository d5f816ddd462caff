//! The proxied port: each request prepared ([`Inbound`]), run through
//! invalidation, the cache and the upstream, and logged, on connections
//! bounded like every listener's ([`crate::connection`]).

use crate::access_log::{AccessLog, Line};
use crate::config::ProxyConfig;
use crate::connection::{self, Policy};
use crate::inbound::Inbound;
use crate::upstream::{ClientAddr, ProxyBody, Upstream};
use cachet_core::Cache;
use cachet_tower::{CacheLayer, InvalidationLayer, ResponseBody};
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

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
        let app = ServiceBuilder::new()
            .layer(InvalidationLayer::new(self.cache.clone()))
            .layer(CacheLayer::new(self.cache.clone()).rewrite_paths(true))
            .service(self.upstream);
        let inbound = Arc::new(self.inbound);
        // `RUST_LOG` is read once: a request only checks an `Option`.
        let log = AccessLog::enabled().then(|| Arc::new(AccessLog::stdout()));
        let make = move |remote: SocketAddr| {
            let (app, inbound, log) = (app.clone(), Arc::clone(&inbound), log.clone());
            tower::service_fn(move |req: Request<Incoming>| {
                let (app, inbound, log) = (app.clone(), Arc::clone(&inbound), log.clone());
                async move { logged(app, &inbound, log.as_deref(), remote, req).await }
            })
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

/// One request, prepared, through the stack, and one access-log line.
async fn logged<S>(
    mut app: S,
    inbound: &Inbound,
    log: Option<&AccessLog>,
    remote: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody<ProxyBody>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody<ProxyBody>>, Error = Infallible>,
{
    // Only what the line needs is kept, and only when lines are written.
    let logging = log.map(|log| {
        (
            log,
            Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let response = match inbound.prepare(&mut req) {
        Ok(()) => {
            req.extensions_mut().insert(ClientAddr(remote));
            app.ready().await?.call(req).await?
        }
        Err(bad) => {
            tracing::debug!(%remote, %bad, "a malformed request: 400");
            bad_request()
        }
    };
    if let Some((log, started, method, path)) = logging {
        let cache_status = response
            .headers()
            .get(cachet_core::adapter::CACHE_STATUS)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-");
        log.write(&Line {
            remote,
            method: &method,
            path: &path,
            status: response.status().as_u16(),
            cache_status,
            elapsed: started.elapsed(),
        });
    }
    Ok(response)
}
