//! What every shared tier (Redis, Memcached) needs alike: the purges that
//! travel between instances, times as milliseconds since the epoch, and
//! warnings at a bounded rate.

use super::{CacheKey, MemoryStore, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A purge, as it travels from the instance that made it to every other
/// instance's memory.
///
/// ```
/// use cachet_core::store::tier::Purge;
///
/// let purge = Purge::Key { cache: "default".into(), key: "/a GET".into() };
/// assert_eq!(Purge::decode(&purge.encode(7)), Some((7, purge)));
/// assert_eq!(Purge::decode("not a purge"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    /// Drop `key` of `cache` from memory.
    Key {
        /// The named cache.
        cache: String,
        /// The entry's key.
        key: String,
    },
    /// Drop every entry of `cache` from memory.
    Clear {
        /// The named cache.
        cache: String,
    },
}

impl Purge {
    /// `from` (the sending instance), the kind, the cache and the key, one
    /// per line (a key never holds a line break: it comes from a request
    /// target and header values, and is last anyway).
    pub fn encode(&self, from: u64) -> String {
        match self {
            Self::Key { cache, key } => format!("{from:016x}\nkey\n{cache}\n{key}"),
            Self::Clear { cache } => format!("{from:016x}\nclear\n{cache}\n"),
        }
    }

    /// Drops what the purge names from `memory` (an instance's local tier).
    pub async fn apply(&self, memory: &MemoryStore) {
        // A cache `memory` does not know is nothing to drop.
        let _ = match self {
            Self::Key { cache, key } => memory
                .remove(cache, &CacheKey::from_raw(key.as_str()))
                .await
                .map(drop),
            Self::Clear { cache } => memory.clear(cache).await,
        };
    }

    /// The sender and the purge, or `None` for a message of another kind.
    pub fn decode(message: &str) -> Option<(u64, Self)> {
        let mut parts = message.splitn(4, '\n');
        let from = u64::from_str_radix(parts.next()?, 16).ok()?;
        let kind = parts.next()?;
        let cache = parts.next()?.to_owned();
        let rest = parts.next()?;
        let purge = match kind {
            "key" => Self::Key {
                cache,
                key: rest.to_owned(),
            },
            "clear" => Self::Clear { cache },
            _ => return None,
        };
        Some((from, purge))
    }
}

/// A number naming this instance among those sharing a tier (random per
/// process), so that it skips its own purges.
pub fn instance_id() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((std::process::id(), SystemTime::now()))
}

/// `time` as milliseconds since the Unix epoch (0 before it), the form
/// shared tiers store absolute times in.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Warnings at most once per period: a failing tier warns once, then
/// counts what it kept quiet until the next warning says how many.
#[derive(Debug)]
pub struct Warnings {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Default for Warnings {
    /// One warning per ten seconds.
    fn default() -> Self {
        Self::every(Duration::from_secs(10))
    }
}

impl Warnings {
    /// At most one warning per `every`.
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Logs `message` as a warning if one may be logged now, with how many
    /// were kept quiet since the last; counts it otherwise.
    pub fn warn(&self, message: &str) {
        if let Some(suppressed) = self.admit() {
            tracing::warn!(suppressed, "{message}");
        }
    }

    /// `Some(how many were suppressed since the last one)` when a warning
    /// may be logged now.
    fn admit(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.every) {
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
    fn purges_round_trip_and_garbage_is_ignored() {
        for purge in [
            Purge::Key {
                cache: "default".into(),
                key: "/a?b=1 GET u=00ff".into(),
            },
            Purge::Clear {
                cache: "url".into(),
            },
        ] {
            assert_eq!(Purge::decode(&purge.encode(42)), Some((42, purge)));
        }
        assert_eq!(Purge::decode("hello"), None);
        assert_eq!(Purge::decode("zz\nkey\nc\nk"), None);
        assert_eq!(Purge::decode("01\nexplode\nc\nk"), None);
    }

    #[test]
    fn warnings_are_bounded() {
        let warnings = Warnings::default();
        assert_eq!(warnings.admit(), Some(0));
        for _ in 0..100 {
            assert_eq!(warnings.admit(), None);
        }
        assert_eq!(warnings.suppressed.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn times_are_milliseconds_since_the_epoch() {
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
