//! [`InvalidationLayer`] and [`InvalidationService`]: clear what a mutation
//! changed once the origin has accepted it (RFC 9111 §4.4).

use cachet_core::{Cache, CacheTags};
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Layer that invalidates cache entries after unsafe requests.
///
/// After a POST, PUT, PATCH, DELETE (or any method that is not GET, HEAD,
/// OPTIONS or TRACE) whose response is 2xx or 3xx, it deletes every entry
/// of the target URI (all methods, users and variants), of the same-origin
/// `Location` and `Content-Location` URIs, the keys the matching rule's
/// `invalidates` regexes select, and the entries carrying the response's
/// tags. A rule's `invalidate_scope = "user"` limits that to the requesting
/// user's (and shared) entries. The response is sent once the entries are
/// gone, so the client's next read sees its own write.
///
/// It works alone or with [`CacheLayer`](crate::CacheLayer), in either
/// order; see the [crate docs](crate#invalidation) for an example.
#[derive(Debug, Clone)]
pub struct InvalidationLayer {
    cache: Cache,
}

impl InvalidationLayer {
    /// A layer invalidating entries of `cache`.
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

impl<S> Layer<S> for InvalidationLayer {
    type Service = InvalidationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvalidationService {
            inner,
            cache: self.cache.clone(),
        }
    }
}

/// Middleware that invalidates cache entries after unsafe requests; see
/// [`InvalidationLayer`].
#[derive(Debug, Clone)]
pub struct InvalidationService<S> {
    inner: S,
    cache: Cache,
}

impl<S> InvalidationService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, consuming the middleware.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

pin_project! {
    /// Response future of [`InvalidationService`]: safe requests poll the
    /// inner future directly; unsafe ones run in one boxed future that
    /// invalidates before it yields the response.
    pub struct InvalidationFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        Safe { #[pin] future: F },
        Unsafe { future: BoxFuture<T, E> },
    }
}

impl<F, B, E> Future for InvalidationFuture<F, Response<B>, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Safe { future } => future.poll(cx),
            KindProj::Unsafe { future } => future.as_mut().poll(cx),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InvalidationService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = InvalidationFuture<S::Future, Response<ResBody>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let Some(invalidation) = self.cache.invalidation(&req) else {
            return InvalidationFuture {
                kind: Kind::Safe {
                    future: self.inner.call(req),
                },
            };
        };
        let future = self.inner.call(req);
        let cache = self.cache.clone();
        let future = Box::pin(async move {
            let (mut parts, body) = future.await?.into_parts();
            let extension = parts.extensions.get::<CacheTags>().cloned();
            let tags = cache.take_tags(&mut parts.headers, extension.as_ref());
            let invalidated = cache
                .invalidate(&invalidation, parts.status, &parts.headers, &tags)
                .await;
            if let Err(error) = invalidated {
                // The mutation happened; only the cache is behind.
                tracing::warn!(%error, target = invalidation.target(), "invalidation failed");
            }
            Ok(Response::from_parts(parts, body))
        });
        InvalidationFuture {
            kind: Kind::Unsafe { future },
        }
    }
}
