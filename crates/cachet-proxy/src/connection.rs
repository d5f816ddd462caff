//! Bounds on client connections where hyper has none: a connection that
//! sends nothing (the HTTP version sniff waits forever) and an idle
//! keep-alive connection are closed after a while. hyper's own
//! `header_read_timeout` covers a request head that starts but never ends.
//!
//! [`Watched`] wraps the socket and notes the time of every byte read or
//! written; [`Activity::idle`] resolves once the connection has been silent
//! too long with no request waiting for its response.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// What a connection has done lately.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last byte read or written.
    last: AtomicU64,
    /// Whether the client has sent a byte yet.
    received: AtomicU64,
    /// Requests whose response head is not sent yet.
    in_flight: AtomicUsize,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            last: AtomicU64::new(0),
            received: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    /// Marks a request as waiting for its response until the guard drops:
    /// the connection is not idle meanwhile, however slow the upstream.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves once the connection has been silent for `first_byte` before
    /// its first byte, or for `idle` after it, with no request in flight.
    pub(crate) async fn idle(&self, first_byte: Duration, idle: Duration) {
        loop {
            let limit = if self.received.load(Ordering::Relaxed) == 0 {
                first_byte
            } else {
                idle
            };
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let silent = last.elapsed();
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            if silent >= limit && !busy {
                return;
            }
            // Busy connections are looked at again after a full period.
            let wait = if busy { limit } else { limit - silent };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

/// A request in flight on a connection; see [`Activity::request`].
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that reports its reads and writes to an [`Activity`].
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
        if buf.filled().len() > before {
            self.activity.received.store(1, Ordering::Relaxed);
            self.activity.touch();
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
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
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
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_without_a_request_in_flight_is_idleness() {
        let activity = Activity::new();
        let idle = activity.idle(Duration::from_secs(1), Duration::from_secs(5));
        let started = Instant::now();
        idle.await;
        assert_eq!(
            started.elapsed().as_secs(),
            1,
            "no first byte: the short limit"
        );

        activity.received.store(1, Ordering::Relaxed);
        activity.touch();
        let request = activity.request();
        let idle = activity.idle(Duration::from_secs(1), Duration::from_secs(5));
        tokio::pin!(idle);
        let waited = tokio::time::timeout(Duration::from_secs(30), &mut idle).await;
        assert!(waited.is_err(), "a request in flight keeps it open");
        drop(request);
        let started = Instant::now();
        idle.await;
        assert!(started.elapsed() >= Duration::from_secs(5));
    }
}
