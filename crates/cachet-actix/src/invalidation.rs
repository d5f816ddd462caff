//! [`CacheInvalidation`]: clear what a mutation changed once the inner
//! service has accepted it (RFC 9111 §4.4).

use crate::convert::{headers_from_actix, status_from_actix};
use crate::request::ActixRequest;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use cachet_core::adapter::{self, HandlerRule};
use cachet_core::{Cache, CacheTags};
use futures_util::future::{Either, LocalBoxFuture};
use std::future::{ready, Ready};
use std::rc::Rc;

/// Middleware that invalidates cache entries after unsafe requests: the
/// actix-web counterpart of `cachet_tower::InvalidationLayer`.
///
/// After a POST, PUT, PATCH, DELETE (or any method that is not GET, HEAD,
/// OPTIONS or TRACE) whose response is 2xx or 3xx, it deletes every entry
/// of the target URI (all methods, users and variants), of the same-origin
/// `Location` and `Content-Location` URIs, the keys the matching rule's
/// `invalidates` regexes select, and the entries carrying the response's
/// tags (the `Cache-Tag` header, or [`CacheTags`] in the response's
/// extensions). A rule's `invalidate_scope = "user"` limits that to the
/// requesting user's (and shared) entries. The response is sent once the
/// entries are gone, so the client's next read sees its own write.
///
/// It works alone or with [`ResponseCache`](crate::ResponseCache), in either
/// order; see the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheInvalidation {
    cache: Cache,
}

impl CacheInvalidation {
    /// Middleware invalidating entries of `cache`.
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

impl<S, B> Transform<S, ServiceRequest> for CacheInvalidation
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = CacheInvalidationMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CacheInvalidationMiddleware::new(
            service,
            self.cache.clone(),
            None,
        )))
    }
}

/// The service [`CacheInvalidation`] wraps around the inner service.
#[derive(Debug)]
pub struct CacheInvalidationMiddleware<S> {
    service: Rc<S>,
    cache: Cache,
    /// The rule of the one handler this wraps, in place of the cache's.
    handler: Option<HandlerRule>,
}

impl<S> CacheInvalidationMiddleware<S> {
    /// Wraps `service`, invalidating under `handler` when given.
    pub(crate) fn new(service: S, cache: Cache, handler: Option<HandlerRule>) -> Self {
        Self {
            service: Rc::new(service),
            cache,
            handler,
        }
    }
}

impl<S, B> Service<ServiceRequest> for CacheInvalidationMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Either<S::Future, LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let head = ActixRequest(req.request());
        let invalidation = match &self.handler {
            Some(rule) => adapter::invalidation_handler(&self.cache, rule, &head),
            None => adapter::invalidation(&self.cache, &head),
        };
        let Some(invalidation) = invalidation else {
            return Either::Left(self.service.call(req));
        };
        let future = self.service.call(req);
        let cache = self.cache.clone();
        Either::Right(Box::pin(async move {
            let mut response = future.await?;
            let mut headers = headers_from_actix(response.headers());
            let extension = response.response().extensions().get::<CacheTags>().cloned();
            let tags = adapter::take_tags(&cache, &mut headers, extension.as_ref());
            // The tag header is for the cache: drop it here too when the
            // cache strips it.
            response
                .headers_mut()
                .retain(|name, _| headers.contains_key(name.as_str()));
            let status = status_from_actix(response.status());
            let invalidated =
                adapter::invalidate(&cache, &invalidation, status, &headers, &tags).await;
            if let Err(error) = invalidated {
                // The mutation happened; only the cache is behind.
                tracing::warn!(%error, target = invalidation.target(), "invalidation failed");
            }
            Ok(response)
        }))
    }
}
