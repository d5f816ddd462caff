//! Invalidation after unsafe requests (RFC 9111 §4.4), and purging by tag,
//! URI and key pattern.
//!
//! An adapter asks [`Cache::invalidation`] before forwarding a request: it
//! answers `None` for safe methods, so reads pay nothing. Once the origin
//! has answered, [`Cache::invalidate`] clears — only for a 2xx or 3xx —
//! the target URI, the same-origin `Location` and `Content-Location`, the
//! keys the rule's `invalidates` regexes match, the response's tags, and
//! the groups its `Cache-Group-Invalidation` names on its origin (RFC 9875).

use crate::cache::Cache;
use crate::config::rules::{CompiledRule, InvalidateScope};
use crate::key::{CacheKey, KeyBuilder};
use crate::protocol::host::normalize_host;
use crate::protocol::tags::{uri_term, CACHE_GROUP_INVALIDATION};
use crate::protocol::target::canonical_path;
use crate::request::RequestHead;
use crate::stats::PurgeKind;
use crate::store::entry::Entry;
use crate::store::StoreError;
use http::header::{self, HeaderMap};
use http::StatusCode;
use regex::Regex;
use std::sync::Arc;

/// What a mutation may clear, captured from its request before it goes to
/// the origin.
#[derive(Debug, Clone)]
pub struct Invalidation {
    target: Arc<str>,
    authority: Option<String>,
    rule: Option<Arc<CompiledRule>>,
    user: Option<String>,
}

impl Invalidation {
    /// The index term of the target URI.
    pub fn target(&self) -> &str {
        &self.target
    }
}

/// Methods that never change the target's state (RFC 9110 §9.2.1): every
/// other method, known or not, invalidates.
/// The normalized host a request was made to: what scopes its URI terms
/// and its Cache Groups.
pub(crate) fn request_origin(req: &dyn RequestHead) -> Option<String> {
    req.header(&header::HOST)
        .or_else(|| req.authority())
        .and_then(|host| normalize_host(host).map(std::borrow::Cow::into_owned))
}

fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

impl Cache {
    /// The invalidation a request will cause if the origin accepts it:
    /// `None` for safe methods (GET, HEAD, OPTIONS, TRACE).
    pub(crate) fn invalidation(&self, req: &dyn RequestHead) -> Option<Invalidation> {
        // Before matching a rule: nearly every request is a GET.
        if is_safe(req.method()) {
            return None;
        }
        let rule = canonical_path(req.path())
            .ok()
            .and_then(|path| self.inner.rules.find(&path).cloned());
        self.invalidation_under(req, rule)
    }

    /// [`invalidation`](Self::invalidation) of a request under `rule` (the
    /// one it matched, or a handler's), whose `invalidates` regexes and
    /// scope apply.
    pub(crate) fn invalidation_under(
        &self,
        req: &dyn RequestHead,
        rule: Option<Arc<CompiledRule>>,
    ) -> Option<Invalidation> {
        if is_safe(req.method()) {
            return None;
        }
        let authority = request_origin(req);
        let target = self.uri_term_of(req.path(), req.query(), authority.as_deref());
        let user = match rule.as_ref().map(|rule| rule.invalidate_scope()) {
            Some(InvalidateScope::User) => {
                let mut token = String::from(" u=");
                match self.inner.identity.of(req) {
                    Some(hash) => hash.push_hex(&mut token),
                    None => token.push('-'),
                }
                Some(token)
            }
            _ => None,
        };
        Some(Invalidation {
            target,
            authority,
            rule,
            user,
        })
    }

    /// Clears what `invalidation` names, when the origin's `status` says the
    /// mutation happened (2xx or 3xx); nothing otherwise. `headers` are the
    /// response's (for `Location` and `Content-Location`), `tags` its tags
    /// (see [`Cache::take_tags`]). Returns how many entries went.
    pub(crate) async fn invalidate(
        &self,
        invalidation: &Invalidation,
        status: StatusCode,
        headers: &HeaderMap,
        tags: &[Arc<str>],
    ) -> Result<usize, StoreError> {
        if !(status.is_success() || status.is_redirection()) {
            return Ok(0);
        }
        let soft = invalidation
            .rule
            .as_ref()
            .is_some_and(|rule| rule.soft_invalidation());
        self.inner.purges.count_as(PurgeKind::Invalidation, soft);
        let mut terms: Vec<Arc<str>> = vec![Arc::clone(&invalidation.target)];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(term) = headers
                .get(&name)
                .and_then(|value| self.same_origin_term(value.as_bytes(), invalidation))
            {
                terms.push(term);
            }
        }
        terms.extend(tags.iter().cloned());
        terms.extend(self.group_terms(
            headers,
            &CACHE_GROUP_INVALIDATION,
            invalidation.authority.as_deref(),
        ));
        let scope = invalidation.user.as_deref();
        let mut removed = 0;
        for term in &terms {
            removed += self.remove_tagged(term, scope, soft).await?;
        }
        if let Some(rule) = &invalidation.rule {
            for pattern in rule.invalidates() {
                removed += self.remove_matching(pattern, scope, soft).await?;
            }
        }
        tracing::debug!(target = %invalidation.target, removed, "invalidated after a mutation");
        Ok(removed)
    }

    /// Deletes every entry tagged `tag`, in every named cache; how many.
    /// Only the tagged entries are touched (the store keeps a tag index).
    pub async fn purge_tag(&self, tag: &str) -> Result<usize, StoreError> {
        self.purge_tag_as(tag, false).await
    }

    pub(crate) async fn purge_tag_as(&self, tag: &str, soft: bool) -> Result<usize, StoreError> {
        self.inner.purges.count_as(PurgeKind::Tag, soft);
        self.remove_tagged(tag, None, soft).await
    }

    /// Deletes every entry of the URI `path` (with `query`): all methods,
    /// users and variants; how many.
    ///
    /// A cache that keys by host (a reverse proxy) purges the URI on every
    /// host; see [`purge_uri_on`](Self::purge_uri_on) for one.
    pub async fn purge_uri(&self, path: &str, query: Option<&str>) -> Result<usize, StoreError> {
        self.purge_uri_as(path, query, false).await
    }

    pub(crate) async fn purge_uri_as(
        &self,
        path: &str,
        query: Option<&str>,
        soft: bool,
    ) -> Result<usize, StoreError> {
        self.inner.purges.count_as(PurgeKind::Uri, soft);
        if !self.inner.key_host {
            let term = self.uri_term_of(path, query, None);
            return self.remove_tagged(&term, None, soft).await;
        }
        // Keys start with the target: scan for it on every host.
        let target = self.target_of(path, query);
        let mut removed = 0;
        for cache in self.inner.caches.keys() {
            for key in self.inner.store.keys(cache).await? {
                if key.as_str().split(' ').next() == Some(target.as_str()) {
                    removed += usize::from(self.drop_entry(cache, &key, soft).await?);
                }
            }
        }
        Ok(removed)
    }

    /// Deletes every entry of the URI `path` (with `query`) on `host`: all
    /// methods, users and variants; how many. Without host keys, the same
    /// as [`purge_uri`](Self::purge_uri).
    pub async fn purge_uri_on(
        &self,
        host: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<usize, StoreError> {
        self.purge_uri_on_as(host, path, query, false).await
    }

    pub(crate) async fn purge_uri_on_as(
        &self,
        host: &str,
        path: &str,
        query: Option<&str>,
        soft: bool,
    ) -> Result<usize, StoreError> {
        self.inner.purges.count_as(PurgeKind::Uri, soft);
        let host = normalize_host(host.as_bytes());
        let term = self.uri_term_of(path, query, host.as_deref());
        self.remove_tagged(&term, None, soft).await
    }

    /// The index term entries of the URI `path` with `query` carry: the
    /// canonical target as the rule matching it keys it, with the host
    /// (normalized; `None` when the request named none) when keys hold it.
    fn uri_term_of(&self, path: &str, query: Option<&str>, host: Option<&str>) -> Arc<str> {
        let target = self.target_of(path, query);
        if !self.inner.key_host {
            return uri_term(target.as_str(), None);
        }
        let host = format!("@{}", host.filter(|host| !host.is_empty()).unwrap_or("-"));
        uri_term(target.as_str(), Some(&host))
    }

    /// The target the keys of the URI `path` with `query` start with:
    /// canonical, with the query as the rule matching it keys it.
    fn target_of(&self, path: &str, query: Option<&str>) -> KeyBuilder {
        let normalize_query = canonical_path(path)
            .ok()
            .and_then(|path| {
                self.inner
                    .rules
                    .find(&path)
                    .map(|rule| rule.normalize_query())
            })
            .unwrap_or(false);
        KeyBuilder::for_target(path, query, normalize_query)
    }

    /// The index term of a `Location`/`Content-Location` value when it
    /// points at the same origin as the request (RFC 9111 §4.4: other
    /// origins' URIs are never invalidated — that would let one origin
    /// purge another's). Hosts compare normalized, as keys hold them.
    fn same_origin_term(&self, value: &[u8], invalidation: &Invalidation) -> Option<Arc<str>> {
        let uri = http::Uri::try_from(value.trim_ascii()).ok()?;
        if let Some(authority) = uri.authority() {
            let host = invalidation.authority.as_deref()?;
            if normalize_host(authority.as_str().as_bytes()).as_deref() != Some(host) {
                return None;
            }
        }
        let path = uri.path();
        if !path.starts_with('/') {
            return None;
        }
        Some(self.uri_term_of(path, uri.query(), invalidation.authority.as_deref()))
    }

    /// Removes the entries indexed under `term`, keeping other users' when
    /// `scope` names one user's key token.
    async fn remove_tagged(
        &self,
        term: &str,
        scope: Option<&str>,
        soft: bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for cache in self.inner.caches.keys() {
            for key in self.inner.store.tagged(cache, term).await? {
                if in_scope(key.as_str(), scope) {
                    removed += usize::from(self.drop_entry(cache, &key, soft).await?);
                }
            }
        }
        Ok(removed)
    }

    /// Removes `key` of `cache` or, when `soft`, makes its response stale
    /// instead (Varnish's soft purge): the next request revalidates it with
    /// its validators, and others may be served it stale within its
    /// windows. A response that would not be kept stale, a variant index
    /// and a value are removed. The stale copy replaces the entry through
    /// a removal, so a shared tier drops every instance's copy too.
    /// Whether there was an entry.
    pub(crate) async fn drop_entry(
        &self,
        cache: &str,
        key: &CacheKey,
        soft: bool,
    ) -> Result<bool, StoreError> {
        let store = &self.inner.store;
        if !soft {
            return store.remove(cache, key).await;
        }
        let now = self.inner.clock.now();
        let stale = match store.get(cache, key, now).await? {
            None => return Ok(false),
            Some(Entry::Response(entry)) => {
                if !entry.is_fresh(now) {
                    // Stale already: nothing to do.
                    return Ok(true);
                }
                entry.made_stale(now)
            }
            // A variant index stays: its variants are purged themselves.
            Some(Entry::Variants(_)) => return Ok(false),
            Some(Entry::Value(_)) => None,
        };
        let found = store.remove(cache, key).await?;
        if let Some(stale) = stale {
            store.insert(cache, key, Entry::from(stale)).await?;
        }
        Ok(found)
    }

    /// Removes the keys `pattern` matches, keeping other users' when
    /// `scope` names one user's key token.
    pub(crate) async fn remove_matching(
        &self,
        pattern: &Regex,
        scope: Option<&str>,
        soft: bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for stored in self.keys_matching(pattern).await? {
            if in_scope(stored.key.as_str(), scope) {
                removed += usize::from(self.drop_entry(&stored.cache, &stored.key, soft).await?);
            }
        }
        Ok(removed)
    }
}

/// Whether a key is cleared by a mutation scoped to the user whose key
/// token (` u=…`) is `scope`: shared keys (no user part) and that user's.
fn in_scope(key: &str, scope: Option<&str>) -> bool {
    match scope {
        None => true,
        Some(token) => !key.contains(" u=") || key.contains(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalidation(cache: &Cache, host: Option<&str>) -> Invalidation {
        let mut req = http::Request::post("/a");
        if let Some(host) = host {
            req = req.header("host", host);
        }
        cache.invalidation(&req.body(()).unwrap()).unwrap()
    }

    fn cache(key_host: bool) -> Cache {
        Cache::builder()
            .rule(crate::Rule::new("^/items/").normalize_query(true))
            .key_host(key_host)
            .build()
            .unwrap()
    }

    #[test]
    fn only_same_origin_locations_are_invalidated_rfc9111_4_4() {
        let cache = cache(false);
        let same = invalidation(&cache, Some("example.com"));
        let term = |value: &[u8], inv: &Invalidation| cache.same_origin_term(value, inv);
        assert_eq!(
            term(b"/items/5?b=2&a=1", &same).as_deref(),
            Some("uri /items/5?a=1&b=2")
        );
        assert_eq!(
            term(b"http://EXAMPLE.com:80/items/5", &same).as_deref(),
            Some("uri /items/5")
        );
        // A trailing dot names another origin (the WHATWG URL standard).
        assert_eq!(term(b"http://example.com./items/5", &same), None);
        assert_eq!(term(b"https://evil.example/items/5", &same), None);
        assert_eq!(
            term(b"http://example.com/x", &invalidation(&cache, None)),
            None
        );
        assert_eq!(term(b"not a uri", &same), None);
    }

    #[tokio::test]
    async fn a_uri_is_purged_on_every_host_or_on_one() {
        let cache = cache(true);
        for host in ["a.example", "b.example"] {
            for path in ["/items/1?b&a", "/items/2"] {
                let req = http::Request::get(path)
                    .header("host", host)
                    .body(())
                    .unwrap();
                let crate::engine::Route::Cache(plan) = cache.route(&req) else {
                    panic!("cached")
                };
                let mut headers = HeaderMap::new();
                let status = StatusCode::OK;
                let storable = cache.admit(&plan, status, &headers).unwrap();
                let body = bytes::Bytes::from_static(b"x");
                assert!(
                    cache
                        .store(&plan, storable, &req, status, &mut headers, body)
                        .await
                );
            }
        }
        let on_b = cache.purge_uri_on("B.example", "/items/2", None).await;
        assert_eq!(on_b.unwrap(), 1);
        let everywhere = cache.purge_uri("/items/1", Some("a&b")).await;
        assert_eq!(
            everywhere.unwrap(),
            2,
            "normalized the way the rule keys it"
        );
        let left: Vec<String> = cache
            .keys()
            .await
            .unwrap()
            .iter()
            .map(|stored| stored.key.to_string())
            .collect();
        assert_eq!(left, ["/items/2 GET @a.example"]);
    }

    #[test]
    fn terms_carry_the_host_when_keys_do() {
        let cache = cache(true);
        let on_a = invalidation(&cache, Some("A.example:80"));
        assert_eq!(on_a.target(), "uri /a @a.example");
        assert_eq!(
            cache.same_origin_term(b"/items/1?b&a", &on_a).as_deref(),
            Some("uri /items/1?a&b @a.example")
        );
        assert_eq!(invalidation(&cache, None).target(), "uri /a @-");
    }

    #[test]
    fn user_scope_keeps_other_users_keys() {
        let mine = Some(" u=aa");
        assert!(in_scope("/a GET u=aa", mine));
        assert!(in_scope("/a GET", mine), "shared entries are everyone's");
        assert!(!in_scope("/a GET u=bb", mine));
        assert!(in_scope("/a GET u=bb", None));
    }

    #[test]
    fn safe_methods_never_invalidate_rfc9110_9_2_1() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(is_safe(method));
        }
        for method in ["POST", "PUT", "PATCH", "DELETE", "PURGE", "REPORT"] {
            assert!(!is_safe(method));
        }
    }
}
