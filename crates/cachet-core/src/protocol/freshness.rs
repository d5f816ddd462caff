//! How long a stored response stays fresh, and how old it already is when
//! it arrives (RFC 9111 §4.2).

use crate::protocol::cache_control::CacheControl;
use crate::protocol::targeted::Policy;
use http::header::{AGE, DATE, EXPIRES, LAST_MODIFIED};
use http::HeaderMap;
use std::time::{Duration, SystemTime};

/// Whether a response's directives forbid serving it stale without
/// revalidation (§5.2.2.2 `must-revalidate`, §5.2.2.8 `proxy-revalidate`,
/// §5.2.2.10 `s-maxage`, §5.2.2.4 `no-cache`), as the response's policy
/// says them.
pub(crate) fn forbids_stale(cc: &CacheControl) -> bool {
    [
        "must-revalidate",
        "proxy-revalidate",
        "s-maxage",
        "no-cache",
    ]
    .iter()
    .any(|directive| cc.has(directive))
}

/// The freshness of a response as it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// The freshness lifetime (§4.2.1).
    pub lifetime: Duration,
    /// The corrected initial age (§4.2.3): how old the response already is.
    pub initial_age: Duration,
    /// Whether the lifetime came from the response (`s-maxage`, `max-age`,
    /// `Expires`) rather than the rule's TTL (a heuristic, §4.2.2).
    pub explicit: bool,
}

impl Freshness {
    /// How long the response stays fresh from the moment it is stored.
    pub(crate) fn remaining(&self) -> Duration {
        self.lifetime.saturating_sub(self.initial_age)
    }
}

/// Computes the freshness of a response received at `now`, under its
/// `policy` (`Cache-Control`, or the targeted field that replaces it).
///
/// With `respect_origin`, the lifetime is zero for `no-cache`, else
/// `s-maxage`, else `max-age`, else
/// `Expires − Date` (an invalid `Expires` means already stale, §5.3; a
/// targeted policy ignores `Expires`, RFC 9213 §2.1), else
/// `fallback` (the rule's TTL). Without it, the lifetime is `fallback`. The
/// initial age is the larger of the `Age` header and `now − Date`.
pub(crate) fn freshness(
    headers: &HeaderMap,
    policy: &Policy,
    now: SystemTime,
    fallback: Duration,
    respect_origin: bool,
) -> Freshness {
    let age_value = age(headers);
    let date = http_date(headers.get(DATE));
    let apparent_age = date
        .and_then(|date| now.duration_since(date).ok())
        .unwrap_or_default();
    let initial_age = age_value.max(apparent_age).min(crate::clock::MAX_DELTA);
    let heuristic = Freshness {
        lifetime: fallback,
        initial_age,
        explicit: false,
    };
    if !respect_origin {
        // The rule's TTL runs from the moment of storing.
        return Freshness {
            lifetime: fallback.saturating_add(initial_age),
            ..heuristic
        };
    }
    let cc = &policy.cc;
    let explicit = |lifetime: Duration| Freshness {
        lifetime,
        initial_age,
        explicit: true,
    };
    if cc.has("no-cache") {
        // Stored stale: every use revalidates (RFC 9111 §5.2.2.4).
        return explicit(Duration::ZERO);
    }
    if let Some(secs) = cc.seconds("s-maxage").or_else(|| cc.seconds("max-age")) {
        return explicit(Duration::from_secs(secs));
    }
    if headers.contains_key(EXPIRES) && !policy.targeted {
        let mut all = headers.get_all(EXPIRES).iter();
        let (first, second) = (all.next(), all.next());
        return match (http_date(first), second) {
            (Some(expires), None) => {
                let base = date.unwrap_or(now);
                let lifetime = expires.duration_since(base).unwrap_or_default();
                explicit(lifetime.min(crate::clock::MAX_DELTA))
            }
            // An invalid or repeated Expires means "already expired".
            _ => explicit(Duration::ZERO),
        };
    }
    heuristic
}

/// The `Age` a response arrived with (RFC 9111 §5.1): the first value of
/// the first line when the field is a list or repeated; an invalid one
/// counts as the largest age, so the response is stale rather than fresh.
fn age(headers: &HeaderMap) -> Duration {
    let Some(line) = headers.get(AGE) else {
        return Duration::ZERO;
    };
    let first = line
        .as_bytes()
        .split(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    // Delta-seconds; too large counts as 2^31 (RFC 9111 §1.2.2).
    if first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return crate::clock::MAX_DELTA;
    }
    std::str::from_utf8(first)
        .ok()
        .and_then(|digits| digits.parse::<u64>().ok())
        .map_or(crate::clock::MAX_DELTA, |secs| {
            Duration::from_secs(secs).min(crate::clock::MAX_DELTA)
        })
}

/// The heuristic freshness lifetime of RFC 9111 §4.2.2 for a response
/// without explicit freshness: a tenth of the time since its
/// `Last-Modified` (measured from its `Date`, else `now`), and zero without
/// one.
pub(crate) fn heuristic_lifetime(headers: &HeaderMap, now: SystemTime) -> Duration {
    let Some(modified) = http_date(headers.get(LAST_MODIFIED)) else {
        return Duration::ZERO;
    };
    let date = http_date(headers.get(DATE)).unwrap_or(now);
    date.duration_since(modified).unwrap_or_default() / 10
}

/// Parses an HTTP-date header value (RFC 9110 §5.6.7); `None` when absent
/// or invalid.
pub(crate) fn http_date(value: Option<&http::HeaderValue>) -> Option<SystemTime> {
    parse_http_date(value?.as_bytes())
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) from raw bytes — the preferred
/// IMF-fixdate and the obsolete RFC 850 and asctime forms, with day, month
/// and zone names in any case, as recipients must; `None` if invalid.
pub(crate) fn parse_http_date(bytes: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if let Ok(date) = httpdate::parse_http_date(text) {
        return Some(date);
    }
    // The parser knows the names only as the grammar spells them: respell
    // each run of letters (`SUN`, `nov`, `gmt`) that way, and try again.
    if !text.is_ascii() || text.len() > 64 {
        return None;
    }
    let mut respelled = String::with_capacity(text.len());
    // Each piece is a run of letters and the one character after it.
    for word in text.split_inclusive(|c: char| !c.is_ascii_alphabetic()) {
        let letters = word.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
        if letters.eq_ignore_ascii_case("gmt") {
            respelled.push_str("GMT");
        } else {
            let mut chars = letters.chars();
            if let Some(first) = chars.next() {
                respelled.push(first.to_ascii_uppercase());
                respelled.extend(chars.map(|c| c.to_ascii_lowercase()));
            }
        }
        respelled.push_str(&word[letters.len()..]);
    }
    httpdate::parse_http_date(&respelled).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(300);

    /// The freshness under `Cache-Control` alone.
    fn freshness(headers: &HeaderMap, now: SystemTime, ttl: Duration, respect: bool) -> Freshness {
        super::freshness(headers, &Policy::untargeted(headers), now, ttl, respect)
    }

    #[test]
    fn heuristic_lifetime_is_a_tenth_of_the_age_of_last_modified_rfc9111_4_2_2() {
        let date = |secs: u64| httpdate::fmt_http_date(now() - Duration::from_secs(secs));
        let headers =
            crate::test_support::header_map(&[("last-modified", &date(1000)), ("date", &date(0))]);
        assert_eq!(
            heuristic_lifetime(&headers, now()),
            Duration::from_secs(100)
        );
        assert_eq!(heuristic_lifetime(&HeaderMap::new(), now()), Duration::ZERO);
        let future = crate::test_support::header_map(&[("last-modified", &date(0))]);
        assert_eq!(
            heuristic_lifetime(&future, now() - Duration::from_secs(5)),
            Duration::ZERO
        );
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
    }

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        crate::test_support::header_map(&pairs)
    }

    fn date(offset_secs: i64) -> String {
        let time = if offset_secs >= 0 {
            now() + Duration::from_secs(offset_secs.unsigned_abs())
        } else {
            now() - Duration::from_secs(offset_secs.unsigned_abs())
        };
        httpdate::fmt_http_date(time)
    }

    #[test]
    fn s_maxage_beats_max_age_beats_expires_rfc9111_4_2_1() {
        let h = headers(&[
            ("cache-control", "max-age=60, s-maxage=30".into()),
            ("expires", date(600)),
        ]);
        assert_eq!(
            freshness(&h, now(), TTL, true).lifetime,
            Duration::from_secs(30)
        );
        let h = headers(&[
            ("cache-control", "max-age=60".into()),
            ("expires", date(600)),
        ]);
        assert_eq!(
            freshness(&h, now(), TTL, true).lifetime,
            Duration::from_secs(60)
        );
        let h = headers(&[("expires", date(600)), ("date", date(0))]);
        let f = freshness(&h, now(), TTL, true);
        assert_eq!((f.lifetime, f.explicit), (Duration::from_secs(600), true));
    }

    #[test]
    fn rule_ttl_is_the_heuristic_without_freshness_information_rfc9111_4_2_2() {
        let f = freshness(&HeaderMap::new(), now(), TTL, true);
        assert_eq!((f.lifetime, f.explicit), (TTL, false));
    }

    #[test]
    fn invalid_expires_means_stale_rfc9111_5_3() {
        let h = headers(&[("expires", "0".into())]);
        assert_eq!(freshness(&h, now(), TTL, true).remaining(), Duration::ZERO);
        let h = headers(&[("expires", date(600)), ("expires", date(900))]);
        assert_eq!(freshness(&h, now(), TTL, true).remaining(), Duration::ZERO);
    }

    #[test]
    fn upstream_age_is_subtracted_rfc9111_4_2_3() {
        let h = headers(&[("cache-control", "max-age=60".into()), ("age", "15".into())]);
        let f = freshness(&h, now(), TTL, true);
        assert_eq!(
            (f.initial_age, f.remaining()),
            (Duration::from_secs(15), Duration::from_secs(45))
        );
        // The apparent age from Date counts when it is larger.
        let h = headers(&[
            ("cache-control", "max-age=60".into()),
            ("date", date(-20)),
            ("age", "5".into()),
        ]);
        assert_eq!(
            freshness(&h, now(), TTL, true).initial_age,
            Duration::from_secs(20)
        );
        let h = headers(&[("cache-control", "max-age=10".into()), ("age", "30".into())]);
        assert_eq!(freshness(&h, now(), TTL, true).remaining(), Duration::ZERO);
    }

    #[test]
    fn a_list_valued_or_repeated_age_uses_the_first_value_rfc9111_5_1() {
        let max_age = ("cache-control", "max-age=60".to_owned());
        for ages in [&["10, 20"][..], &["10,20,30"], &["10", "20"], &[" 10 , x"]] {
            let mut pairs = vec![max_age.clone()];
            pairs.extend(ages.iter().map(|age| ("age", (*age).to_owned())));
            let f = freshness(&headers(&pairs), now(), TTL, true);
            assert_eq!(f.initial_age, Duration::from_secs(10), "{ages:?}");
        }
    }

    #[test]
    fn an_invalid_age_makes_the_response_stale_rfc9111_5_1() {
        for age in ["-5", "ten", "", "1.5", "x, 10"] {
            let h = headers(&[("cache-control", "max-age=60".into()), ("age", age.into())]);
            assert_eq!(
                freshness(&h, now(), TTL, true).remaining(),
                Duration::ZERO,
                "{age:?}"
            );
        }
    }

    #[test]
    fn dates_in_every_form_and_any_case_are_parsed_rfc9110_5_6_7() {
        let expected = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777));
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "sun, 06 nov 1994 08:49:37 gmt",
            "SUN, 06 NOV 1994 08:49:37 GMT",
            "SUNDAY, 06-NOV-94 08:49:37 Gmt",
            "sun nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
        ] {
            assert_eq!(parse_http_date(text.as_bytes()), expected, "{text:?}");
        }
        for text in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Novem 1994 08:49:37 GMT",
            "0",
            "",
            "Sün, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(text.as_bytes()), None, "{text:?}");
        }
        // An Expires in an obsolete form and another case is honoured.
        let in_ten = httpdate::fmt_http_date(now() + Duration::from_secs(600)).to_lowercase();
        let h = headers(&[("date", date(0)), ("expires", in_ten)]);
        assert_eq!(
            freshness(&h, now(), TTL, true).lifetime,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn rule_ttl_wins_when_not_respecting_the_origin() {
        let h = headers(&[("cache-control", "max-age=5".into()), ("age", "3".into())]);
        let f = freshness(&h, now(), TTL, false);
        assert_eq!(
            (f.remaining(), f.initial_age),
            (TTL, Duration::from_secs(3))
        );
    }
}
