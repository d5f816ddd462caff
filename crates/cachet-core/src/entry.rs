//! A stored response.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::time::{Duration, SystemTime};

/// Fixed per-entry cost counted against a cache's `max_bytes`, for the entry's
/// own fields and the store's bookkeeping.
const ENTRY_OVERHEAD: u64 = 160;
/// Per-header cost on top of the name and value bytes (the map's slots).
const HEADER_OVERHEAD: u64 = 48;

/// A response as the cache keeps it: status, headers, the whole body, and when
/// it was stored and stops being fresh. Shared as `Arc<CachedResponse>`: a hit
/// clones the pointer, never the body.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored_at: SystemTime,
    fresh_until: SystemTime,
    initial_age: Duration,
}

impl CachedResponse {
    /// A response stored at `stored_at`, fresh for `ttl`.
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        stored_at: SystemTime,
        ttl: Duration,
    ) -> Self {
        Self {
            status,
            headers,
            body,
            stored_at,
            fresh_until: stored_at + ttl,
            initial_age: Duration::ZERO,
        }
    }

    /// Sets how old the response already was when stored (RFC 9111
    /// §4.2.3's corrected initial age, from `Age` and `Date`).
    #[must_use]
    pub fn with_initial_age(mut self, age: Duration) -> Self {
        self.initial_age = age;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The stored headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// When the response was stored.
    pub fn stored_at(&self) -> SystemTime {
        self.stored_at
    }
    /// When the response stops being fresh.
    pub fn fresh_until(&self) -> SystemTime {
        self.fresh_until
    }

    /// Whether the entry may be served at `now` without asking the origin.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until
    }

    /// The entry's age at `now` (RFC 9111 §4.2.3): its initial age plus the
    /// time it has been stored (zero resident time if the clock went back).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.initial_age + now.duration_since(self.stored_at).unwrap_or_default()
    }

    /// Time left until the entry goes stale (zero once stale).
    pub fn time_to_live(&self, now: SystemTime) -> Duration {
        self.fresh_until.duration_since(now).unwrap_or_default()
    }

    /// A copy that is fresh for `ttl` from `now`, for refreshing an entry's TTL.
    #[must_use]
    pub fn refreshed(&self, now: SystemTime, ttl: Duration) -> Self {
        Self {
            fresh_until: now + ttl,
            ..self.clone()
        }
    }

    /// What the entry costs against a cache's `max_bytes`: body, header names
    /// and values, and a fixed overhead.
    pub fn weight(&self) -> u64 {
        let headers: u64 = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().len() + value.len()) as u64 + HEADER_OVERHEAD)
            .sum();
        self.body.len() as u64 + headers + ENTRY_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_age_and_weight() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let entry = CachedResponse::new(
            StatusCode::OK,
            headers,
            Bytes::from_static(b"hello"),
            t0,
            Duration::from_secs(60),
        );
        assert!(entry.is_fresh(t0 + Duration::from_secs(59)));
        assert!(!entry.is_fresh(t0 + Duration::from_secs(60)));
        assert_eq!(
            entry.age(t0 + Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(entry.age(t0 - Duration::from_secs(7)), Duration::ZERO);
        let aged = entry.clone().with_initial_age(Duration::from_secs(10));
        assert_eq!(
            aged.age(t0 + Duration::from_secs(7)),
            Duration::from_secs(17)
        );
        assert_eq!(
            entry.time_to_live(t0 + Duration::from_secs(50)),
            Duration::from_secs(10)
        );
        assert_eq!(
            entry.weight(),
            5 + (12 + 10 + HEADER_OVERHEAD) + ENTRY_OVERHEAD
        );
        let refreshed = entry.refreshed(t0 + Duration::from_secs(100), Duration::from_secs(5));
        assert!(refreshed.is_fresh(t0 + Duration::from_secs(104)));
        assert_eq!(refreshed.stored_at(), t0);
    }
}
