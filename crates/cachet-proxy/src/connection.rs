//! Bounds on client connections where hyper has none: a connection that
//! sends nothing (the HTTP version sniff waits forever) and an idle
//! keep-alive connection are closed after a while. hyper's own
//! `header_read_timeout` covers a request head that starts but never ends.
//!
//! [`Watched`] wraps the socket and counts its reads and writes (an atomic
//! add, no clock read); [`Activity::idle`] wakes once a period and resolves
//! when a whole period passed with neither a byte nor a request waiting for
//! its response — so a silent connection goes within one to two periods.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a connection has done lately.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Reads and writes that moved bytes, and requests answered.
    events: AtomicU64,
    /// Whether the client has sent a byte yet.
    received: AtomicBool,
    /// Requests whose response head is not sent yet.
    in_flight: AtomicUsize,
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
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves once the connection has been silent, with no request in
    /// flight, for a whole period: `first_byte` before its first byte,
    /// `idle` after it.
    pub(crate) async fn idle(&self, first_byte: Duration, idle: Duration) {
        let mut seen = self.events.load(Ordering::Relaxed);
        loop {
            let period = if self.received.load(Ordering::Relaxed) {
                idle
            } else {
                first_byte
            };
            tokio::time::sleep(period).await;
            let now = self.events.load(Ordering::Relaxed);
            if now == seen && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            seen = now;
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
            self.activity.received.store(true, Ordering::Relaxed);
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

/// The next connection from `listener` once one of `slots` is free (so at
/// most that many are served at once), with the slot to drop when it ends;
/// `None` once `shutdown` completes. A failed accept is logged and retried.
pub(crate) async fn accept<F: Future<Output = ()>>(
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
            waited >= Duration::from_secs(5) && waited <= Duration::from_secs(10),
            "{waited:?}"
        );
    }
}
