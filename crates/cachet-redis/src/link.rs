//! The connection to Redis: commands with a deadline, whether the tier is
//! up, and the background work that (re)connects it.
//!
//! `ConnectionManager::new` fails while Redis is down, so connecting runs
//! here, in a loop on the tier's own runtime. Until it succeeds — and after
//! a connection error, until a `PING` answers again — the tier counts as
//! down: commands fail at once (a miss, or memory only) instead of making
//! every request wait for a deadline.

use crate::config::{redacted, RedisConfig};
use cachet_core::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Deadlines in a row after which the tier counts as down (a Redis that
/// hangs should not cost every request a deadline).
const TIMEOUTS_TO_DOWN: u64 = 3;

/// How often a down tier is probed.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// At most one warning per this long; the others are counted in the next.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
    up: AtomicBool,
    timeouts_in_a_row: AtomicU64,
    /// Whether the invalidation channel is subscribed.
    pub(crate) listening: AtomicBool,
    last_error: Mutex<Option<String>>,
    wake: Notify,
    pub(crate) connect_timeout: Duration,
    command_timeout: Duration,
    warnings: Warnings,
    url: String,
    pub(crate) counts: Counts,
}

/// What the tier did, for tests and operators.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

impl Link {
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        Ok(Self {
            client: redis::Client::open(config.url.as_str())?,
            manager: Mutex::new(None),
            up: AtomicBool::new(false),
            timeouts_in_a_row: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            last_error: Mutex::new(Some("not connected yet".into())),
            wake: Notify::new(),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            warnings: Warnings::default(),
            url: redacted(&config.url),
            counts: Counts::default(),
        })
    }

    /// Whether commands are sent.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Why the tier is not fully working, if it is not.
    pub(crate) fn degraded(&self) -> Option<String> {
        let error = || {
            self.last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "unknown error".into())
        };
        if !self.is_up() {
            return Some(format!("redis at {}: down: {}", self.url, error()));
        }
        if !self.listening.load(Ordering::Acquire) {
            return Some(format!(
                "redis at {}: the invalidation channel is down: {}",
                self.url,
                error()
            ));
        }
        None
    }

    /// Runs `command`, or fails at once while the tier is down.
    pub(crate) async fn cmd<T: FromRedisValue>(
        &self,
        what: &'static str,
        command: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let Some(mut connection) = self.connection() else {
            return Err(self.skipped(what));
        };
        let result =
            tokio::time::timeout(self.command_timeout, command.query_async(&mut connection)).await;
        self.settle(what, result)
    }

    /// Runs `pipeline`, or fails at once while the tier is down.
    pub(crate) async fn pipe<T: FromRedisValue>(
        &self,
        what: &'static str,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let Some(mut connection) = self.connection() else {
            return Err(self.skipped(what));
        };
        let result =
            tokio::time::timeout(self.command_timeout, pipeline.query_async(&mut connection)).await;
        self.settle(what, result)
    }

    fn skipped(&self, what: &str) -> StoreError {
        StoreError::new(format!("redis at {}: down; {what} skipped", self.url))
    }

    /// Counts and reports how a command ended.
    fn settle<T>(
        &self,
        what: &str,
        result: Result<Result<T, RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(Ok(value)) => {
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Ok(Err(error)) => {
                self.counts.errors.fetch_add(1, Ordering::Relaxed);
                let message = format!("redis at {}: {what}: {error}", self.url);
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                {
                    self.down(&format!("{what}: {error}"));
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
            Err(_) => {
                self.counts.timeouts.fetch_add(1, Ordering::Relaxed);
                let message = format!(
                    "redis at {}: {what} took longer than {:?}; read as a miss",
                    self.url, self.command_timeout
                );
                if self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_TO_DOWN {
                    self.down(&format!(
                        "{TIMEOUTS_TO_DOWN} commands in a row took too long"
                    ));
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
        }
    }

    fn connection(&self) -> Option<ConnectionManager> {
        if !self.is_up() {
            return None;
        }
        self.manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the tier down (`why` without the address: `degraded` adds it)
    /// and wakes the loop that brings it back.
    pub(crate) fn down(&self, why: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(redis = %self.url, why, "the Redis tier is down; serving from memory and the origin");
        }
        self.wake.notify_one();
    }

    /// Records why the invalidation channel is down.
    pub(crate) fn channel_down(&self, why: &str) {
        self.listening.store(false, Ordering::Release);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
    }

    /// A warning, at most one per [`WARN_EVERY`] (the rest are counted).
    pub(crate) fn warn(&self, message: &str) {
        if let Some(suppressed) = self.warnings.admit() {
            tracing::warn!(suppressed, "{message}");
        }
    }

    /// Connects, then keeps the tier up: probes it with `PING` whenever a
    /// command found it down. Runs until the tier is dropped.
    pub(crate) async fn keep_connected(self: Arc<Self>) {
        let mut delay = Duration::from_millis(50);
        loop {
            let manager = self
                .manager
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let result = match manager {
                None => self.connect().await,
                Some(mut manager) if !self.is_up() => {
                    match tokio::time::timeout(
                        self.connect_timeout,
                        redis::cmd("PING").query_async::<String>(&mut manager),
                    )
                    .await
                    {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(_) => Err("PING took too long".into()),
                    }
                }
                Some(_) => {
                    self.wake.notified().await;
                    continue;
                }
            };
            match result {
                Ok(()) => {
                    self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                    if !self.up.swap(true, Ordering::AcqRel) {
                        tracing::info!(redis = %self.url, "the Redis tier is up");
                    }
                    delay = Duration::from_millis(50);
                }
                Err(error) => {
                    self.warn(&format!("redis at {}: {error}", self.url));
                    *self
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(PROBE_EVERY);
                }
            }
        }
    }

    async fn connect(&self) -> Result<(), String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(PROBE_EVERY);
        let connecting = ConnectionManager::new_with_config(self.client.clone(), config);
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(manager)) => {
                *self.manager.lock().unwrap_or_else(PoisonError::into_inner) = Some(manager);
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "connecting took longer than {:?}",
                self.connect_timeout
            )),
        }
    }
}

#[derive(Debug, Default)]
struct Warnings {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Warnings {
    /// `Some(how many were suppressed since the last one)` when a warning
    /// may be logged now.
    fn admit(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_bounded() {
        let warnings = Warnings::default();
        assert_eq!(warnings.admit(), Some(0));
        for _ in 0..100 {
            assert_eq!(warnings.admit(), None);
        }
        assert_eq!(warnings.suppressed.load(Ordering::Relaxed), 100);
    }

    #[tokio::test]
    async fn a_tier_that_never_connected_fails_at_once() {
        let link = Link::new(&RedisConfig::new("redis://127.0.0.1:1/0")).unwrap();
        let error = link
            .cmd::<Option<Vec<u8>>>("GET", &redis::cmd("GET"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("down"), "{error}");
        assert!(link.degraded().unwrap().contains("not connected yet"));
        assert_eq!(link.counts.timeouts.load(Ordering::Relaxed), 0);
    }
}
