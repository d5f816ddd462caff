//! The headers that tell a client what the cache did: `Cache-Status`
//! (RFC 9211), `Age` (RFC 9111 §5.1) and, as an option, `X-Cache`. Every
//! adapter writes them through this one module.

use http::header::{HeaderName, HeaderValue, AGE};
use http::{HeaderMap, StatusCode};
use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// The `Cache-Status` header (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// The `X-Cache` header, for those who grep for it.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// The headers a hit sets on top of its entry's (`Age`, `Cache-Status`,
/// `X-Cache`): what an adapter adds to a prepared form of the entry's
/// headers (`Answer::prepared`).
pub const STATUS_HEADERS: [HeaderName; 3] = [AGE, CACHE_STATUS, X_CACHE];

/// How many seconds have a precomputed `Age` and `Cache-Status: …; ttl=N`
/// value: a hit clones one (a reference count) instead of formatting.
const PRECOMPUTED: u64 = 600;

static AGE_VALUES: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| (0..PRECOMPUTED).map(HeaderValue::from).collect());

static HIT_VALUES: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    (0..PRECOMPUTED)
        .map(|ttl| HeaderValue::try_from(format!("cachet; hit; ttl={ttl}")).expect("ASCII"))
        .collect()
});

fn precomputed(table: &LazyLock<Vec<HeaderValue>>, secs: u64) -> Option<HeaderValue> {
    usize::try_from(secs)
        .ok()
        .and_then(|index| table.get(index))
        .cloned()
}

thread_local! {
    /// The last `Cache-Status: …; ttl=N` this thread made past the table:
    /// the hits of one long-lived entry within a second share it.
    static LAST_HIT: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    /// The last `Cache-Status` of a forwarded request this thread made,
    /// with what it said: the misses of one route mostly say the same.
    static LAST_FORWARD: RefCell<Option<(Forwarded, HeaderValue)>> = const { RefCell::new(None) };
}

/// What the `Cache-Status` of a forwarded request says (without debug
/// parts): why, the origin's status, whether the response was stored.
type Forwarded = (ForwardReason, Option<StatusCode>, bool);

/// `cachet; fwd=…[; fwd-status=…][; stored]`: the thread's last value when
/// it says the same, else formatted (and remembered).
fn forward_value(forwarded: Forwarded) -> HeaderValue {
    LAST_FORWARD.with_borrow_mut(|last| match last {
        Some((seen, value)) if *seen == forwarded => value.clone(),
        _ => {
            let value = HeaderValue::try_from(forward_text(forwarded))
                .unwrap_or_else(|_| HeaderValue::from_static("cachet"));
            *last = Some((forwarded, value.clone()));
            value
        }
    })
}

fn forward_text((reason, status, stored): Forwarded) -> String {
    let mut text = format!("cachet; fwd={}", reason.token());
    if let Some(status) = status {
        let _ = write!(text, "; fwd-status={}", status.as_u16());
    }
    if stored {
        text.push_str("; stored");
    }
    text
}

/// `cachet; hit; ttl={ttl}`: from the table, the thread's last value, or
/// formatted (and remembered).
fn hit_value(ttl: u64) -> HeaderValue {
    if let Some(value) = precomputed(&HIT_VALUES, ttl) {
        return value;
    }
    LAST_HIT.with_borrow_mut(|last| match last {
        Some((secs, value)) if *secs == ttl => value.clone(),
        _ => {
            let value = HeaderValue::try_from(format!("cachet; hit; ttl={ttl}"))
                .unwrap_or_else(|_| HeaderValue::from_static("cachet; hit"));
            *last = Some((ttl, value.clone()));
            value
        }
    })
}

/// Why a request went to the origin (RFC 9211 §2.2 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardReason {
    /// No entry for this URI (`uri-miss`).
    UriMiss,
    /// Entries for this URI, but none for the request's values of the
    /// headers the response varies on (`vary-miss`).
    VaryMiss,
    /// The entry is stale: revalidated or fetched anew (`stale`).
    Stale,
    /// An entry exists but the request's directives did not allow its use
    /// (`request`): `no-cache`, `max-age`, `min-fresh`.
    Request,
    /// The rule matched but this request is not served from the cache
    /// (`bypass`): a range request, for example.
    Bypass,
    /// The rule does not cache this method (`method`).
    Method,
}

impl ForwardReason {
    fn token(self) -> &'static str {
        match self {
            Self::UriMiss => "uri-miss",
            Self::VaryMiss => "vary-miss",
            Self::Stale => "stale",
            Self::Request => "request",
            Self::Bypass => "bypass",
            Self::Method => "method",
        }
    }
}

/// What the cache did with a request that matched a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered from the cache.
    Hit {
        /// The entry's age (RFC 9111 §4.2.3).
        age: Duration,
        /// How long the entry stays fresh.
        ttl: Duration,
    },
    /// Answered from a stale entry the request accepts (`max-stale`), or
    /// that is served while a background request refreshes it
    /// (`stale-while-revalidate`): `ttl` is negative in `Cache-Status`.
    StaleHit {
        /// The entry's age.
        age: Duration,
        /// How long ago it went stale.
        staleness: Duration,
        /// Whether it is being refreshed (`stale-while-revalidate`).
        refreshing: bool,
    },
    /// The origin failed (a 5xx, or no answer) and the stored entry answered
    /// (`stale-if-error`).
    StaleIfError {
        /// The entry's age.
        age: Duration,
        /// How long ago it went stale (zero if it is still fresh).
        staleness: Duration,
        /// Why the request went to the origin.
        reason: ForwardReason,
        /// The origin's status, when it answered.
        status: Option<StatusCode>,
    },
    /// Sent to the origin.
    Forward {
        /// Why.
        reason: ForwardReason,
        /// The origin's status, when it answered.
        status: Option<StatusCode>,
        /// Whether the response was stored.
        stored: bool,
        /// Why it was not stored (shown only with debug headers).
        detail: Option<String>,
    },
    /// `Cache-Control: only-if-cached` and no entry: answered 504 without
    /// contacting the origin (RFC 9111 §5.2.1.7).
    OnlyIfCached,
}

/// How outcomes are written: which headers, and whether `Cache-Status`
/// carries the key and the reason a response was not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatusHeaders {
    /// Also write `X-Cache: HIT|MISS|BYPASS|STALE` (`STALE`: served by
    /// `stale-if-error`).
    pub x_cache: bool,
    /// Add `key` and `detail` to `Cache-Status` (exposes keys: for debugging).
    pub debug: bool,
    /// Fields meant for cachet alone, removed before the client sees them
    /// (its own targeted cache-control field, RFC 9213). Shared with the
    /// answers that leave the entry's headers out ([`Answer::complete`](crate::engine::Answer::complete)).
    pub strip: Arc<[HeaderName]>,
}

impl StatusHeaders {
    /// Writes `Cache-Status`, `Age` on hits and, if enabled, `X-Cache` into
    /// `headers`, and removes the fields meant for cachet alone. `key` is
    /// shown only in debug mode.
    pub(crate) fn write(&self, outcome: &Outcome, key: Option<&str>, headers: &mut HeaderMap) {
        if !headers.is_empty() {
            for name in self.strip.iter() {
                headers.remove(name);
            }
        }
        self.values(outcome, key).insert_into(headers);
    }

    /// The values [`write`](Self::write) would write, without a header map.
    pub(crate) fn values(&self, outcome: &Outcome, key: Option<&str>) -> StatusValues {
        let (age, x_cache, status) = match outcome {
            Outcome::Hit { age, ttl } => {
                let status = if self.debug {
                    self.value(format!("cachet; hit; ttl={}", ttl.as_secs()), key, None)
                } else {
                    hit_value(ttl.as_secs())
                };
                (Some(*age), "HIT", status)
            }
            Outcome::StaleHit {
                age,
                staleness,
                refreshing: false,
            } => {
                let text = format!("cachet; hit; ttl=-{}", staleness.as_secs());
                (Some(*age), "HIT", self.value(text, key, Some("max-stale")))
            }
            Outcome::StaleHit {
                age,
                staleness,
                refreshing: true,
            } => {
                let text = format!(
                    "cachet; hit; fwd=stale; ttl=-{}; detail=stale-while-revalidate",
                    staleness.as_secs()
                );
                (Some(*age), "HIT", self.value(text, key, None))
            }
            Outcome::StaleIfError {
                age,
                staleness,
                reason,
                status,
            } => {
                let mut text = format!("cachet; fwd={}", reason.token());
                if let Some(status) = status {
                    let _ = write!(text, "; fwd-status={}", status.as_u16());
                }
                let _ = write!(
                    text,
                    "; ttl=-{}; detail=stale-if-error",
                    staleness.as_secs()
                );
                (Some(*age), "STALE", self.value(text, key, None))
            }
            Outcome::Forward {
                reason,
                status,
                stored,
                detail,
            } => {
                let x_cache = if matches!(reason, ForwardReason::Bypass | ForwardReason::Method) {
                    "BYPASS"
                } else {
                    "MISS"
                };
                let forwarded = (*reason, *status, *stored);
                let status = if self.debug {
                    self.value(forward_text(forwarded), key, detail.as_deref())
                } else {
                    forward_value(forwarded)
                };
                (None, x_cache, status)
            }
            Outcome::OnlyIfCached => (
                None,
                "MISS",
                HeaderValue::from_static("cachet; detail=\"only-if-cached\""),
            ),
        };
        StatusValues {
            age,
            status,
            x_cache: self.x_cache.then_some(x_cache),
        }
    }

    fn value(&self, mut text: String, key: Option<&str>, detail: Option<&str>) -> HeaderValue {
        if self.debug {
            if let Some(key) = key {
                let _ = write!(text, "; key={}", sf_string(key));
            }
            if let Some(detail) = detail {
                let _ = write!(text, "; detail={}", sf_string(detail));
            }
        }
        // Keys hold only visible ASCII and spaces, so this cannot fail; if it
        // ever did, the status without the debug parts is still right.
        HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static("cachet"))
    }

    /// The names of the headers [`write`](Self::write) may add, for sizing
    /// a header map once.
    pub(crate) const MAX_HEADERS: usize = 3;
}

fn age_value(age: Duration) -> HeaderValue {
    let secs = age.as_secs();
    precomputed(&AGE_VALUES, secs).unwrap_or_else(|| secs.into())
}

/// The status headers one outcome sets: what an answer that leaves its
/// entry's headers to a prepared form carries instead of a header map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusValues {
    /// `Age`, on hits.
    age: Option<Duration>,
    /// `Cache-Status`.
    status: HeaderValue,
    /// `X-Cache`, when the cache writes it.
    x_cache: Option<&'static str>,
}

impl StatusValues {
    /// The values, each with the position of its name in
    /// [`STATUS_HEADERS`].
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, HeaderValue)> + '_ {
        let age = self.age.map(|age| (0, age_value(age)));
        let x_cache = self.x_cache.map(|x| (2, HeaderValue::from_static(x)));
        age.into_iter()
            .chain(std::iter::once((1, self.status.clone())))
            .chain(x_cache)
    }

    /// Which fields are set: bit `n` for the one at position `n` in
    /// [`STATUS_HEADERS`].
    pub(crate) fn slots(&self) -> u8 {
        u8::from(self.age.is_some()) | 2 | u8::from(self.x_cache.is_some()) << 2
    }

    /// Whether `name` is one of the fields set.
    pub(crate) fn sets(&self, name: &HeaderName) -> bool {
        name == AGE && self.age.is_some()
            || name == CACHE_STATUS
            || name == X_CACHE && self.x_cache.is_some()
    }

    /// Inserts the values into `headers`, each replacing any value of its
    /// name where it stands.
    pub(crate) fn insert_into(self, headers: &mut HeaderMap) {
        if let Some(age) = self.age {
            headers.insert(AGE, age_value(age));
        }
        headers.insert(CACHE_STATUS, self.status);
        if let Some(x_cache) = self.x_cache {
            headers.insert(X_CACHE, HeaderValue::from_static(x_cache));
        }
    }
}

/// A Structured Field string (RFC 8941 §3.3.3): quoted, `\` and `"` escaped.
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(options: &StatusHeaders, outcome: &Outcome) -> HeaderMap {
        let mut headers = HeaderMap::new();
        // Keys hold percent-encoded targets: a quote never reaches the field.
        options.write(outcome, Some("/a%22b GET"), &mut headers);
        headers
    }

    #[test]
    fn hits_carry_age_ttl_and_no_key_by_default() {
        let hit = Outcome::Hit {
            age: Duration::from_millis(7_900),
            ttl: Duration::from_secs(52),
        };
        let headers = written(&StatusHeaders::default(), &hit);
        assert_eq!(headers[AGE], "7");
        assert_eq!(headers[CACHE_STATUS], "cachet; hit; ttl=52");
        assert!(!headers.contains_key(X_CACHE));
        let long = Outcome::Hit {
            age: Duration::from_secs(86_400),
            ttl: Duration::from_secs(7_200),
        };
        let headers = written(&StatusHeaders::default(), &long);
        assert_eq!(headers[AGE], "86400");
        assert_eq!(headers[CACHE_STATUS], "cachet; hit; ttl=7200");
        // Past the table, the thread's remembered value is the one asked for.
        for ttl in [3_599, 3_599, 3_598, 3_599, 599, 3_599] {
            assert_eq!(hit_value(ttl), format!("cachet; hit; ttl={ttl}").as_str());
        }
    }

    #[test]
    fn forwards_say_why_and_whether_stored() {
        let miss = Outcome::Forward {
            reason: ForwardReason::UriMiss,
            status: Some(StatusCode::OK),
            stored: true,
            detail: None,
        };
        let headers = written(
            &StatusHeaders {
                x_cache: true,
                debug: false,
                ..StatusHeaders::default()
            },
            &miss,
        );
        assert_eq!(
            headers[CACHE_STATUS],
            "cachet; fwd=uri-miss; fwd-status=200; stored"
        );
        assert_eq!(headers[X_CACHE], "MISS");
        let bypass = Outcome::Forward {
            reason: ForwardReason::Bypass,
            status: None,
            stored: false,
            detail: None,
        };
        let headers = written(
            &StatusHeaders {
                x_cache: true,
                debug: false,
                ..StatusHeaders::default()
            },
            &bypass,
        );
        assert_eq!(headers[CACHE_STATUS], "cachet; fwd=bypass");
        assert_eq!(headers[X_CACHE], "BYPASS");
    }

    #[test]
    fn a_remembered_forward_value_follows_every_part_of_the_outcome() {
        let options = StatusHeaders::default();
        let forward = |reason, status: Option<u16>, stored| Outcome::Forward {
            reason,
            status: status.map(|code| StatusCode::from_u16(code).unwrap()),
            stored,
            detail: Some("not shown without debug".into()),
        };
        // In a row on one thread: each differs from the last in one part.
        let cases = [
            (
                forward(ForwardReason::UriMiss, Some(200), true),
                "cachet; fwd=uri-miss; fwd-status=200; stored",
            ),
            (
                forward(ForwardReason::UriMiss, Some(200), true),
                "cachet; fwd=uri-miss; fwd-status=200; stored",
            ),
            (
                forward(ForwardReason::UriMiss, Some(200), false),
                "cachet; fwd=uri-miss; fwd-status=200",
            ),
            (
                forward(ForwardReason::UriMiss, Some(500), false),
                "cachet; fwd=uri-miss; fwd-status=500",
            ),
            (
                forward(ForwardReason::Stale, Some(500), false),
                "cachet; fwd=stale; fwd-status=500",
            ),
            (
                forward(ForwardReason::Stale, None, false),
                "cachet; fwd=stale",
            ),
            (
                forward(ForwardReason::UriMiss, Some(200), true),
                "cachet; fwd=uri-miss; fwd-status=200; stored",
            ),
        ];
        for (outcome, expected) in cases {
            assert_eq!(written(&options, &outcome)[CACHE_STATUS], expected);
        }
    }

    #[test]
    fn debug_adds_key_and_detail_as_sf_strings() {
        let miss = Outcome::Forward {
            reason: ForwardReason::UriMiss,
            status: Some(StatusCode::OK),
            stored: false,
            detail: Some("private".into()),
        };
        let headers = written(
            &StatusHeaders {
                x_cache: false,
                debug: true,
                ..StatusHeaders::default()
            },
            &miss,
        );
        assert_eq!(
            headers[CACHE_STATUS],
            r#"cachet; fwd=uri-miss; fwd-status=200; key="/a%22b GET"; detail="private""#
        );
        let hit = Outcome::Hit {
            age: Duration::ZERO,
            ttl: Duration::from_secs(5),
        };
        let headers = written(
            &StatusHeaders {
                x_cache: false,
                debug: true,
                ..StatusHeaders::default()
            },
            &hit,
        );
        assert_eq!(
            headers[CACHE_STATUS],
            r#"cachet; hit; ttl=5; key="/a%22b GET""#
        );
    }
}
