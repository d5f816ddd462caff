//! Invalidation after unsafe requests (RFC 9111 §4.4), and purging by tag,
//! URI and key pattern.
//!
//! An adapter asks [`Cache::invalidation`] before forwarding a request: it
//! answers `None` for safe methods, so reads pay nothing. Once the origin
//! has answered, [`Cache::invalidate`] clears — only for a 2xx or 3xx —
//! the target URI, the same-origin `Location` and `Content-Location`, the
//! keys the rule's `invalidates` regexes match, and the response's tags.

use crate::cache::Cache;
use crate::error::StoreError;
use crate::request::RequestHead;
use crate::rules::{CompiledRule, InvalidateScope};
use crate::tags::uri_term_of;
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
fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

impl Cache {
    /// The invalidation a request will cause if the origin accepts it:
    /// `None` for safe methods (GET, HEAD, OPTIONS, TRACE).
    pub fn invalidation(&self, req: &dyn RequestHead) -> Option<Invalidation> {
        if is_safe(req.method()) {
            return None;
        }
        let target = uri_term_of(req.path(), req.query());
        let authority = req
            .header(&header::HOST)
            .and_then(|host| std::str::from_utf8(host).ok())
            .map(|host| host.trim().to_ascii_lowercase());
        let rule = self.inner.rules.find(req.path()).cloned();
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
    pub async fn invalidate(
        &self,
        invalidation: &Invalidation,
        status: StatusCode,
        headers: &HeaderMap,
        tags: &[Arc<str>],
    ) -> Result<usize, StoreError> {
        if !(status.is_success() || status.is_redirection()) {
            return Ok(0);
        }
        let mut terms: Vec<Arc<str>> = vec![Arc::clone(&invalidation.target)];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            if let Some(term) = headers
                .get(&name)
                .and_then(|value| same_origin_term(value.as_bytes(), invalidation))
            {
                terms.push(term);
            }
        }
        terms.extend(tags.iter().cloned());
        let scope = invalidation.user.as_deref();
        let mut removed = 0;
        for term in &terms {
            removed += self.remove_tagged(term, scope).await?;
        }
        if let Some(rule) = &invalidation.rule {
            for pattern in rule.invalidates() {
                removed += self.remove_matching(pattern, scope).await?;
            }
        }
        tracing::debug!(target = %invalidation.target, removed, "invalidated after a mutation");
        Ok(removed)
    }

    /// Deletes every entry tagged `tag`, in every named cache; how many.
    /// Only the tagged entries are touched (the store keeps a tag index).
    pub async fn purge_tag(&self, tag: &str) -> Result<usize, StoreError> {
        self.remove_tagged(tag, None).await
    }

    /// Deletes every entry of the URI `path` (with `query`): all methods,
    /// users and variants; how many.
    pub async fn purge_uri(&self, path: &str, query: Option<&str>) -> Result<usize, StoreError> {
        let term = uri_term_of(path, query);
        self.remove_tagged(&term, None).await
    }

    /// Removes the entries indexed under `term`, keeping other users' when
    /// `scope` names one user's key token.
    async fn remove_tagged(&self, term: &str, scope: Option<&str>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for cache in self.inner.caches.keys() {
            for key in self.inner.store.tagged(cache, term).await? {
                if in_scope(key.as_str(), scope) {
                    removed += usize::from(self.inner.store.remove(cache, key.as_str()).await?);
                }
            }
        }
        Ok(removed)
    }

    /// Removes the keys `pattern` matches, keeping other users' when
    /// `scope` names one user's key token.
    pub(crate) async fn remove_matching(
        &self,
        pattern: &Regex,
        scope: Option<&str>,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for stored in self.keys_matching(pattern).await? {
            if in_scope(stored.key.as_str(), scope) {
                removed += usize::from(
                    self.inner
                        .store
                        .remove(&stored.cache, stored.key.as_str())
                        .await?,
                );
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

/// The index term of a `Location`/`Content-Location` value when it points
/// at the same origin as the request (RFC 9111 §4.4: other origins' URIs
/// are never invalidated — that would let one origin purge another's).
fn same_origin_term(value: &[u8], invalidation: &Invalidation) -> Option<Arc<str>> {
    let uri = http::Uri::try_from(value.trim_ascii()).ok()?;
    if let Some(authority) = uri.authority() {
        let host = invalidation.authority.as_deref()?;
        if !authority.as_str().eq_ignore_ascii_case(host) {
            return None;
        }
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return None;
    }
    Some(uri_term_of(path, uri.query()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalidation(host: Option<&str>) -> Invalidation {
        Invalidation {
            target: uri_term_of("/a", None),
            authority: host.map(str::to_owned),
            rule: None,
            user: None,
        }
    }

    #[test]
    fn only_same_origin_locations_are_invalidated_rfc9111_4_4() {
        let same = invalidation(Some("example.com"));
        assert_eq!(
            same_origin_term(b"/items/5?b=2&a=1", &same).as_deref(),
            Some("uri /items/5?a=1&b=2")
        );
        assert_eq!(
            same_origin_term(b"http://EXAMPLE.com/items/5", &same).as_deref(),
            Some("uri /items/5")
        );
        assert_eq!(
            same_origin_term(b"https://evil.example/items/5", &same),
            None
        );
        assert_eq!(
            same_origin_term(b"http://example.com/x", &invalidation(None)),
            None
        );
        assert_eq!(same_origin_term(b"not a uri", &same), None);
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
