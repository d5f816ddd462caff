//! [`CacheSpec`]: what a named cache may hold.

use crate::units::de_field;
use serde::Deserialize;
use std::time::Duration;

/// A named cache's budget: its size in bytes and the TTL of rules that set none.
///
/// ```
/// use cachet_core::CacheSpec;
/// use std::time::Duration;
/// let spec = CacheSpec::new(256 * 1024 * 1024, Duration::from_secs(3600));
/// assert_eq!(spec.max_bytes, 256 * 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSpec {
    /// Memory budget: bodies, headers and keys, in bytes.
    #[serde(deserialize_with = "de_field::size")]
    pub max_bytes: u64,
    /// TTL for entries whose rule sets none.
    #[serde(deserialize_with = "de_field::duration")]
    pub ttl: Duration,
}

impl CacheSpec {
    /// A budget of `max_bytes` (bodies, headers and keys), and `ttl` for the
    /// entries of rules that set none.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        Self { max_bytes, ttl }
    }

    /// The `values` cache's budget unless configured: 16 MiB.
    pub(crate) fn values() -> Self {
        Self::new(16 * 1024 * 1024, Duration::from_secs(300))
    }
}

impl Default for CacheSpec {
    /// 64 MiB and five minutes.
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            ttl: Duration::from_secs(300),
        }
    }
}
