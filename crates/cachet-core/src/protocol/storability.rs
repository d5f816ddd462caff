//! Whether a response may be stored (RFC 9111 §3, with the shared-cache rules
//! of §3.5 for every entry that is not scoped to one user).

use crate::protocol::cache_control::CacheControl;
use crate::protocol::freshness::Freshness;
use crate::protocol::vary::response_vary;
use http::header::{HeaderName, COOKIE, ETAG, LAST_MODIFIED, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use std::fmt;
use std::time::Duration;

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum NotStorable {
    /// A `HEAD` response never becomes the `GET` entry.
    HeadRequest,
    /// The request said `Cache-Control: no-store` (§5.2.1.5).
    RequestNoStore,
    /// The status is not one the cache stores.
    Status(StatusCode),
    /// `Cache-Control: no-store` (RFC 9111 §5.2.2.5).
    NoStore,
    /// `Cache-Control: private` on an entry shared between users (§5.2.2.7).
    Private,
    /// `Cache-Control: no-cache` without a validator to revalidate with, or
    /// a rule that keeps no stale entries (§5.2.2.4).
    NoCache,
    /// `Set-Cookie`: replaying it would hand one client's cookie to another.
    SetCookie,
    /// The request had `Authorization` and the response does not allow a
    /// shared cache to store it (§3.5).
    Authorization,
    /// The request had a `Cookie` header, and the response, to be shared,
    /// says neither `public` nor `s-maxage` nor `Vary: Cookie` (a cookie
    /// may have personalised it).
    Cookie,
    /// `Vary: *` (§4.1).
    VaryAll,
    /// `Vary` names something that is not a header name.
    VaryInvalid,
    /// A header the response varies on came in several field lines: origins
    /// read those differently (the first line, the last, or all), so what
    /// the origin answered is not surely what the combined value keys.
    VarySplit,
    /// The body is larger than the rule's `max_body`.
    TooLarge,
    /// The body ended with trailers, which the cache does not keep.
    Trailers,
    /// The origin's body failed before its end.
    Incomplete,
    /// The response was already stale when it arrived (§4.2), without a
    /// validator to revalidate it with.
    Stale,
    /// The store failed (logged and counted; the response was still served).
    StoreFailed,
    /// The request waited past the rule's `lock_timeout` for another
    /// request's fetch, and went to the origin without storing.
    LockTimeout,
}

impl NotStorable {
    /// Whether the reason lies in the response itself, so that the next
    /// responses for the key will likely be refused too: the key is then
    /// marked hit-for-miss and its requests stop queueing behind one
    /// another. Reasons of one request (`Authorization`, `no-store`, a
    /// `HEAD`), server errors and failures do not mark it.
    pub(crate) fn marks_hit_for_miss(&self) -> bool {
        match self {
            // Errors a client can provoke say nothing of the next response,
            // and neither does a 206, which answers a Range request only.
            Self::Status(status) => {
                !is_client_provokable(*status) && *status != StatusCode::PARTIAL_CONTENT
            }
            Self::NoStore
            | Self::Private
            | Self::NoCache
            | Self::SetCookie
            | Self::VaryAll
            | Self::VaryInvalid
            | Self::TooLarge
            | Self::Trailers
            | Self::Stale => true,
            Self::HeadRequest
            | Self::RequestNoStore
            | Self::Authorization
            | Self::Cookie
            | Self::VarySplit
            | Self::Incomplete
            | Self::StoreFailed
            | Self::LockTimeout => false,
        }
    }
}

impl fmt::Display for NotStorable {
    /// A short token, as used in `Cache-Status: …; detail=`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadRequest => f.write_str("head-request"),
            Self::RequestNoStore => f.write_str("request-no-store"),
            Self::Status(status) => write!(f, "status-{}", status.as_u16()),
            Self::NoStore => f.write_str("no-store"),
            Self::Private => f.write_str("private"),
            Self::NoCache => f.write_str("no-cache"),
            Self::SetCookie => f.write_str("set-cookie"),
            Self::Authorization => f.write_str("authorization"),
            Self::Cookie => f.write_str("cookie"),
            Self::VaryAll => f.write_str("vary-star"),
            Self::VaryInvalid => f.write_str("vary-invalid"),
            Self::VarySplit => f.write_str("vary-split"),
            Self::TooLarge => f.write_str("too-large"),
            Self::Trailers => f.write_str("trailers"),
            Self::Incomplete => f.write_str("incomplete"),
            Self::Stale => f.write_str("stale"),
            Self::StoreFailed => f.write_str("store-failed"),
            Self::LockTimeout => f.write_str("lock-timeout"),
        }
    }
}

/// Whether a client can make the origin answer `status` at will (an
/// oversized header, a method override, a malformed target): every 4xx
/// but 404 and 410, and every 5xx. Stored only when a rule lists them.
pub(crate) fn is_client_provokable(status: StatusCode) -> bool {
    (status.is_client_error() && !matches!(status.as_u16(), 404 | 410)) || status.is_server_error()
}

/// What the policy needs to know about the request a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestFacts {
    /// The entry would be served to other users (the rule does not vary by
    /// user, or the request carries no identity).
    pub shared: bool,
    /// The request carried `Authorization`.
    pub authorized: bool,
    /// The request was a `HEAD` that would be stored as the `GET` entry.
    pub head_as_get: bool,
    /// The request said `Cache-Control: no-store`.
    pub no_store: bool,
    /// The request carried a `Cookie` header.
    pub cookie: bool,
}

/// What the policy needs to know about the rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleFacts<'a> {
    /// Request headers the key varies on.
    pub keyed: &'a [http::HeaderName],
    /// Statuses the rule stores beyond 200, with its TTL as the fallback.
    pub statuses: &'a [StatusCode],
    /// How long stale entries with validators are kept for revalidation.
    pub keep: Duration,
    /// Whether the origin's freshness counts; without it the rule's TTL
    /// overrides `no-cache` (but never `no-store` or `private`).
    pub respect_origin: bool,
    /// Whether responses to requests with cookies may be shared without
    /// `public` or `s-maxage`.
    pub share_cookie_requests: bool,
}

/// Decides whether a response with `status`, `headers` and `freshness` may be
/// stored for a request described by `facts`, under a rule described by `rule`.
///
/// A status is storable when the rule lists it, or it is 200, or it has
/// explicit freshness from the origin — except the errors a client can
/// provoke (4xx but 404 and 410, every 5xx), which only a listing allows,
/// however fresh the origin says they are. RFC 9110 §15.1 lets a cache
/// store 404, 405, 414 and 501 and others heuristically; cachet does not,
/// as Varnish and nginx do not: one crafted request would serve an error
/// to everyone (CPDoS). Partial content and 304 never are stored. A response that is stale on arrival
/// or says `no-cache` is stored only when it has a validator and the rule
/// keeps stale entries: every use then revalidates it (§4.3).
///
/// On success, returns the request headers the response varies on beyond
/// those the rule keys on (§4.1): its variants are stored by their values.
pub(crate) fn may_store(
    facts: RequestFacts,
    rule: RuleFacts<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    cc: &CacheControl,
    freshness: &Freshness,
) -> Result<Vec<HeaderName>, NotStorable> {
    if facts.head_as_get {
        return Err(NotStorable::HeadRequest);
    }
    if facts.no_store {
        return Err(NotStorable::RequestNoStore);
    }
    let code = status.as_u16();
    let status_allowed = rule.statuses.contains(&status)
        || code == 200
        || (freshness.explicit && !is_client_provokable(status));
    if !status_allowed || status.is_informational() || matches!(code, 206 | 304) {
        return Err(NotStorable::Status(status));
    }
    // must-understand: store only a status cachet implements, and then
    // ignore no-store (RFC 9111 §5.2.2.3).
    let must_understand = cc.has("must-understand");
    if must_understand && !is_understood(status) {
        return Err(NotStorable::Status(status));
    }
    if cc.has("no-store") && !must_understand {
        return Err(NotStorable::NoStore);
    }
    let revalidatable =
        !rule.keep.is_zero() && (headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED));
    if rule.respect_origin && cc.has("no-cache") && !revalidatable {
        return Err(NotStorable::NoCache);
    }
    if facts.shared && cc.has("private") {
        return Err(NotStorable::Private);
    }
    if headers.contains_key(SET_COOKIE) {
        return Err(NotStorable::SetCookie);
    }
    if facts.shared
        && facts.authorized
        && !(cc.has("public") || cc.has("s-maxage") || cc.has("must-revalidate"))
    {
        return Err(NotStorable::Authorization);
    }
    let vary = response_vary(headers, rule.keyed)?;
    let per_cookie = vary.contains(&COOKIE) || rule.keyed.contains(&COOKIE);
    if facts.shared
        && facts.cookie
        && !rule.share_cookie_requests
        && !per_cookie
        && !(cc.has("public") || cc.has("s-maxage"))
    {
        return Err(NotStorable::Cookie);
    }
    if freshness.remaining().is_zero() && !revalidatable {
        return Err(NotStorable::Stale);
    }
    Ok(vary)
}

/// The statuses whose caching semantics cachet implements (RFC 9110 §15:
/// the heuristically cacheable ones, redirects and 204).
fn is_understood(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 302 | 303 | 307 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: RequestFacts = RequestFacts {
        shared: true,
        authorized: false,
        head_as_get: false,
        no_store: false,
        cookie: false,
    };

    const KEYED: [http::HeaderName; 1] = [http::header::ACCEPT_LANGUAGE];
    const RULE: RuleFacts<'static> = RuleFacts {
        keyed: &KEYED,
        statuses: &[StatusCode::FOUND],
        keep: Duration::from_secs(300),
        respect_origin: true,
        share_cookie_requests: false,
    };

    /// `may_store` under `Cache-Control` alone.
    fn may_store(
        facts: RequestFacts,
        rule: RuleFacts<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        freshness: &Freshness,
    ) -> Result<Vec<HeaderName>, NotStorable> {
        let cc = CacheControl::from_headers(headers);
        super::may_store(facts, rule, status, headers, &cc, freshness)
    }

    fn fresh(headers: &HeaderMap) -> Freshness {
        crate::protocol::freshness::freshness(
            headers,
            &crate::protocol::targeted::Policy::untargeted(headers),
            std::time::SystemTime::UNIX_EPOCH,
            std::time::Duration::from_secs(60),
            true,
        )
    }

    fn check_status(status: u16, headers: &[(&str, &str)]) -> Result<(), NotStorable> {
        let map = header_map(headers);
        may_store(
            SHARED,
            RULE,
            StatusCode::from_u16(status).unwrap(),
            &map,
            &fresh(&map),
        )
        .map(drop)
    }

    use crate::test_support::header_map;

    fn check(facts: RequestFacts, headers: &[(&str, &str)]) -> Result<(), NotStorable> {
        let map = header_map(headers);
        may_store(facts, RULE, StatusCode::OK, &map, &fresh(&map)).map(drop)
    }

    #[test]
    fn must_understand_overrides_no_store_for_understood_statuses_rfc9111_5_2_2_3() {
        let cc = [("cache-control", "must-understand, no-store, max-age=60")];
        assert_eq!(check_status(200, &cc), Ok(()));
        assert_eq!(check_status(301, &cc), Ok(()));
        // A status cachet does not implement is never stored with it.
        assert_eq!(
            check_status(299, &[("cache-control", "must-understand, max-age=60")]),
            Err(NotStorable::Status(StatusCode::from_u16(299).unwrap()))
        );
        // Without must-understand, no-store still wins.
        assert_eq!(
            check_status(200, &[("cache-control", "no-store, max-age=60")]),
            Err(NotStorable::NoStore)
        );
    }

    #[test]
    fn plain_200_is_storable() {
        assert_eq!(check(SHARED, &[("content-type", "text/plain")]), Ok(()));
    }

    #[test]
    fn only_200_is_stored_on_the_rules_ttl() {
        assert_eq!(check_status(200, &[]), Ok(()));
        assert_eq!(check_status(302, &[]), Ok(()), "listed by the rule");
        for status in [203, 204, 300, 301, 307, 308, 404, 410] {
            let refused = Err(NotStorable::Status(StatusCode::from_u16(status).unwrap()));
            assert_eq!(check_status(status, &[]), refused, "{status}");
            assert_eq!(
                check_status(status, &[("cache-control", "public")]),
                refused,
                "{status}: public alone gives no freshness"
            );
            assert_eq!(
                check_status(status, &[("cache-control", "max-age=5")]),
                Ok(()),
                "{status} with explicit freshness"
            );
        }
    }

    #[test]
    fn errors_a_client_can_provoke_need_a_listing_cpdos() {
        for status in [400, 403, 405, 413, 414, 431, 500, 501, 502, 503] {
            let reason = NotStorable::Status(StatusCode::from_u16(status).unwrap());
            assert_eq!(check_status(status, &[]), Err(reason), "{status}");
            assert_eq!(
                check_status(status, &[("cache-control", "public, max-age=3600")]),
                Err(reason),
                "{status} even with explicit freshness"
            );
            assert!(!reason.marks_hit_for_miss());
            let code = StatusCode::from_u16(status).unwrap();
            let listed = RuleFacts {
                statuses: &[code],
                ..RULE
            };
            let map = header_map(&[]);
            assert_eq!(
                may_store(SHARED, listed, code, &map, &fresh(&map)).map(drop),
                Ok(()),
                "{status} listed"
            );
        }
        assert!(check_status(206, &[("cache-control", "max-age=5")]).is_err());
        assert!(check_status(304, &[("cache-control", "max-age=5")]).is_err());
    }

    #[test]
    fn cookie_requests_are_shared_only_when_the_response_allows_it() {
        let with_cookie = RequestFacts {
            cookie: true,
            ..SHARED
        };
        assert_eq!(check(with_cookie, &[]), Err(NotStorable::Cookie));
        assert_eq!(check(with_cookie, &[("cache-control", "public")]), Ok(()));
        assert_eq!(
            check(with_cookie, &[("cache-control", "s-maxage=60")]),
            Ok(())
        );
        assert_eq!(check(with_cookie, &[("vary", "Cookie")]), Ok(()));
        let sharing = RuleFacts {
            share_cookie_requests: true,
            ..RULE
        };
        let map = header_map(&[]);
        assert_eq!(
            may_store(with_cookie, sharing, StatusCode::OK, &map, &fresh(&map)).map(drop),
            Ok(())
        );
        let per_user = RequestFacts {
            shared: false,
            ..with_cookie
        };
        assert_eq!(check(per_user, &[]), Ok(()));
    }

    #[test]
    fn stale_on_arrival_is_not_stored_rfc9111_4_2() {
        assert_eq!(
            check_status(200, &[("cache-control", "max-age=0")]),
            Err(NotStorable::Stale)
        );
        assert_eq!(
            check_status(200, &[("expires", "0")]),
            Err(NotStorable::Stale)
        );
    }

    #[test]
    fn request_no_store_is_honoured_rfc9111_5_2_1_5() {
        let facts = RequestFacts {
            no_store: true,
            ..SHARED
        };
        assert_eq!(check(facts, &[]), Err(NotStorable::RequestNoStore));
    }

    #[test]
    fn directives_are_case_insensitive_across_lines() {
        assert_eq!(
            check(SHARED, &[("cache-control", "PRIVATE")]),
            Err(NotStorable::Private)
        );
        assert_eq!(
            check(
                SHARED,
                &[
                    ("cache-control", "max-age=5"),
                    ("cache-control", "No-Store")
                ]
            ),
            Err(NotStorable::NoStore)
        );
    }

    #[test]
    fn private_is_stored_per_user_only() {
        let per_user = RequestFacts {
            shared: false,
            ..SHARED
        };
        assert_eq!(check(per_user, &[("cache-control", "private")]), Ok(()));
    }

    #[test]
    fn set_cookie_is_never_stored() {
        let per_user = RequestFacts {
            shared: false,
            ..SHARED
        };
        assert_eq!(
            check(per_user, &[("set-cookie", "a=b")]),
            Err(NotStorable::SetCookie)
        );
    }

    #[test]
    fn authorization_needs_explicit_permission_when_shared() {
        let authorized = RequestFacts {
            authorized: true,
            ..SHARED
        };
        assert_eq!(check(authorized, &[]), Err(NotStorable::Authorization));
        assert_eq!(check(authorized, &[("cache-control", "public")]), Ok(()));
        assert_eq!(
            check(authorized, &[("cache-control", "s-maxage=5")]),
            Ok(())
        );
        let per_user = RequestFacts {
            shared: false,
            ..authorized
        };
        assert_eq!(check(per_user, &[]), Ok(()));
    }

    #[test]
    fn vary_star_is_never_stored_and_other_names_make_variants_rfc9111_4_1() {
        let map = header_map(&[("vary", " Accept-Language, Accept-Encoding ")]);
        let vary = may_store(SHARED, RULE, StatusCode::OK, &map, &fresh(&map)).unwrap();
        assert_eq!(
            vary,
            [http::header::ACCEPT_ENCODING],
            "keyed names need no variants"
        );
        assert_eq!(
            check(SHARED, &[("vary", "accept-language, *")]),
            Err(NotStorable::VaryAll)
        );
    }

    #[test]
    fn no_cache_and_stale_responses_are_stored_only_to_revalidate_rfc9111_4_3() {
        assert_eq!(
            check(SHARED, &[("cache-control", "no-cache")]),
            Err(NotStorable::NoCache)
        );
        assert_eq!(
            check(SHARED, &[("cache-control", "no-cache"), ("etag", "\"1\"")]),
            Ok(())
        );
        assert_eq!(
            check_status(
                200,
                &[
                    ("cache-control", "max-age=0"),
                    ("last-modified", "Tue, 01 Sep 2026 10:00:00 GMT")
                ]
            ),
            Ok(())
        );
        let keeps_nothing = RuleFacts {
            keep: Duration::ZERO,
            ..RULE
        };
        let map = header_map(&[("cache-control", "no-cache"), ("etag", "\"1\"")]);
        assert_eq!(
            may_store(SHARED, keeps_nothing, StatusCode::OK, &map, &fresh(&map)),
            Err(NotStorable::NoCache)
        );
    }

    #[test]
    fn head_never_becomes_the_get_entry() {
        let head = RequestFacts {
            head_as_get: true,
            ..SHARED
        };
        assert_eq!(check(head, &[]), Err(NotStorable::HeadRequest));
    }
}
