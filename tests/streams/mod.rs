//! An origin that streams what the test sends it, without a length.

#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::StreamBody;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const BOUND: Duration = Duration::from_secs(120);
pub const CHUNK: usize = 64 * 1024;

pub type Chunk = Result<Frame<Bytes>, std::io::Error>;
pub type Streamed = StreamBody<futures_util::stream::BoxStream<'static, Chunk>>;

/// An origin whose each response streams what the test sends on a channel
/// (no `Content-Length`); the test gets the sending end of each call.
pub fn channel_origin(
    calls: Arc<AtomicUsize>,
) -> (
    impl tower::Service<
            Request<Body>,
            Response = Response<Streamed>,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone
        + Send,
    mpsc::UnboundedReceiver<mpsc::Sender<Chunk>>,
) {
    let (senders, new_calls) = mpsc::unbounded_channel();
    let origin = tower::service_fn(move |_req: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        // A small channel: the origin cannot run far ahead of the client.
        let (tx, rx) = mpsc::channel::<Chunk>(2);
        senders.send(tx).unwrap();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let body =
            StreamBody::new(Box::pin(stream) as futures_util::stream::BoxStream<'static, Chunk>);
        async move { Ok(Response::new(body)) }
    });
    (origin, new_calls)
}

pub fn cache() -> cachet::Cache {
    cachet::Cache::from_toml("[[rules]]\npath = '^/api/'\nttl = \"60s\"\nmax_body = \"1MiB\"\n")
        .unwrap()
}
