//! The response body: a cached body, the origin's body untouched, the
//! origin's body replayed after the cache read part of it, or the origin's
//! body streamed to the client while the cache records it.

use super::recorder::{Recorder, Storing};
use crate::protocol::storability::NotStorable;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

pin_project! {
    /// The body of every response the cache answered or forwarded: a body
    /// held in memory, or the origin's body passed on (read in part first,
    /// or recorded on the way).
    pub struct ResponseBody<B: Body> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B: Body> {
        // A whole body held in memory: a hit, or a miss that was stored.
        Full { data: Option<Bytes> },
        // The origin's body, untouched.
        Passthrough { #[pin] body: B },
        // What the cache read while trying to buffer, then the rest of the
        // origin's body (or the error that ended it).
        Replay {
            prefix: VecDeque<Frame<Bytes>>,
            error: Option<B::Error>,
            rest: Option<Pin<Box<B>>>,
        },
        // The origin's body, each frame passed on as it arrives and
        // recorded until the body ends (then stored) or outgrows the limit.
        Recording {
            #[pin]
            body: B,
            recorder: Option<Box<Recorder>>,
            storing: Option<Storing>,
        },
    }
}

impl<B: Body> ResponseBody<B> {
    /// A body held in memory, sent as one frame.
    pub fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// The whole body, when it is held in memory (a hit, or a response
    /// that was stored); the body itself otherwise.
    pub fn try_into_bytes(self) -> Result<Bytes, Self> {
        match self.kind {
            Kind::Full { data } => Ok(data.unwrap_or_default()),
            kind => Err(Self { kind }),
        }
    }

    /// The origin's body, untouched.
    pub fn passthrough(body: B) -> Self {
        Self {
            kind: Kind::Passthrough { body },
        }
    }

    pub(crate) fn recording(body: B, recorder: Recorder) -> Self {
        Self {
            kind: Kind::Recording {
                body,
                recorder: Some(Box::new(recorder)),
                storing: None,
            },
        }
    }

    pub(crate) fn replay(
        prefix: VecDeque<Frame<Bytes>>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        Self {
            kind: Kind::Replay {
                prefix,
                error,
                rest,
            },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            KindProj::Passthrough { body } => body.poll_frame(cx),
            KindProj::Replay {
                prefix,
                error,
                rest,
            } => {
                if let Some(frame) = prefix.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                if let Some(error) = error.take() {
                    *rest = None;
                    return Poll::Ready(Some(Err(error)));
                }
                match rest {
                    Some(body) => body.as_mut().poll_frame(cx),
                    None => Poll::Ready(None),
                }
            }
            KindProj::Recording {
                mut body,
                recorder,
                storing,
            } => loop {
                if let Some(store) = storing {
                    ready!(store.as_mut().poll(cx));
                    *storing = None;
                    return Poll::Ready(None);
                }
                let frame = match ready!(body.as_mut().poll_frame(cx)) {
                    Some(frame) => frame,
                    None => {
                        match recorder.take() {
                            Some(complete) => *storing = Some(complete.finish()),
                            None => return Poll::Ready(None),
                        }
                        continue;
                    }
                };
                if let Some(recording) = recorder {
                    let refused = match &frame {
                        Ok(frame) => match frame.data_ref() {
                            Some(data) if recording.record(data) => None,
                            Some(_) => Some(NotStorable::TooLarge),
                            None => Some(NotStorable::Trailers),
                        },
                        Err(_) => Some(NotStorable::Incomplete),
                    };
                    if let Some(reason) = refused {
                        if let Some(recording) = recorder.take() {
                            recording.give_up(reason);
                        }
                    }
                }
                return Poll::Ready(Some(frame));
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Passthrough { body } => body.is_end_stream(),
            Kind::Replay {
                prefix,
                error,
                rest,
            } => {
                prefix.is_empty()
                    && error.is_none()
                    && rest.as_ref().is_none_or(|body| body.is_end_stream())
            }
            // Not ended until the recording is stored.
            Kind::Recording {
                body,
                recorder,
                storing,
            } => recorder.is_none() && storing.is_none() && body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64))
            }
            Kind::Passthrough { body } => body.size_hint(),
            Kind::Replay { .. } => SizeHint::default(),
            Kind::Recording { body, .. } => body.size_hint(),
        }
    }
}

impl<B: Body> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "Full",
            Kind::Passthrough { .. } => "Passthrough",
            Kind::Replay { .. } => "Replay",
            Kind::Recording { .. } => "Recording",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    type Stream = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>,
    >;

    fn stream(chunks: Vec<Result<Frame<Bytes>, std::io::Error>>) -> Stream {
        StreamBody::new(futures_util::stream::iter(chunks))
    }

    #[tokio::test]
    async fn full_bodies_are_one_exact_frame() {
        let body = ResponseBody::<Full<Bytes>>::full(Bytes::from_static(b"hello"));
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        let empty = ResponseBody::<Full<Bytes>>::full(Bytes::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
        let held = ResponseBody::<Full<Bytes>>::full(Bytes::from_static(b"held"));
        assert_eq!(held.try_into_bytes().unwrap(), "held");
        let origin = ResponseBody::passthrough(Full::new(Bytes::from_static(b"origin")));
        assert!(origin.try_into_bytes().is_err());
    }

    #[tokio::test]
    async fn replay_sends_the_prefix_then_the_rest() {
        let prefix = VecDeque::from([Frame::data(Bytes::from_static(b"ab"))]);
        let rest = stream(vec![Ok(Frame::data(Bytes::from_static(b"cd")))]);
        let body = ResponseBody::replay(prefix, None, Some(Box::pin(rest)));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abcd");
    }

    #[tokio::test]
    async fn replay_ends_with_the_error_that_stopped_the_read() {
        let prefix = VecDeque::from([Frame::data(Bytes::from_static(b"ab"))]);
        let mut body =
            ResponseBody::<Stream>::replay(prefix, Some(std::io::Error::other("reset")), None);
        assert_eq!(
            body.frame().await.unwrap().unwrap().into_data().unwrap(),
            "ab"
        );
        assert!(body.frame().await.unwrap().is_err());
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[test]
    fn bodies_of_send_bodies_are_send() {
        fn is_send<T: Send>() {}
        is_send::<ResponseBody<Full<Bytes>>>();
    }
}
