//! The headers that tell a client what the cache did. Every adapter writes
//! them through this one module.

use http::header::{HeaderName, HeaderValue, AGE};
use http::HeaderMap;
use std::time::Duration;

/// The `X-Cache` header.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// What the cache did with a request that matched a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from the cache; the entry's age.
    Hit {
        /// How long the entry has been stored.
        age: Duration,
    },
    /// Forwarded to the origin.
    Miss,
}

impl Outcome {
    /// Writes `X-Cache` and, on a hit, `Age` (RFC 9111 §5.1) into `headers`.
    pub fn write_headers(self, headers: &mut HeaderMap) {
        match self {
            Self::Hit { age } => {
                headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
                headers.insert(AGE, HeaderValue::from(age.as_secs()));
            }
            Self::Miss => {
                headers.insert(X_CACHE, HeaderValue::from_static("MISS"));
            }
        }
    }
}
