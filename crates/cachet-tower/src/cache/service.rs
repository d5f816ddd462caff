//! [`CacheService`]: the middleware itself.

use super::future::ResponseFuture;
use super::layer::CacheLayer;
use bytes::Bytes;
use cachet_core::adapter::{self, Begun, HandlerRule, Plan, ResponseBody, Route};
use cachet_core::Cache;
use http::HeaderMap;
use http::{Request, Response};
use http_body::Body;
use std::future::Future;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that answers cacheable requests from a [`Cache`] and stores the
/// origin's responses.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheService<S> {
    inner: S,
    cache: Cache,
    rewrite_paths: bool,
    /// The rule of the one handler this wraps, in place of the cache's.
    handler: Option<HandlerRule>,
}

impl<S> CacheService<S> {
    /// Wraps `inner` with `cache`.
    pub fn new(inner: S, cache: Cache) -> Self {
        // Hits copy a prepared map of their entry's headers
        // (`adapter::answer`) instead of building one.
        adapter::prepare_answers(&cache);
        Self {
            inner,
            cache,
            rewrite_paths: false,
            handler: None,
        }
    }

    /// Caches every request under `rule` instead of matching the cache's
    /// rules (see [`HandlerLayer`](crate::HandlerLayer)).
    pub(crate) fn for_handler(mut self, rule: HandlerRule) -> Self {
        self.handler = Some(rule);
        self
    }

    /// See [`CacheLayer::rewrite_paths`].
    #[must_use]
    pub fn rewrite_paths(mut self, on: bool) -> Self {
        self.rewrite_paths = on;
        self
    }

    /// A [`CacheLayer`] with `cache`.
    pub fn layer(cache: Cache) -> CacheLayer {
        CacheLayer::new(cache)
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the middleware.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let route = match &self.handler {
            Some(rule) => adapter::route_handler(&self.cache, rule, &req),
            None => adapter::route(&self.cache, &req),
        };
        let route = match route {
            Route::Cache(plan) if !self.admits(&plan, &mut req) => {
                adapter::bypass_plan(&self.cache, &plan)
            }
            route => route,
        };
        let plan = match route {
            Route::Pass => return ResponseFuture::passthrough(self.inner.call(req)),
            Route::Bypass(reason) => {
                let mut labels = HeaderMap::new();
                adapter::bypassed(&self.cache, reason, &mut labels);
                return ResponseFuture::labelled(self.inner.call(req), labels);
            }
            Route::Cache(plan) => plan,
        };
        // An in-memory store answers at once: a hit needs no boxed future.
        let miss = match adapter::begin(&self.cache, plan, &req) {
            Begun::Hit(answer, refresh) => {
                if let Some(refresh) = refresh {
                    let origin = origin(self.take_ready());
                    spawn(adapter::refresh(self.cache.clone(), refresh, origin, req));
                }
                return ResponseFuture::ready(adapter::answer(answer));
            }
            Begun::Miss(miss) => miss,
        };
        let origin = origin(self.take_ready());
        let cache = self.cache.clone();
        ResponseFuture::cached(Box::pin(async move {
            let (response, refresh) = adapter::serve(cache, miss, origin, req).await?;
            spawn(refresh);
            Ok(response)
        }))
    }
}

/// The inner service as the exchange's origin: one call.
fn origin<S, R>(mut inner: S) -> impl FnOnce(R) -> S::Future
where
    S: Service<R>,
{
    move |req| inner.call(req)
}

/// Runs a background refresh on the current Tokio runtime; without one the
/// stale entry is simply not refreshed.
fn spawn(refresh: Option<impl Future<Output = ()> + Send + 'static>) {
    let Some(refresh) = refresh else { return };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(refresh)),
        Err(_) => tracing::debug!("no Tokio runtime: the stale entry is not refreshed"),
    }
}

impl<S> CacheService<S> {
    /// Whether a request the rules route to the cache may use it, once the
    /// inner service gets the canonical target the key was made from: not
    /// when it has a body (an HTTP/2 one need not say so in its headers),
    /// nor when its path must change and this layer may not change it (the
    /// application may have routed on its own path already).
    fn admits<B: Body>(&self, plan: &Plan, req: &mut Request<B>) -> bool {
        if !req.body().is_end_stream() || (plan.changes_path() && !self.rewrite_paths) {
            return false;
        }
        plan.retarget(req)
    }
}

impl<S: Clone> CacheService<S> {
    /// The inner service `poll_ready` prepared, for a request handled
    /// apart from `call`; a clone takes its place until the next
    /// `poll_ready` (tower-service: "Be careful when cloning inner services").
    fn take_ready(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}
