//! The response future of [`CacheService`](crate::CacheService).

use cachet_core::adapter::ResponseBody;
use http::{HeaderMap, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pub(crate) type BoxResponseFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

pin_project! {
    /// Response future of [`CacheService`](crate::CacheService).
    ///
    /// Requests that match no rule poll the inner service's future directly,
    /// and a hit from an in-memory store is ready at once: neither allocates
    /// a future. Other requests that match a rule run the cache steps in one
    /// boxed future.
    pub struct ResponseFuture<F, B: Body, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B: Body, E> {
        Passthrough { #[pin] future: F },
        // Passed through, with cache headers added to the response (boxed:
        // the future is moved whole on every request, and few are labelled).
        Labelled { #[pin] future: F, labels: Option<Box<HeaderMap>> },
        Ready { response: Option<Response<ResponseBody<B>>> },
        Cached { future: BoxResponseFuture<B, E> },
    }
}

impl<F, B: Body, E> ResponseFuture<F, B, E> {
    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn labelled(future: F, labels: HeaderMap) -> Self {
        Self {
            kind: Kind::Labelled {
                future,
                labels: Some(Box::new(labels)),
            },
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody<B>>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn cached(future: BoxResponseFuture<B, E>) -> Self {
        Self {
            kind: Kind::Cached { future },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(ResponseBody::passthrough)))
            }
            KindProj::Labelled { future, labels } => {
                let mut response = ready!(future.poll(cx))?;
                response
                    .headers_mut()
                    .extend(labels.take().map(|labels| *labels).unwrap_or_default());
                Poll::Ready(Ok(response.map(ResponseBody::passthrough)))
            }
            KindProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("future polled after completion")))
            }
            KindProj::Cached { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B: Body, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
