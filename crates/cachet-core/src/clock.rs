//! Time as the cache sees it: an injectable [`Clock`], so tests move time
//! forward instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current wall-clock time.
///
/// Every freshness and expiry decision in cachet reads time through this trait.
/// Production code uses [`SystemClock`]; tests use [`MockClock`] and advance it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The longest duration cachet computes with: 2^31 seconds (about 68
/// years). RFC 9111 §1.2.2 has caches treat larger delta-seconds, and any
/// calculation that overflows, as this value.
pub(crate) const MAX_DELTA: Duration = Duration::from_secs(1 << 31);

/// `time + span`, saturating: spans are capped at [`MAX_DELTA`], and a sum
/// the platform cannot represent stays at `time + MAX_DELTA` or `time`.
/// Directives and dates come from origins and clients, so time arithmetic
/// must never panic on them.
pub(crate) fn later(time: SystemTime, span: Duration) -> SystemTime {
    time.checked_add(span.min(MAX_DELTA))
        .or_else(|| time.checked_add(MAX_DELTA))
        .unwrap_or(time)
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use cachet_core::clock::{Clock, MockClock};
/// use std::time::Duration;
///
/// let clock = MockClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().duration_since(start).unwrap(), Duration::from_secs(90));
/// ```
#[derive(Debug, Clone)]
pub struct MockClock {
    // Milliseconds since the Unix epoch.
    millis: Arc<AtomicU64>,
}

impl MockClock {
    /// A mock clock starting at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }

    /// A mock clock starting at `time` (rounded down to the millisecond).
    pub fn at(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self {
            millis: Arc::new(AtomicU64::new(u64::try_from(millis).unwrap_or(u64::MAX))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(by, Ordering::SeqCst);
    }
}

impl Default for MockClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MockClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// A shared handle to a clock.
pub(crate) type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_saturates_instead_of_panicking() {
        let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(later(now, Duration::MAX), now + MAX_DELTA);
        assert_eq!(later(now, Duration::from_secs(u64::MAX)), now + MAX_DELTA);
    }
}
