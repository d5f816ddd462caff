//! The headers that tell a client what the cache did. Every adapter writes
//! them through this one module.

use http::header::{HeaderName, HeaderValue, AGE};
use http::HeaderMap;
use std::sync::LazyLock;
use std::time::Duration;

/// `Age` values for the first ten minutes, made once: a hit clones one (a
/// reference count) instead of formatting and allocating a new value.
static AGE_VALUES: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| (0..600u64).map(HeaderValue::from).collect());

fn age_value(age: Duration) -> HeaderValue {
    let secs = age.as_secs();
    usize::try_from(secs)
        .ok()
        .and_then(|index| AGE_VALUES.get(index))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(secs))
}

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
                headers.insert(AGE, age_value(age));
            }
            Self::Miss => {
                headers.insert(X_CACHE, HeaderValue::from_static("MISS"));
            }
        }
    }

    /// How many headers [`write_headers`](Self::write_headers) may add, so
    /// callers can size a header map once.
    pub const MAX_HEADERS: usize = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_carry_age_and_x_cache() {
        let mut headers = HeaderMap::new();
        Outcome::Hit {
            age: Duration::from_millis(7_900),
        }
        .write_headers(&mut headers);
        assert_eq!(headers[AGE], "7");
        assert_eq!(headers[X_CACHE], "HIT");
        Outcome::Hit {
            age: Duration::from_secs(86_400),
        }
        .write_headers(&mut headers);
        assert_eq!(headers[AGE], "86400");
        Outcome::Miss.write_headers(&mut headers);
        assert_eq!(headers[X_CACHE], "MISS");
    }
}
