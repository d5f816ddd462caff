//! Step 6, admit and store: whether a response may be stored and for how long, and
//! storing it — under its variant key when it has `Vary`.

use super::route::Plan;
use crate::cache::Cache;
use crate::protocol::cache_control::CacheControl;
use crate::protocol::conditional::etag_for_body;
use crate::protocol::freshness::{forbids_stale, freshness, heuristic_lifetime, Freshness};
use crate::protocol::hop_by_hop::{is_hop_by_hop, strip_hop_by_hop};
use crate::protocol::storability::{may_store, NotStorable, RequestFacts, RuleFacts};
use crate::protocol::targeted::Policy;
use crate::request::RequestHead;
use crate::store::entry::{CachedResponse, Entry, VariantIndex};
use crate::store::StoreError;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::StatusCode;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A response head that may be stored, with its freshness and the request
/// headers it varies on. Made only by [`Cache::admit`] and consumed
/// by [`Cache::store`].
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub(super) freshness: Freshness,
    pub(super) received_at: SystemTime,
    pub(super) vary: Vec<HeaderName>,
    pub(super) tags: Vec<Arc<str>>,
    /// The directives that decided (`Cache-Control`, or a targeted field).
    pub(super) policy: Policy,
}

impl Admission {
    /// Stores the entry under `tags` too (from [`Cache::take_tags`]), so
    /// [`Cache::purge_tag`] finds it.
    #[must_use]
    pub(crate) fn with_tags(mut self, tags: Vec<Arc<str>>) -> Self {
        self.tags.extend(tags);
        self
    }
}

/// What became of a response that went to the origin, for its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOutcome {
    /// Stored.
    Stored,
    /// Not stored, for this reason.
    Refused(NotStorable),
    /// Streaming to the client while it is recorded: stored at the body's
    /// end if it fits the rule's `max_body`.
    Recording,
}

/// A random generation for a new variant index, so that variants of an
/// index that was replaced or purged are never found again.
fn new_generation() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No OS randomness: the clock still separates generations.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64)
    })
}

/// Removes what a stored response never keeps: the connection-specific
/// fields (RFC 9111 §3.1) and `Age`, which the cache computes itself.
pub(super) fn strip_unstored(headers: &mut HeaderMap) {
    strip_hop_by_hop(headers);
    headers.remove(header::AGE);
}

/// `headers` as stored: borrowed when [`strip_unstored`] would remove
/// nothing (most responses), else a stripped copy.
fn unstripped_or_copy(headers: &HeaderMap) -> Cow<'_, HeaderMap> {
    if headers.contains_key(header::AGE) || headers.keys().any(is_hop_by_hop) {
        let mut stored = headers.clone();
        strip_unstored(&mut stored);
        Cow::Owned(stored)
    } else {
        Cow::Borrowed(headers)
    }
}

impl Cache {
    /// Step 6, before the body is read: whether a response with `status` and
    /// `headers` may be stored for `plan`, and for how long. A refusal is
    /// counted.
    pub(crate) fn admit(
        &self,
        plan: &Plan,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Admission, NotStorable> {
        self.assess(plan, plan.facts, status, headers)
            .inspect_err(|_| self.not_stored(plan))
    }

    /// The freshness of a response to `plan` received now, and whether the
    /// policy lets it be stored for a request described by `facts`.
    pub(super) fn assess(
        &self,
        plan: &Plan,
        facts: RequestFacts,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Admission, NotStorable> {
        let received_at = self.inner.clock.now();
        let policy = self.inner.targets.policy(headers);
        let mut freshness = freshness(
            headers,
            &policy,
            received_at,
            plan.rule.ttl(),
            plan.rule.respect_origin(),
        );
        if !freshness.explicit && plan.rule.heuristic_freshness() {
            freshness.lifetime = heuristic_lifetime(headers, received_at).min(plan.rule.ttl());
        }
        let vary = may_store(
            facts,
            self.rule_facts(plan),
            status,
            headers,
            &policy.cc,
            &freshness,
        )?;
        Ok(Admission {
            freshness,
            received_at,
            vary,
            policy,
            // Every entry is indexed under its URI, for purges by URI.
            tags: vec![plan.uri_term(self.inner.key_host)],
        })
    }

    pub(super) fn rule_facts<'a>(&self, plan: &'a Plan) -> RuleFacts<'a> {
        RuleFacts {
            keyed: plan.rule.vary_headers(),
            statuses: plan.rule.statuses(),
            keep: plan.rule.keep(),
            respect_origin: plan.rule.respect_origin(),
            share_cookie_requests: plan.rule.share_cookie_requests(),
        }
    }

    /// Step 6, once the body is complete: stores the response for `plan`,
    /// under the variant `req` selects when the response has `Vary`.
    /// `headers` are the response's: they gain `Content-Length` and, for a
    /// body without one, a strong `ETag`, so the client sees what later hits
    /// will send. The stored copy drops hop-by-hop headers. Returns whether
    /// it was stored; a store failure is logged and counted.
    pub(crate) async fn store(
        &self,
        plan: &Plan,
        storable: Admission,
        req: &(dyn RequestHead + Sync),
        status: StatusCode,
        headers: &mut HeaderMap,
        body: Bytes,
    ) -> bool {
        headers.insert(header::CONTENT_LENGTH, body.len().into());
        let generated_etag = !headers.contains_key(header::ETAG);
        if generated_etag {
            headers.insert(header::ETAG, etag_for_body(&body));
        }
        let stored = unstripped_or_copy(headers);
        let entry = self.entry(plan, &storable, status, &stored, body, generated_etag);
        let result = self.insert_variant(plan, &storable.vary, req, entry).await;
        self.record_insert(plan, result)
    }

    /// A response as stored: fresh by `storable`, kept stale for the rule's
    /// `keep` when the origin gave a validator to revalidate it with (not
    /// an `ETag` the cache generated).
    pub(super) fn entry(
        &self,
        plan: &Plan,
        storable: &Admission,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        generated_etag: bool,
    ) -> CachedResponse {
        let no_stale = forbids_stale(&storable.policy.cc);
        let entry = CachedResponse::new(
            status,
            headers,
            body,
            storable.received_at,
            storable.freshness.remaining(),
        )
        .forbidding_stale(no_stale)
        .with_initial_age(storable.freshness.initial_age)
        .with_tags(Arc::from(storable.tags.as_slice()))
        .with_prepared_room(self.inner.prepares_answers.load(Ordering::Relaxed));
        let entry = if generated_etag {
            entry.with_generated_etag()
        } else {
            entry
        };
        let keep = if entry.has_validators() {
            plan.rule.keep()
        } else {
            Duration::ZERO
        };
        let (while_revalidate, if_error) = self.stale_windows(plan, &storable.policy.cc);
        let fetch_time = plan.started.map_or(Duration::ZERO, |started| {
            storable
                .received_at
                .duration_since(started)
                .unwrap_or_default()
        });
        entry
            .with_keep(keep)
            .with_stale_windows(while_revalidate, if_error)
            .with_fetch_time(fetch_time)
    }

    /// How long a response may be served stale while revalidated, and when
    /// the origin fails: the origin's `stale-while-revalidate` and
    /// `stale-if-error` (RFC 5861) when it sends them and the rule respects
    /// it, else the rule's windows.
    pub(super) fn stale_windows(&self, plan: &Plan, cc: &CacheControl) -> (Duration, Duration) {
        let rule = &plan.rule;
        let window = |directive: &str, rule_window: Duration| match cc.seconds(directive) {
            Some(secs) if rule.respect_origin() => Duration::from_secs(secs),
            _ => rule_window,
        };
        (
            window("stale-while-revalidate", rule.stale_while_revalidate()),
            window("stale-if-error", rule.stale_if_error()),
        )
    }

    /// Inserts `entry` under the primary key or, when the response varies on
    /// `vary`, under its variant key, keeping the URL's index current: an
    /// index for other headers (or none) is replaced with a new generation.
    pub(super) async fn insert_variant(
        &self,
        plan: &Plan,
        vary: &[HeaderName],
        req: &(dyn RequestHead + Sync),
        entry: CachedResponse,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        if vary.is_empty() {
            return store.insert(cache, &plan.key, Entry::from(entry)).await;
        }
        let now = self.inner.clock.now();
        let max_variants = self.inner.limits.max_variants;
        let index = match store.get(cache, &plan.key, now).await? {
            Some(Entry::Variants(index))
                if index.names() == vary && index.stored() < max_variants =>
            {
                index.kept_until(entry.keep_until())
            }
            // New `Vary` names, or too many variants: a new generation, and
            // the old variants are never found again.
            _ => VariantIndex::new(Arc::from(vary), new_generation(), entry.keep_until())
                .with_tags(Arc::from(vec![plan.uri_term(self.inner.key_host)])),
        }
        .with_one_more();
        let key = self.variant_key(plan, &index, req);
        store
            .insert(cache, &plan.key, Entry::Variants(Arc::new(index)))
            .await?;
        store.insert(cache, &key, Entry::from(entry)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header_map;

    #[test]
    fn headers_are_stored_as_stripping_them_would_leave_them() {
        let plain = [("content-type", "text/plain"), ("etag", "\"v1\"")];
        let cases: [&[(&str, &str)]; 5] = [
            &plain,
            &[("content-type", "text/plain"), ("age", "30")],
            &[("connection", "x-hop"), ("x-hop", "1"), ("etag", "\"v1\"")],
            &[("keep-alive", "timeout=5"), ("x-kept", "1")],
            &[
                ("transfer-encoding", "chunked"),
                ("vary", "accept"),
                ("vary", "cookie"),
            ],
        ];
        for case in cases {
            let headers = header_map(case);
            let mut stripped = headers.clone();
            strip_unstored(&mut stripped);
            assert_eq!(*unstripped_or_copy(&headers), stripped, "{case:?}");
        }
        // Nothing to strip: the response's own map, not a copy.
        let headers = header_map(&plain);
        assert!(matches!(unstripped_or_copy(&headers), Cow::Borrowed(_)));
    }
}
