//! The access log: one line per request on stdout, formatted on the
//! request's thread into a reused buffer and written by a thread of its
//! own, so that a request never waits for a write.
//!
//! ```text
//! Mon, 07 Dec 2026 10:00:00 GMT 127.0.0.1:50312 "GET /api/items" 200 "cachet; hit; ttl=3599" 41us
//! ```
//!
//! It is on when `RUST_LOG` enables `cachet_proxy::access` at `info` as
//! the proxy starts (the binary's default;
//! `RUST_LOG=info,cachet_proxy::access=off` turns it off). Lines are batched: one write each time the writer catches up.
//! Should 128,000 lines ever be waiting, requests wait for room rather
//! than lose lines.

use http::Method;
use std::cell::RefCell;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// The target `RUST_LOG` filters the access log by.
pub(crate) const TARGET: &str = "cachet_proxy::access";

/// Where access lines go; dropping it writes what is waiting.
#[derive(Debug)]
pub(crate) struct AccessLog {
    writer: NonBlocking,
    _guard: WorkerGuard,
}

/// One request's line.
pub(crate) struct Line<'a> {
    pub remote: SocketAddr,
    pub method: &'a Method,
    pub path: &'a str,
    pub status: u16,
    pub cache_status: &'a str,
    pub elapsed: Duration,
}

thread_local! {
    /// This thread's line buffer, and the date it last wrote (the date
    /// changes once a second; formatting it is most of a line's cost).
    static BUFFER: RefCell<(Vec<u8>, u64, String)> =
        const { RefCell::new((Vec::new(), u64::MAX, String::new())) };
}

impl AccessLog {
    /// A log writing to stdout, from a thread of its own.
    pub(crate) fn stdout() -> Self {
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(false)
            .thread_name("cachet-proxy-access-log")
            .finish(Batch::default());
        Self {
            writer,
            _guard: guard,
        }
    }

    /// Whether lines are to be written (`RUST_LOG`).
    pub(crate) fn enabled() -> bool {
        tracing::enabled!(target: TARGET, tracing::Level::INFO)
    }

    /// Writes `line`, stamped with the current second.
    pub(crate) fn write(&self, line: &Line<'_>) {
        BUFFER.with_borrow_mut(|(buffer, second, date)| {
            let now = SystemTime::now();
            let secs = now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            if secs != *second {
                *second = secs;
                *date = httpdate::fmt_http_date(now);
            }
            render(buffer, date, line);
            // The writer copies the line into its channel; a full channel
            // waits, a closed one (shutting down) drops it.
            let _ = self.writer.clone().write_all(buffer);
        });
    }
}

/// `line` stamped with `date`, in place of what `buffer` held.
fn render(buffer: &mut Vec<u8>, date: &str, line: &Line<'_>) {
    buffer.clear();
    let _ = writeln!(
        buffer,
        "{date} {} \"{} {}\" {} \"{}\" {}us",
        line.remote,
        line.method,
        line.path,
        line.status,
        line.cache_status,
        line.elapsed.as_micros()
    );
}

/// The log thread's writer: lines gather here and go to stdout in one
/// write when the thread has caught up (or 64 KiB have gathered). Each
/// write holds whole lines, so other output on stdout never splits one.
#[derive(Default)]
struct Batch {
    lines: Vec<u8>,
}

impl std::io::Write for Batch {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.lines.extend_from_slice(line);
        if self.lines.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        let written = stdout.write_all(&self.lines).and_then(|()| stdout.flush());
        self.lines.clear();
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_request_its_answer_and_its_time() {
        let line = Line {
            remote: "127.0.0.1:50312".parse().unwrap(),
            method: &Method::GET,
            path: "/api/items",
            status: 200,
            cache_status: "cachet; hit; ttl=3599",
            elapsed: Duration::from_micros(41),
        };
        let mut buffer = b"the last line".to_vec();
        render(&mut buffer, "Mon, 07 Dec 2026 10:00:00 GMT", &line);
        assert_eq!(
            std::str::from_utf8(&buffer).unwrap(),
            "Mon, 07 Dec 2026 10:00:00 GMT 127.0.0.1:50312 \"GET /api/items\" 200 \"cachet; hit; ttl=3599\" 41us\n"
        );
    }
}
