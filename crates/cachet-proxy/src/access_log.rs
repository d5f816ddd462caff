//! The access log: one line per request on stdout, formatted on the
//! request's thread and written by a thread of its own, so that a request
//! never waits for a write.
//!
//! ```text
//! Mon, 07 Dec 2026 10:00:00 GMT 127.0.0.1:50312 "GET /api/items" 200 "cachet; hit; ttl=3599" 41us
//! ```
//!
//! It is on when `RUST_LOG` enables `cachet_proxy::access` at `info` as
//! the proxy starts (the binary's default;
//! `RUST_LOG=info,cachet_proxy::access=off` turns it off).
//!
//! Lines gather in one buffer and go out in one write when 64 KiB have
//! gathered or the first of them has waited 100 ms, as nginx's
//! `access_log … buffer= flush=` does: what a request pays is formatting
//! its line and an uncontended lock, with no allocation, channel message or
//! wake-up of its own. Should 8 MiB ever wait unwritten (stdout blocked),
//! requests wait for room rather than lose lines.

use http::Method;
use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The target `RUST_LOG` filters the access log by.
pub(crate) const TARGET: &str = "cachet_proxy::access";

/// When waiting lines are written.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Lines are written once this many bytes have gathered…
    batch: usize,
    /// …or once the first of them has waited this long.
    delay: Duration,
    /// Requests wait while this many bytes are unwritten.
    max_waiting: usize,
}

const STDOUT_LIMITS: Limits = Limits {
    batch: 64 * 1024,
    delay: Duration::from_millis(100),
    max_waiting: 8 * 1024 * 1024,
};

/// Where access lines go; dropping it writes what is waiting.
#[derive(Debug)]
pub(crate) struct AccessLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// One request's line.
pub(crate) struct Line<'a> {
    /// The client's address, `ip:port` as `SocketAddr` displays it.
    pub remote: &'a str,
    pub method: &'a Method,
    pub path: &'a str,
    pub status: u16,
    pub cache_status: &'a str,
    /// When the request arrived: the line says how long its answer took.
    pub started: Instant,
}

/// A thread's line buffer, and the date it last wrote with the moment
/// that date ends (it changes once a second; formatting it is most of a
/// line's cost).
struct Stamp {
    buffer: Vec<u8>,
    date: String,
    until: Option<Instant>,
}

thread_local! {
    static BUFFER: RefCell<Stamp> = const {
        RefCell::new(Stamp {
            buffer: Vec::new(),
            date: String::new(),
            until: None,
        })
    };
}

impl AccessLog {
    /// A log writing to stdout, from a thread of its own.
    pub(crate) fn stdout() -> Self {
        Self::to(
            || {
                let stdout = std::io::stdout();
                // Each write holds whole lines and the lock, so other
                // output on stdout never splits one.
                move |lines: &[u8]| {
                    let mut stdout = stdout.lock();
                    let _ = stdout.write_all(lines).and_then(|()| stdout.flush());
                }
            },
            STDOUT_LIMITS,
        )
    }

    /// A log handing its batches to the sink `make` returns, on the
    /// writer thread.
    fn to<F, W>(make: F, limits: Limits) -> Self
    where
        F: FnOnce() -> W,
        W: FnMut(&[u8]) + Send + 'static,
    {
        let shared = Arc::new(Shared {
            limits,
            waiting: Mutex::default(),
            wake: Condvar::new(),
            room: Condvar::new(),
        });
        let sink = make();
        let writer = std::thread::Builder::new()
            .name("cachet-proxy-access-log".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.write_batches(sink)
            })
            .expect("spawning the access log's writer thread");
        Self {
            shared,
            writer: Some(writer),
        }
    }

    /// Whether lines are to be written (`RUST_LOG`).
    pub(crate) fn enabled() -> bool {
        tracing::enabled!(target: TARGET, tracing::Level::INFO)
    }

    /// Writes `line`, stamped with the current second. One monotonic
    /// clock reading gives the time taken and whether the second changed;
    /// the wall clock is read once a second.
    pub(crate) fn write(&self, line: &Line<'_>) {
        BUFFER.with_borrow_mut(|stamp| {
            let now = Instant::now();
            if stamp.until.is_none_or(|until| now >= until) {
                let wall = SystemTime::now();
                let into_second = wall
                    .duration_since(UNIX_EPOCH)
                    .map_or(Duration::ZERO, |since| {
                        Duration::from_nanos(u64::from(since.subsec_nanos()))
                    });
                stamp.date = httpdate::fmt_http_date(wall);
                stamp.until = Some(now + (Duration::from_secs(1) - into_second));
            }
            let elapsed = now.saturating_duration_since(line.started);
            render(&mut stamp.buffer, &stamp.date, line, elapsed);
            self.shared.push(&stamp.buffer);
        });
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// What the requests and the writer thread share.
#[derive(Debug)]
struct Shared {
    limits: Limits,
    waiting: Mutex<Waiting>,
    /// The writer waits here for a first line, a full batch, or closing.
    wake: Condvar,
    /// Requests wait here while `max_waiting` bytes are unwritten.
    room: Condvar,
}

#[derive(Debug, Default)]
struct Waiting {
    lines: Vec<u8>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `line`. The writer is woken only for a first line (it then
    /// waits out the delay) and when a batch fills: not once a line.
    fn push(&self, line: &[u8]) {
        let mut waiting = self.lock();
        while waiting.lines.len() >= self.limits.max_waiting {
            waiting = self
                .room
                .wait(waiting)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let before = waiting.lines.len();
        waiting.lines.extend_from_slice(line);
        let after = waiting.lines.len();
        drop(waiting);
        if before == 0 || (before < self.limits.batch && after >= self.limits.batch) {
            self.wake.notify_one();
        }
    }

    /// The writer thread: waits for lines, lets a batch gather, writes it,
    /// until the log is closed and nothing waits.
    fn write_batches(&self, mut sink: impl FnMut(&[u8])) {
        let mut batch = Vec::new();
        loop {
            let mut waiting = self.lock();
            while waiting.lines.is_empty() && !waiting.closed {
                waiting = self
                    .wake
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let deadline = Instant::now() + self.limits.delay;
            while waiting.lines.len() < self.limits.batch && !waiting.closed {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                waiting = self
                    .wake
                    .wait_timeout(waiting, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut waiting.lines, &mut batch);
            let closed = waiting.closed;
            drop(waiting);
            self.room.notify_all();
            if !batch.is_empty() {
                sink(&batch);
            }
            batch.clear();
            // A stall may have grown it to `max_waiting`: give that back.
            batch.shrink_to(2 * self.limits.batch);
            // Nothing is written once the log is closed: its last owner
            // dropped it.
            if closed {
                return;
            }
        }
    }
}

/// `line` stamped with `date`, its answer `elapsed` after it arrived, in
/// place of what `buffer` held. Written by hand: `fmt` machinery was
/// most of a line's cost (the client's address comes as text, written
/// once for its connection).
fn render(buffer: &mut Vec<u8>, date: &str, line: &Line<'_>, elapsed: Duration) {
    let mut number = itoa::Buffer::new();
    buffer.clear();
    buffer.extend_from_slice(date.as_bytes());
    buffer.push(b' ');
    buffer.extend_from_slice(line.remote.as_bytes());
    buffer.extend_from_slice(b" \"");
    buffer.extend_from_slice(line.method.as_str().as_bytes());
    buffer.push(b' ');
    buffer.extend_from_slice(line.path.as_bytes());
    buffer.extend_from_slice(b"\" ");
    buffer.extend_from_slice(number.format(line.status).as_bytes());
    buffer.extend_from_slice(b" \"");
    buffer.extend_from_slice(line.cache_status.as_bytes());
    buffer.extend_from_slice(b"\" ");
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    buffer.extend_from_slice(number.format(micros).as_bytes());
    buffer.extend_from_slice(b"us\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn line_from(remote: &'static str) -> Line<'static> {
        Line {
            remote,
            method: &Method::GET,
            path: "/api/items",
            status: 200,
            cache_status: "cachet; hit; ttl=3599",
            started: Instant::now(),
        }
    }

    fn rendered(line: &Line<'_>) -> String {
        let mut buffer = b"the last line".to_vec();
        render(
            &mut buffer,
            "Mon, 07 Dec 2026 10:00:00 GMT",
            line,
            Duration::from_micros(41),
        );
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn a_line_names_the_request_its_answer_and_its_time() {
        assert_eq!(
            rendered(&line_from("127.0.0.1:50312")),
            "Mon, 07 Dec 2026 10:00:00 GMT 127.0.0.1:50312 \"GET /api/items\" 200 \"cachet; hit; ttl=3599\" 41us\n"
        );
    }

    /// A sink sending each batch to the test.
    fn sink() -> (impl FnMut(&[u8]) + Send + 'static, mpsc::Receiver<Vec<u8>>) {
        let (send, batches) = mpsc::channel();
        (move |batch: &[u8]| drop(send.send(batch.to_vec())), batches)
    }

    #[test]
    fn lines_go_out_in_order_in_batches_and_all_of_them_on_drop() {
        let (write, batches) = sink();
        let limits = Limits {
            batch: 1024,
            delay: Duration::from_secs(3600),
            max_waiting: 1 << 20,
        };
        let log = AccessLog::to(|| write, limits);
        let lines: Vec<String> = (0..300).map(|i| format!("line {i}\n")).collect();
        for line in &lines {
            log.shared.push(line.as_bytes());
        }
        drop(log);
        let written: Vec<Vec<u8>> = batches.iter().collect();
        assert!(written.len() < lines.len(), "{} writes", written.len());
        assert_eq!(written.concat(), lines.concat().into_bytes());
    }

    #[test]
    fn lines_are_stamped_with_the_current_second_and_their_time() {
        let (write, batches) = sink();
        let limits = Limits {
            batch: 1 << 20,
            delay: Duration::from_secs(3600),
            max_waiting: 1 << 20,
        };
        let log = AccessLog::to(|| write, limits);
        let before = SystemTime::now();
        let mut line = line_from("127.0.0.1:1");
        line.started = Instant::now() - Duration::from_millis(1500);
        log.write(&line);
        log.write(&line);
        drop(log);
        let after = SystemTime::now();
        let text = String::from_utf8(batches.iter().collect::<Vec<_>>().concat()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            let date = httpdate::parse_http_date(&line[..29]).unwrap();
            let second = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap().as_secs();
            assert!(
                second(before) <= second(date) && second(date) <= second(after),
                "{line}"
            );
            let micros: u64 = line
                .rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches("us")
                .parse()
                .unwrap();
            assert!((1_500_000..60_000_000).contains(&micros), "{line}");
        }
    }

    #[test]
    fn a_lone_line_goes_out_after_the_delay() {
        let (write, batches) = sink();
        let limits = Limits {
            batch: 1024,
            delay: Duration::from_millis(10),
            max_waiting: 1 << 20,
        };
        let log = AccessLog::to(|| write, limits);
        log.shared.push(b"alone\n");
        let batch = batches.recv_timeout(Duration::from_secs(2));
        assert_eq!(batch.as_deref(), Ok(&b"alone\n"[..]));
        drop(log);
    }

    #[test]
    fn a_blocked_sink_makes_requests_wait_and_loses_nothing() {
        let (release, released) = mpsc::channel::<()>();
        let (write, batches) = sink();
        let mut write = write;
        // The sink blocks on its first batch until the test says so.
        let mut first = true;
        let blocking = move |batch: &[u8]| {
            if std::mem::take(&mut first) {
                released.recv().unwrap();
            }
            write(batch);
        };
        let limits = Limits {
            batch: 8,
            delay: Duration::ZERO,
            max_waiting: 32,
        };
        let log = Arc::new(AccessLog::to(|| blocking, limits));
        let lines: Vec<String> = (0..50).map(|i| format!("{i:03}\n")).collect();
        let pusher = std::thread::spawn({
            let (log, lines) = (Arc::clone(&log), lines.clone());
            move || {
                lines
                    .iter()
                    .for_each(|line| log.shared.push(line.as_bytes()))
            }
        });
        // The pusher fills the buffer and then waits for room.
        while log.shared.lock().lines.len() < limits.max_waiting {
            std::thread::yield_now();
        }
        assert!(!pusher.is_finished());
        assert!(log.shared.lock().lines.len() < limits.max_waiting + 4);
        release.send(()).unwrap();
        pusher.join().unwrap();
        drop(Arc::into_inner(log).unwrap());
        assert_eq!(
            batches.iter().collect::<Vec<_>>().concat(),
            lines.concat().into_bytes()
        );
    }
}
