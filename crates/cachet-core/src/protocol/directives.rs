//! The request's own caching directives (RFC 9111 §5.2.1, and `Pragma`,
//! §5.4): what a client allows the cache to do for it.

use crate::protocol::cache_control::CacheControl;
use crate::request::RequestHead;
use http::header;
use std::time::Duration;

/// The directives of a request's `Cache-Control` (or, without one, its
/// `Pragma: no-cache`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    /// `no-cache`, `max-age=0` or `Pragma: no-cache`: do not answer from the
    /// cache without validating (§5.2.1.4); cachet forwards and stores anew.
    pub no_cache: bool,
    /// `no-store`: store nothing of this exchange (§5.2.1.5).
    pub no_store: bool,
    /// `max-age=N`: only entries at most N seconds old (§5.2.1.1).
    pub max_age: Option<u64>,
    /// `min-fresh=N`: only entries fresh for N more seconds (§5.2.1.3).
    pub min_fresh: Option<u64>,
    /// `only-if-cached`: never contact the origin; 504 on a miss (§5.2.1.7).
    pub only_if_cached: bool,
    /// `max-stale[=N]`: stale entries are acceptable, up to N seconds past
    /// their freshness (`u64::MAX` without a value) (§5.2.1.2).
    pub max_stale: Option<u64>,
}

/// What a shared cache does with a client's `no-cache` (`max-age=0`,
/// `Pragma: no-cache`): `[security] client_no_cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ClientNoCache {
    /// Revalidate with the origin (RFC 9111 §5.2.1.4), coalesced: requests
    /// that must revalidate one entry share one conditional request, and
    /// each takes a response the cache received after it arrived.
    #[default]
    Revalidate,
    /// Answer from the cache as if the client had not asked: a shared cache
    /// the origin controls need not honour it (Varnish's default).
    Ignore,
}

impl RequestDirectives {
    /// These directives with the client's wish to revalidate dropped
    /// ([`ClientNoCache::Ignore`]).
    pub(crate) fn ignoring_no_cache(self) -> Self {
        Self {
            no_cache: false,
            max_age: self.max_age.filter(|&max| max > 0),
            ..self
        }
    }

    /// Reads the directives of `req`.
    pub(crate) fn of(req: &dyn RequestHead) -> Self {
        let mut lines: Vec<&[u8]> = Vec::new();
        req.header_values(&header::CACHE_CONTROL, &mut |line| lines.push(line));
        if lines.is_empty() {
            let mut pragma_no_cache = false;
            req.header_values(&header::PRAGMA, &mut |line| {
                pragma_no_cache |= CacheControl::parse([line]).has("no-cache");
            });
            return Self {
                no_cache: pragma_no_cache,
                ..Self::default()
            };
        }
        let cc = CacheControl::parse(lines);
        let max_age = cc.seconds("max-age");
        Self {
            no_cache: cc.has("no-cache") || max_age == Some(0),
            no_store: cc.has("no-store"),
            max_age,
            min_fresh: cc.seconds("min-fresh"),
            only_if_cached: cc.has("only-if-cached"),
            max_stale: cc
                .has("max-stale")
                .then(|| cc.seconds("max-stale").unwrap_or(u64::MAX)),
        }
    }

    /// Whether an entry of `age`, fresh for `ttl` more, may answer this request.
    pub(crate) fn accepts(&self, age: Duration, ttl: Duration) -> bool {
        !self.no_cache
            && self.max_age.is_none_or(|max| age.as_secs() <= max)
            && self.min_fresh.is_none_or(|min| ttl.as_secs() >= min)
    }

    /// Whether an entry of `age`, stale within its `stale-while-revalidate`
    /// window, may answer this request while it is refreshed: unless the
    /// request wants a validated response (`no-cache`), a younger one
    /// (`max-age`) or a fresh one (`min-fresh`).
    pub(crate) fn accepts_while_revalidating(&self, age: Duration) -> bool {
        !self.no_cache
            && self.max_age.is_none_or(|max| age.as_secs() <= max)
            && self.min_fresh.is_none_or(|min| min == 0)
    }

    /// Whether an entry of `age`, stale for `staleness`, may answer this
    /// request without revalidation. Only `max-stale` allows it, and never
    /// for a response that forbids it (`must-revalidate`, `proxy-revalidate`,
    /// `s-maxage`, `no-cache`: `forbids_stale`) (§4.2.4, §5.2.2.2).
    pub(crate) fn accepts_stale(
        &self,
        age: Duration,
        staleness: Duration,
        forbids_stale: bool,
    ) -> bool {
        !forbids_stale
            && self.max_stale.is_some_and(|max| staleness.as_secs() <= max)
            && self.accepts_while_revalidating(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(headers: &[(&str, &str)]) -> RequestDirectives {
        RequestDirectives::of(&crate::test_support::request(headers))
    }

    const AGE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(30);

    #[test]
    fn no_cache_and_max_age_zero_force_the_origin_rfc9111_5_2_1_4() {
        assert!(!of(&[("cache-control", "no-cache")]).accepts(AGE, TTL));
        assert!(!of(&[("cache-control", "max-age=0")]).accepts(Duration::ZERO, TTL));
        assert!(of(&[]).accepts(AGE, TTL));
    }

    #[test]
    fn pragma_counts_only_without_cache_control_rfc9111_5_4() {
        assert!(of(&[("pragma", "no-cache")]).no_cache);
        assert!(!of(&[("pragma", "no-cache"), ("cache-control", "max-age=60")]).no_cache);
    }

    #[test]
    fn max_age_and_min_fresh_bound_the_entry_rfc9111_5_2_1_1_and_5_2_1_3() {
        assert!(of(&[("cache-control", "max-age=30")]).accepts(AGE, TTL));
        assert!(!of(&[("cache-control", "max-age=29")]).accepts(AGE, TTL));
        assert!(of(&[("cache-control", "min-fresh=30")]).accepts(AGE, TTL));
        assert!(!of(&[("cache-control", "min-fresh=31")]).accepts(AGE, TTL));
    }

    #[test]
    fn no_store_and_only_if_cached_are_read() {
        let d = of(&[("cache-control", "No-Store, ONLY-IF-CACHED")]);
        assert!(d.no_store && d.only_if_cached);
    }

    #[test]
    fn max_stale_accepts_stale_entries_within_its_bound_rfc9111_5_2_1_2() {
        let stale = Duration::from_secs(20);
        assert!(!of(&[]).accepts_stale(AGE, stale, false));
        assert!(of(&[("cache-control", "max-stale")]).accepts_stale(AGE, stale, false));
        assert!(of(&[("cache-control", "max-stale=20")]).accepts_stale(AGE, stale, false));
        assert!(!of(&[("cache-control", "max-stale=19")]).accepts_stale(AGE, stale, false));
        assert!(!of(&[("cache-control", "max-stale, max-age=29")]).accepts_stale(AGE, stale, false));
    }

    #[test]
    fn max_stale_never_overrides_must_revalidate_and_kin_rfc9111_5_2_2_2() {
        let stale = Duration::from_secs(1);
        assert!(!of(&[("cache-control", "max-stale")]).accepts_stale(AGE, stale, true));
    }
}
