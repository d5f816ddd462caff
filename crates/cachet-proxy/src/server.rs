//! The server: accepts connections (HTTP/1.1, or HTTP/2 with prior
//! knowledge), runs each request through invalidation, the cache and the
//! upstream, logs it, and shuts down gracefully.

use crate::config::ProxyConfig;
use crate::upstream::{ClientAddr, ProxyBody, Upstream};
use cachet_core::Cache;
use cachet_tower::{CacheLayer, InvalidationLayer, ResponseBody};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

/// A caching reverse proxy, ready to serve.
#[derive(Debug)]
pub struct Proxy {
    cache: Cache,
    upstream: Upstream,
    shutdown_timeout: Duration,
}

impl Proxy {
    /// A proxy for `config`.
    pub fn new(config: &ProxyConfig) -> Self {
        Self {
            cache: config.cache.clone(),
            upstream: Upstream::new(config),
            shutdown_timeout: config.shutdown_timeout,
        }
    }

    /// The cache, for its statistics and key operations.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting and lets in-flight requests finish (for at most the
    /// configured `shutdown_timeout`).
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let app = ServiceBuilder::new()
            .layer(InvalidationLayer::new(self.cache.clone()))
            .layer(CacheLayer::new(self.cache.clone()))
            .service(self.upstream);
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let service =
                tower::service_fn(move |req: Request<Incoming>| logged(app.clone(), remote, req));
            let connection = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(self.shutdown_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(timeout = ?self.shutdown_timeout, "in-flight requests cut off at shutdown");
        }
    }
}

/// One request through the stack, with the client's address for
/// `X-Forwarded-For`, and one access-log line.
async fn logged<S>(
    mut app: S,
    remote: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody<ProxyBody>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody<ProxyBody>>, Error = Infallible>,
{
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    req.extensions_mut().insert(ClientAddr(remote));
    let response = app.ready().await?.call(req).await?;
    let cache_status = response
        .headers()
        .get(cachet_core::outcome::CACHE_STATUS)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    tracing::info!(
        target: "cachet_proxy::access",
        %remote,
        %method,
        %path,
        status = response.status().as_u16(),
        cache = cache_status,
        micros = started.elapsed().as_micros() as u64,
    );
    Ok(response)
}
