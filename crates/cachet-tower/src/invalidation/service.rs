//! [`InvalidationService`]: the middleware itself.

use super::future::InvalidationFuture;
use super::layer::InvalidationLayer;
use cachet_core::adapter::{self, HandlerRule};
use cachet_core::{Cache, CacheTags};
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that invalidates cache entries after unsafe requests; see
/// [`InvalidationLayer`]. The inner service may be any `Service` whose
/// future is `Send`; it need not be `Clone`.
///
/// ```
/// use cachet_core::Cache;
/// use cachet_tower::InvalidationService;
/// use std::convert::Infallible;
/// use tower::{service_fn, Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache = Cache::from_toml("[[rules]]\npath = '^/items'")?;
/// let save = service_fn(|_req: http::Request<()>| async {
///     Ok::<_, Infallible>(http::Response::new("saved"))
/// });
/// let mut service = InvalidationService::new(save, cache);
/// let req = http::Request::post("/items").body(())?;
/// let response = service.ready().await?.call(req).await?;
/// assert_eq!(*response.body(), "saved");
/// assert_eq!(service.cache().stats().caches["default"].removals, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct InvalidationService<S> {
    inner: S,
    cache: Cache,
    /// The rule of the one handler this wraps, in place of the cache's.
    handler: Option<HandlerRule>,
}

impl<S> InvalidationService<S> {
    /// Wraps `inner`, invalidating entries of `cache`.
    pub fn new(inner: S, cache: Cache) -> Self {
        Self {
            inner,
            cache,
            handler: None,
        }
    }

    /// Invalidates under `rule` instead of the rule a request's path
    /// matches (see [`HandlerLayer`](crate::HandlerLayer)).
    pub(crate) fn for_handler(mut self, rule: HandlerRule) -> Self {
        self.handler = Some(rule);
        self
    }

    /// An [`InvalidationLayer`] for `cache`, as tower-http's services offer.
    pub fn layer(cache: Cache) -> InvalidationLayer {
        InvalidationLayer::new(cache)
    }

    /// The cache this middleware invalidates.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, consuming the middleware.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InvalidationService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = InvalidationFuture<S::Future, Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let invalidation = match &self.handler {
            Some(rule) => adapter::invalidation_handler(&self.cache, rule, &req),
            None => adapter::invalidation(&self.cache, &req),
        };
        let Some(invalidation) = invalidation else {
            return InvalidationFuture::safe(self.inner.call(req));
        };
        let future = self.inner.call(req);
        let cache = self.cache.clone();
        let future = Box::pin(async move {
            let (mut parts, body) = future.await?.into_parts();
            let extension = parts.extensions.get::<CacheTags>().cloned();
            let tags = adapter::take_tags(&cache, &mut parts.headers, extension.as_ref());
            let invalidated =
                adapter::invalidate(&cache, &invalidation, parts.status, &parts.headers, &tags)
                    .await;
            if let Err(error) = invalidated {
                // The mutation happened; only the cache is behind.
                tracing::warn!(%error, target = invalidation.target(), "invalidation failed");
            }
            Ok(Response::from_parts(parts, body))
        });
        InvalidationFuture::invalidating(future)
    }
}
