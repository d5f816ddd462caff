//! Headers a handler puts on its own responses to tell browsers and CDNs how
//! to cache them (a Django app's `get_cache_headers` helper, Django's
//! `patch_cache_control`, `cache_control` and `never_cache`).

use crate::protocol::cache_control::CacheControl;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// Who may store a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Any cache, shared ones included (`public`).
    Public,
    /// Only the user's own cache (`private`): per-user data.
    Private,
}

/// `Cache-Control` (and optionally `Vary`) for a response cacheable for `ttl`.
///
/// ```
/// use cachet_core::{Visibility, cache_headers};
/// use std::time::Duration;
///
/// let headers = cache_headers(Duration::from_secs(3600), Visibility::Public)
///     .stale_while_revalidate(Duration::from_secs(60))
///     .vary([http::header::ACCEPT_LANGUAGE])
///     .into_header_map();
/// assert_eq!(headers["cache-control"], "public, max-age=3600, stale-while-revalidate=60");
/// assert_eq!(headers["vary"], "accept-language");
///
/// let private = cache_headers(Duration::from_secs(300), Visibility::Private).into_header_map();
/// assert_eq!(private["cache-control"], "private, max-age=300");
/// ```
///
/// A response with `Vary` that passes through a cachet rule is stored as
/// one variant per request value of the headers it names.
pub fn cache_headers(ttl: Duration, visibility: Visibility) -> CacheHeaders {
    let cc = match visibility {
        Visibility::Public => CacheControl::new().public(),
        Visibility::Private => CacheControl::new().private(),
    };
    CacheHeaders {
        cache_control: cc.max_age(ttl),
        cdn: None,
        vary: Vec::new(),
    }
}

/// Headers that keep every cache from storing a response (Django's
/// `never_cache`): `Cache-Control: max-age=0, no-cache, no-store,
/// must-revalidate, private` and an already-past `Expires`.
pub fn never_cache() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(2);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
    // RFC 9111 §5.3: an invalid date such as "0" means "already expired".
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    headers
}

/// The result of [`cache_headers`]; add `Vary` names, then take the headers.
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheHeaders {
    cache_control: CacheControl,
    /// `CDN-Cache-Control` (RFC 9213), when set.
    cdn: Option<CacheControl>,
    vary: Vec<HeaderName>,
}

impl CacheHeaders {
    /// Names request headers the response depends on (`Vary`): `HeaderName`s
    /// or strings; invalid names are skipped.
    pub fn vary<I, H>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        self.vary.extend(
            names
                .into_iter()
                .filter_map(|name| HeaderName::from_bytes(name.as_ref().as_bytes()).ok()),
        );
        self
    }

    /// `CDN-Cache-Control: max-age=N` (RFC 9213): how long cachet and the
    /// CDNs in front of it keep the response, whatever `Cache-Control`
    /// tells browsers (which then never reaches those caches' decisions).
    ///
    /// ```
    /// use cachet_core::{Visibility, cache_headers};
    /// use std::time::Duration;
    ///
    /// let headers = cache_headers(Duration::from_secs(60), Visibility::Public)
    ///     .cdn_max_age(Duration::from_secs(3600))
    ///     .into_header_map();
    /// assert_eq!(headers["cache-control"], "public, max-age=60");
    /// assert_eq!(headers["cdn-cache-control"], "max-age=3600");
    /// ```
    pub fn cdn_max_age(mut self, age: Duration) -> Self {
        self.cdn = Some(self.cdn.unwrap_or_default().max_age(age));
        self
    }

    /// `CDN-Cache-Control: no-store`: cachet and CDNs never store the
    /// response, while browsers still follow `Cache-Control`.
    pub fn cdn_no_store(mut self) -> Self {
        self.cdn = Some(self.cdn.unwrap_or_default().directive("no-store", None));
        self
    }

    /// `s-maxage`: how long shared caches (cachet, a CDN) keep it, when
    /// that differs from browsers' `max-age` (RFC 9111 §5.2.2.10).
    pub fn s_maxage(mut self, age: Duration) -> Self {
        self.cache_control = self.cache_control.s_maxage(age);
        self
    }

    /// `stale-while-revalidate`: how long after going stale it may be
    /// served while one background request refreshes it (RFC 5861 §3).
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.cache_control = self.cache_control.stale_while_revalidate(window);
        self
    }

    /// `stale-if-error`: how long after going stale it may be served when
    /// the origin fails (RFC 5861 §4).
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.cache_control = self.cache_control.stale_if_error(window);
        self
    }

    /// `immutable`: the body never changes while fresh (RFC 8246).
    pub fn immutable(mut self) -> Self {
        self.cache_control = self.cache_control.immutable();
        self
    }

    /// Adds any other `Cache-Control` directive.
    pub fn directive(mut self, name: &str, value: Option<&str>) -> Self {
        self.cache_control = self.cache_control.directive(name, value);
        self
    }

    /// The headers, ready to add to a response (an axum `HeaderMap` part).
    pub fn into_header_map(self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        if let Some(value) = self.cache_control.to_header_value() {
            headers.insert(header::CACHE_CONTROL, value);
        }
        if let Some(value) = self.cdn.and_then(|cdn| cdn.to_header_value()) {
            headers.insert(crate::protocol::targeted::CDN_CACHE_CONTROL, value);
        }
        if !self.vary.is_empty() {
            let names: Vec<&str> = self.vary.iter().map(HeaderName::as_str).collect();
            if let Ok(value) = HeaderValue::try_from(names.join(", ")) {
                headers.insert(header::VARY, value);
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_cache_forbids_every_cache() {
        let headers = never_cache();
        let cc = CacheControl::from_headers(&headers);
        assert!(cc.has("no-store") && cc.has("no-cache") && cc.has("private"));
        assert_eq!(headers[header::EXPIRES], "0");
    }

    #[test]
    fn directives_and_vary_are_added() {
        let headers = cache_headers(Duration::from_secs(60), Visibility::Public)
            .directive("stale-while-revalidate", Some("30"))
            .vary(["Accept", "not a header"])
            .into_header_map();
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=60, stale-while-revalidate=30"
        );
        assert_eq!(headers[header::VARY], "accept");
    }
}
