//! [`InvalidationFuture`]: the response future of [`InvalidationService`](super::InvalidationService).

use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub(super) type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

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

impl<F, T, E> InvalidationFuture<F, T, E> {
    /// A safe request's future: the inner one, polled as it is.
    pub(super) fn safe(future: F) -> Self {
        Self {
            kind: Kind::Safe { future },
        }
    }

    /// An unsafe request's future, which invalidates before it yields.
    pub(super) fn invalidating(future: BoxFuture<T, E>) -> Self {
        Self {
            kind: Kind::Unsafe { future },
        }
    }
}

impl<F, T, E> std::fmt::Debug for InvalidationFuture<F, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Safe { .. } => "safe",
            Kind::Unsafe { .. } => "invalidating",
        };
        f.debug_struct("InvalidationFuture")
            .field("kind", &kind)
            .finish()
    }
}
