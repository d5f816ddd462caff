//! Every listener the proxy opens — the proxied port and the admin
//! listener — serves its connections here, under one [`Policy`]: a
//! connection cap, header limits, hyper's header-read timeout for a request
//! head that starts but never ends, and where hyper has none, a first-byte
//! timeout (the HTTP version sniff waits forever) and an idle timeout for
//! HTTP/1 keep-alive and for HTTP/2 connections with no stream open.
//!
//! One watcher per connection ([`Activity::idle`]) keeps all three. hyper
//! arms its header-read timer for every request head; a Tokio timer would
//! put an entry in the timer wheel and take it out again for each request
//! (7% of the proxy's instructions for a hit, `docs/benchmarks.md`). So the
//! timer hyper is given ([`HeadTimer`]) only notes its deadline, and the
//! watcher, on rounds every half of `header_read_timeout`, wakes the
//! connection once it has passed: a head that never ends is cut off
//! within one and a half of the timeout.
//!
//! Idleness is measured in HTTP progress, not in bytes: a request
//! starting or being answered, or a frame of a response body going out.
//! HTTP/2 PINGs, SETTINGS and WINDOW_UPDATEs, which a client can send
//! forever with no stream open, do not keep a connection. [`Activity::idle`]
//! resolves once a whole period passed with no progress and no request
//! waiting for its response — so a silent connection goes within one
//! period and a round.

use crate::config::ProxyConfig;
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many header fields hyper parses when not told (its
/// `DEFAULT_MAX_HEADERS`), the proxy's default too.
const HYPER_MAX_HEADERS: usize = 100;

/// What bounds each connection of a listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// How long a client may take to send its first byte, and then a
    /// request head (HTTP/1).
    pub(crate) header_read_timeout: Duration,
    /// How long a connection may go without HTTP progress.
    pub(crate) idle_timeout: Duration,
    /// How many connections are served at once; more wait to be accepted.
    pub(crate) max_connections: usize,
    /// The largest request head, in bytes (HTTP/1 read buffer, HTTP/2
    /// header list).
    pub(crate) max_header_bytes: usize,
    /// How many header fields a request may have (HTTP/1).
    pub(crate) max_headers: usize,
    /// How long in-flight requests may take to finish on shutdown.
    pub(crate) shutdown_timeout: Duration,
}

impl Policy {
    /// The proxied port's bounds, from `[proxy]`.
    pub(crate) fn of(config: &ProxyConfig) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
            shutdown_timeout: config.shutdown_timeout,
        }
    }

    /// The same bounds with at most `max` connections.
    pub(crate) fn at_most(self, max: usize) -> Self {
        Self {
            max_connections: self.max_connections.min(max),
            ..self
        }
    }

    /// The connection builder, its HTTP/1 header-read timer set per
    /// connection ([`HeadTimer`]).
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes);
        // hyper's own limit is 100 on the stack; setting any limit makes it
        // fill a vector of that many slots for every request head.
        if self.max_headers != HYPER_MAX_HEADERS {
            builder.http1().max_headers(self.max_headers);
        }
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX));
        builder
    }
}

/// Serves connections from `listener` under `policy` until `shutdown`
/// completes, each with the service `make` returns for its client's
/// address; then stops accepting and lets in-flight requests finish (for
/// at most `shutdown_timeout`). `name` says which listener in logs.
pub(crate) async fn serve<M, S, B>(
    listener: TcpListener,
    policy: Policy,
    make: M,
    shutdown: impl Future<Output = ()>,
    name: &'static str,
) where
    M: Fn(SocketAddr) -> S,
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = policy.builder();
    let slots = Arc::new(Semaphore::new(policy.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    // At most `max_connections` at once: the next accept waits for a slot.
    while let Some((stream, remote, slot)) = accept(&listener, &slots, &mut shutdown).await {
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let mut builder = builder.clone();
        builder.http1().timer(HeadTimer(Arc::clone(&activity)));
        let service = Tracked {
            inner: make(remote),
            activity: Arc::clone(&activity),
        };
        let io = TokioIo::new(Watched::new(stream, Arc::clone(&activity)));
        let connection = builder
            .serve_connection(io, TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        // The connection runs in a task of its own, and its watcher in
        // another that cancels it: the connection's task is woken for
        // every read and write, and a watcher polled with it would be
        // polled each time.
        let serving = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, listener = name, "connection ended with an error");
            }
            drop(slot);
        });
        let cancel = serving.abort_handle();
        tokio::spawn(async move {
            let idle = activity.idle(policy.header_read_timeout, policy.idle_timeout);
            tokio::select! {
                biased;
                _ = serving => {}
                () = idle => {
                    tracing::debug!(%remote, listener = name, "closed a silent connection");
                    cancel.abort();
                }
            }
        });
    }
    drop(listener);
    tracing::info!(
        listener = name,
        "shutting down: finishing in-flight requests"
    );
    if tokio::time::timeout(policy.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = name, timeout = ?policy.shutdown_timeout, "in-flight requests cut off at shutdown");
    }
}

/// What a connection has done lately.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests started and answered, and response body frames sent.
    events: AtomicU64,
    /// Whether the client has sent a byte yet.
    received: AtomicBool,
    /// Requests whose response head is not sent yet.
    in_flight: AtomicUsize,
    /// The head hyper is reading ([`HeadTimer`]).
    head: Mutex<HeadWait>,
}

/// When the head hyper is reading must have arrived, and the connection's
/// task to wake then.
#[derive(Debug, Default)]
struct HeadWait {
    deadline: Option<Instant>,
    waker: Option<Waker>,
    /// The watcher found `deadline` passed.
    overdue: bool,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    fn touch(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a request as waiting for its response until the guard drops:
    /// the connection is not idle meanwhile, however slow the upstream.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.touch();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Some(Arc::clone(self)))
    }

    /// A request's response head is ready (or it was dropped).
    fn answered(&self) {
        self.touch();
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Resolves once the connection has made no progress, with no request
    /// in flight, for a whole period: `header_read` before its first byte,
    /// `idle` after it. It looks every half of `header_read`, and then also
    /// wakes the connection if the head hyper is reading is overdue (hyper
    /// then ends the connection with its header-read timeout error).
    pub(crate) async fn idle(&self, header_read: Duration, idle: Duration) {
        let round = (header_read / 2).max(MIN_ROUND);
        let mut seen = self.events.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(round).await;
            self.wake_overdue_head();
            let now = self.events.load(Ordering::Relaxed);
            if now != seen || self.in_flight.load(Ordering::Relaxed) > 0 {
                seen = now;
                quiet = Duration::ZERO;
                continue;
            }
            quiet += round;
            let period = if self.received.load(Ordering::Relaxed) {
                idle
            } else {
                header_read
            };
            if quiet >= period {
                return;
            }
        }
    }

    fn head(&self) -> MutexGuard<'_, HeadWait> {
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_overdue_head(&self) {
        let mut head = self.head();
        if head.deadline.is_some_and(|deadline| deadline <= now()) {
            head.overdue = true;
            if let Some(waker) = head.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The shortest round of a connection's watcher.
const MIN_ROUND: Duration = Duration::from_millis(100);

/// hyper's HTTP/1 header-read timer for one connection: its sleeps note
/// their deadline in the connection's [`Activity`], whose watcher wakes
/// the connection once it has passed.
#[derive(Debug, Clone)]
struct HeadTimer(Arc<Activity>);

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(now() + duration)
    }

    fn now(&self) -> Instant {
        now()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            deadline,
            activity: Arc::clone(&self.0),
        })
    }
}

/// One request head's deadline; see [`HeadTimer`].
#[derive(Debug)]
struct HeadSleep {
    deadline: Instant,
    activity: Arc<Activity>,
}

impl Future for HeadSleep {
    type Output = ();

    /// Ready once the watcher found this deadline (or a later one) passed;
    /// no clock is read here, on every request's path.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut head = self.activity.head();
        if head.overdue && head.deadline.is_some_and(|passed| self.deadline <= passed) {
            return Poll::Ready(());
        }
        head.deadline = Some(self.deadline);
        head.overdue = false;
        match &mut head.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => head.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// Tokio's clock (the test clock when paused), as hyper's timers read time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A request in flight on a connection; see [`Activity::request`].
#[derive(Debug)]
pub(crate) struct InFlight(Option<Arc<Activity>>);

impl InFlight {
    /// The request answered: its connection's activity, for the body.
    fn answered(mut self) -> Arc<Activity> {
        let activity = self.0.take().expect("taken once, here");
        activity.answered();
        activity
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(activity) = &self.0 {
            activity.answered();
        }
    }
}

/// A connection's service, reporting its requests and their response
/// bodies' frames to the connection's [`Activity`].
#[derive(Debug, Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> tower::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        TrackedFuture {
            in_flight: Some(self.activity.request()),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's response on its way: in flight until its head is ready
    /// (not boxed: every request on every listener goes through it).
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<TrackedBody<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let activity = this
            .in_flight
            .take()
            .expect("polled after it was ready")
            .answered();
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, activity })))
    }
}

pin_project_lite::pin_project! {
    /// A response body whose frames count as the connection's progress.
    struct TrackedBody<B> {
        #[pin]
        body: B,
        activity: Arc<Activity>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if polled.is_ready() {
            this.activity.touch();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket that tells its [`Activity`] when the client's first byte
/// arrives.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, activity: Arc<Activity>) -> Self {
        Self { io, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && !self.activity.received.load(Ordering::Relaxed) {
            self.activity.received.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The next connection from `listener` once one of `slots` is free (so at
/// most that many are served at once), with the slot to drop when it ends;
/// `None` once `shutdown` completes. A failed accept is logged and retried.
async fn accept<F: Future<Output = ()>>(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &mut Pin<&mut F>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = tokio::select! {
        slot = Arc::clone(slots).acquire_owned() => slot.ok()?,
        () = shutdown.as_mut() => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => return Some((stream, remote, slot)),
                Err(error) => tracing::warn!(%error, "accept failed"),
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn silence_without_a_request_in_flight_is_idleness() {
        let activity = Activity::new();
        let started = Instant::now();
        activity
            .idle(Duration::from_secs(1), Duration::from_secs(5))
            .await;
        assert_eq!(
            started.elapsed().as_secs(),
            1,
            "no first byte: the short period"
        );

        activity.received.store(true, Ordering::Relaxed);
        let request = activity.request();
        let idle = activity.idle(Duration::from_secs(1), Duration::from_secs(5));
        tokio::pin!(idle);
        let waited = tokio::time::timeout(Duration::from_secs(30), &mut idle).await;
        assert!(waited.is_err(), "a request in flight keeps it open");
        drop(request);
        let started = Instant::now();
        idle.await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited <= Duration::from_millis(5500),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_overdue_head_is_woken_by_the_watcher_within_half_the_timeout() {
        use hyper::rt::Timer as _;
        let activity = Activity::new();
        activity.received.store(true, Ordering::Relaxed);
        let watcher = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move {
                activity
                    .idle(Duration::from_secs(10), Duration::from_secs(3600))
                    .await;
            }
        });
        let timer = HeadTimer(Arc::clone(&activity));
        let started = Instant::now();
        // Like hyper: armed, polled while the head is awaited, and re-armed
        // for the next request.
        let mut sleep = timer.sleep(Duration::from_secs(10));
        let early = tokio::time::timeout(Duration::from_secs(9), &mut sleep).await;
        assert!(early.is_err(), "not before its deadline");
        timer.reset(&mut sleep, timer.now() + Duration::from_secs(10));
        sleep.await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(19) && waited <= Duration::from_secs(24),
            "{waited:?}"
        );
        assert!(activity.head().waker.is_none(), "the waker was handed over");
        watcher.abort();
    }
}
