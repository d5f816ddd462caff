//! The response future of [`ResponseCacheMiddleware`](crate::ResponseCacheMiddleware).

use crate::body::ResponseBody;
use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::HeaderMap;
use actix_web::Error;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

type Answer<B> = Result<ServiceResponse<ResponseBody<B>>, Error>;

pin_project! {
    /// Response future of [`ResponseCacheMiddleware`](crate::ResponseCacheMiddleware).
    ///
    /// Requests that match no rule poll the inner service's future
    /// directly, and a hit from an in-memory store is ready at once:
    /// neither allocates a future. Other requests that match a rule run the
    /// cache steps in one boxed local future.
    pub struct ResponseFuture<F, B: MessageBody> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B: MessageBody> {
        Passthrough { #[pin] future: F },
        // Passed through, with cache headers added to the response.
        Labelled { #[pin] future: F, labels: Option<HeaderMap> },
        Ready { answer: Option<Answer<B>> },
        Cached { future: Pin<Box<dyn Future<Output = Answer<B>>>> },
    }
}

impl<F, B: MessageBody> ResponseFuture<F, B> {
    pub(crate) fn passthrough(future: F) -> Self {
        Self {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn labelled(future: F, labels: HeaderMap) -> Self {
        Self {
            kind: Kind::Labelled {
                future,
                labels: Some(labels),
            },
        }
    }

    pub(crate) fn ready(answer: Answer<B>) -> Self {
        Self {
            kind: Kind::Ready {
                answer: Some(answer),
            },
        }
    }

    pub(crate) fn cached(future: Pin<Box<dyn Future<Output = Answer<B>>>>) -> Self {
        Self {
            kind: Kind::Cached { future },
        }
    }
}

impl<F, B> Future for ResponseFuture<F, B>
where
    B: MessageBody,
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Answer<B>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map_into_left_body()))
            }
            KindProj::Labelled { future, labels } => {
                let mut response = ready!(future.poll(cx))?;
                for (name, value) in labels.take().unwrap_or_default() {
                    response.headers_mut().append(name, value);
                }
                Poll::Ready(Ok(response.map_into_left_body()))
            }
            KindProj::Ready { answer } => {
                Poll::Ready(answer.take().expect("future polled after completion"))
            }
            KindProj::Cached { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B: MessageBody> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
