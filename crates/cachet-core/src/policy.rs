//! Whether a response may be stored (RFC 9111 §3, with the shared-cache rules
//! of §3.5 for every entry that is not scoped to one user).

use crate::cache_control::CacheControl;
use http::header::{SET_COOKIE, VARY};
use http::{HeaderMap, StatusCode};
use std::fmt;

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotStorable {
    /// A `HEAD` response never becomes the `GET` entry.
    HeadRequest,
    /// The status is not one the cache stores.
    Status(StatusCode),
    /// `Cache-Control: no-store` (RFC 9111 §5.2.2.5).
    NoStore,
    /// `Cache-Control: private` on an entry shared between users (§5.2.2.7).
    Private,
    /// `Cache-Control: no-cache`: every use needs revalidation (§5.2.2.4).
    NoCache,
    /// `Set-Cookie`: replaying it would hand one client's cookie to another.
    SetCookie,
    /// The request had `Authorization` and the response does not allow a
    /// shared cache to store it (§3.5).
    Authorization,
    /// `Vary: *` (§4.1).
    VaryAll,
    /// `Vary` names a request header the rule does not key on.
    VaryUnkeyed,
    /// The body is larger than the rule's `max_body`.
    TooLarge,
    /// The body ended with trailers, which the cache does not keep.
    Trailers,
}

impl fmt::Display for NotStorable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeadRequest => f.write_str("HEAD response"),
            Self::Status(status) => write!(f, "status {}", status.as_u16()),
            Self::NoStore => f.write_str("no-store"),
            Self::Private => f.write_str("private"),
            Self::NoCache => f.write_str("no-cache"),
            Self::SetCookie => f.write_str("set-cookie"),
            Self::Authorization => f.write_str("authorization"),
            Self::VaryAll => f.write_str("vary *"),
            Self::VaryUnkeyed => f.write_str("vary on an unkeyed header"),
            Self::TooLarge => f.write_str("body too large"),
            Self::Trailers => f.write_str("trailers"),
        }
    }
}

/// What the policy needs to know about the request a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    /// The entry would be served to other users (the rule does not vary by
    /// user, or the request carries no identity).
    pub shared: bool,
    /// The request carried `Authorization`.
    pub authorized: bool,
    /// The request was a `HEAD` that would be stored as the `GET` entry.
    pub head_as_get: bool,
}

/// Decides whether a response with `status` and `headers` may be stored for a
/// request described by `facts`, keyed on the request headers `keyed`.
pub fn check_storable(
    facts: RequestFacts,
    keyed: &[http::HeaderName],
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(), NotStorable> {
    if facts.head_as_get {
        return Err(NotStorable::HeadRequest);
    }
    if status != StatusCode::OK {
        return Err(NotStorable::Status(status));
    }
    let cc = CacheControl::from_headers(headers);
    if cc.has("no-store") {
        return Err(NotStorable::NoStore);
    }
    if cc.has("no-cache") {
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
    for line in headers.get_all(VARY) {
        for name in String::from_utf8_lossy(line.as_bytes()).split(',') {
            let name = name.trim();
            if name == "*" {
                return Err(NotStorable::VaryAll);
            }
            if !name.is_empty()
                && !keyed
                    .iter()
                    .any(|keyed| keyed.as_str().eq_ignore_ascii_case(name))
            {
                return Err(NotStorable::VaryUnkeyed);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: RequestFacts = RequestFacts {
        shared: true,
        authorized: false,
        head_as_get: false,
    };

    fn check(facts: RequestFacts, headers: &[(&str, &str)]) -> Result<(), NotStorable> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        check_storable(
            facts,
            &[http::header::ACCEPT_LANGUAGE],
            StatusCode::OK,
            &map,
        )
    }

    #[test]
    fn plain_200_is_storable() {
        assert_eq!(check(SHARED, &[("content-type", "text/plain")]), Ok(()));
    }

    #[test]
    fn only_200_is_stored() {
        let not_found = check_storable(SHARED, &[], StatusCode::NOT_FOUND, &HeaderMap::new());
        assert_eq!(not_found, Err(NotStorable::Status(StatusCode::NOT_FOUND)));
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
        assert_eq!(
            check(SHARED, &[("cache-control", "no-cache")]),
            Err(NotStorable::NoCache)
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
    fn vary_must_be_keyed() {
        assert_eq!(check(SHARED, &[("vary", " Accept-Language ")]), Ok(()));
        assert_eq!(
            check(SHARED, &[("vary", "accept-language, *")]),
            Err(NotStorable::VaryAll)
        );
        assert_eq!(
            check(SHARED, &[("vary", "accept-encoding")]),
            Err(NotStorable::VaryUnkeyed)
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
