//! Bodies across the edge: an actix-web body read as an `http-body` 1.x
//! body by the core ([`FromActix`]), and the core's response body written
//! by actix-web ([`CachedBody`]).

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::http::Method;
use bytes::Bytes;
use cachet_core::adapter::ResponseBody as CoreBody;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::sync::oneshot;

/// The body of every response through [`ResponseCacheMiddleware`](crate::ResponseCacheMiddleware):
/// the inner service's own body when no rule matched, else the cache's.
pub type ResponseBody<B> = EitherBody<B, CachedBody<B>>;

/// The error of an actix-web body, as [`MessageBody`] hands it out.
pub type BodyError = Box<dyn StdError>;

pin_project! {
    /// An actix-web response body read as an [`http_body::Body`].
    #[derive(Debug)]
    pub struct FromActix<B> {
        #[pin]
        body: B,
    }
}

impl<B> FromActix<B> {
    pub(crate) fn new(body: B) -> Self {
        Self { body }
    }
}

impl<B: MessageBody> Body for FromActix<B> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let chunk = ready!(self.project().body.poll_next(cx));
        Poll::Ready(chunk.map(|chunk| chunk.map(Frame::data).map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.body.size(), BodySize::None | BodySize::Sized(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.body.size() {
            BodySize::None => SizeHint::with_exact(0),
            BodySize::Sized(length) => SizeHint::with_exact(length),
            BodySize::Stream => SizeHint::default(),
        }
    }
}

pin_project! {
    /// The body of a response the cache answered or forwarded, as
    /// actix-web writes it.
    pub struct CachedBody<B: MessageBody> {
        #[pin]
        body: CoreBody<FromActix<B>>,
        // A `HEAD` answer has no body, but its `Content-Length` is the GET
        // body's: actix-web writes the length the body reports.
        head_length: Option<u64>,
        // Dropped with the body: the response is sent, so the request it
        // answered may go on to the origin for a background refresh.
        sent: Option<oneshot::Sender<()>>,
    }
}

impl<B: MessageBody> CachedBody<B> {
    /// `body` for a request of `method`; `length` says what a `HEAD`
    /// answer announces (read only for one).
    pub(crate) fn new(
        body: CoreBody<FromActix<B>>,
        method: &Method,
        length: impl FnOnce() -> Option<u64>,
    ) -> Self {
        let head_length = (method == Method::HEAD).then(length).flatten();
        Self {
            body,
            head_length,
            sent: None,
        }
    }

    /// Signals `sent` once the body is dropped.
    pub(crate) fn on_sent(mut self, sent: oneshot::Sender<()>) -> Self {
        self.sent = Some(sent);
        self
    }
}

impl<B: MessageBody> MessageBody for CachedBody<B> {
    type Error = BodyError;

    fn size(&self) -> BodySize {
        if let Some(length) = self.head_length {
            return BodySize::Sized(length);
        }
        match self.body.size_hint().exact() {
            Some(length) => BodySize::Sized(length),
            None => BodySize::Stream,
        }
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        // A body waited on by a refresh, or standing in for a HEAD's
        // length, stays what it is.
        if self.sent.is_some() || self.head_length.is_some() {
            return Err(self);
        }
        let Self {
            body,
            head_length,
            sent,
        } = self;
        body.try_into_bytes().map_err(|body| Self {
            body,
            head_length,
            sent,
        })
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BodyError>>> {
        let mut body = self.project().body;
        loop {
            match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => return Poll::Ready(Some(Ok(data))),
                    // actix-web 4 writes no trailers.
                    Err(_trailers) => continue,
                },
            }
        }
    }
}

impl<B: MessageBody> std::fmt::Debug for CachedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedBody")
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}
