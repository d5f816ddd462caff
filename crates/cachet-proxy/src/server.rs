//! The server: accepts connections (HTTP/1.1, or HTTP/2 with prior
//! knowledge) up to `max_connections`, prepares each request
//! ([`Inbound`]), runs it through invalidation, the cache and the upstream,
//! logs it, closes connections that stall or idle, and shuts down
//! gracefully.

use crate::config::ProxyConfig;
use crate::connection::{accept, Activity, Watched};
use crate::inbound::Inbound;
use crate::upstream::{ClientAddr, ProxyBody, Upstream};
use cachet_core::Cache;
use cachet_tower::{CacheLayer, InvalidationLayer, ResponseBody};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Service, ServiceBuilder, ServiceExt};

/// A caching reverse proxy, ready to serve.
#[derive(Debug)]
pub struct Proxy {
    cache: Cache,
    upstream: Upstream,
    inbound: Inbound,
    limits: Limits,
    shutdown_timeout: Duration,
}

/// What bounds each client connection.
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    max_header_bytes: usize,
    max_headers: usize,
}

impl Proxy {
    /// A proxy for `config`.
    pub fn new(config: &ProxyConfig) -> Self {
        Self {
            cache: config.cache.clone(),
            upstream: Upstream::new(config),
            inbound: Inbound::new(config),
            limits: Limits {
                header_read_timeout: config.header_read_timeout,
                idle_timeout: config.idle_timeout,
                max_connections: config.max_connections,
                max_header_bytes: config.max_header_bytes,
                max_headers: config.max_headers,
            },
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
            .layer(CacheLayer::new(self.cache.clone()).rewrite_paths(true))
            .service(self.upstream);
        let limits = self.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let inbound = Arc::new(self.inbound);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // At most `max_connections` at once: the next accept waits for a slot.
            let Some((stream, remote, slot)) = accept(&listener, &slots, &mut shutdown).await
            else {
                break;
            };
            let _ = stream.set_nodelay(true);
            let activity = Activity::new();
            let (app, inbound, watched) =
                (app.clone(), Arc::clone(&inbound), Arc::clone(&activity));
            let service = tower::service_fn(move |req: Request<Incoming>| {
                let in_flight = watched.request();
                let (app, inbound) = (app.clone(), Arc::clone(&inbound));
                async move {
                    let response = logged(app, &inbound, remote, req).await;
                    drop(in_flight);
                    response
                }
            });
            let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
            let connection = builder
                .serve_connection(io, TowerToHyperService::new(service))
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let idle = activity.idle(limits.header_read_timeout, limits.idle_timeout);
                tokio::select! {
                    result = connection => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %remote, "connection ended with an error");
                        }
                    }
                    () = idle => tracing::debug!(%remote, "closed a silent connection"),
                }
                drop(slot);
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

/// One request, prepared, through the stack, and one access-log line.
async fn logged<S>(
    mut app: S,
    inbound: &Inbound,
    remote: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody<ProxyBody>>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody<ProxyBody>>, Error = Infallible>,
{
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    inbound.prepare(&mut req);
    req.extensions_mut().insert(ClientAddr(remote));
    let response = app.ready().await?.call(req).await?;
    let cache_status = response
        .headers()
        .get(cachet_core::adapter::CACHE_STATUS)
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
