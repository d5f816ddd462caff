//! Step 7, for stored entries the origin is asked about: a 304 merged into
//! the entry (RFC 9111 §4.3.4), and `stale-if-error` when the origin fails.

use super::admit::strip_unstored;
use super::admit::Admission;
use super::answer::Answer;
use super::route::Plan;
use crate::cache::Cache;
use crate::key::CacheKey;
use crate::protocol::cache_status::{ForwardReason, Outcome};
use crate::protocol::conditional::same_entity_tag;
use crate::protocol::freshness::forbids_stale;
use crate::protocol::storability::{NotStorable, RequestFacts};
use crate::request::RequestHead;
use crate::stats::Counters;
use crate::store::entry::{CachedResponse, Entry};
use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// A stored entry to revalidate with the origin (RFC 9111 §4.3).
#[derive(Debug, Clone)]
pub(crate) struct Revalidation {
    pub(super) entry: Arc<CachedResponse>,
    pub(super) key: CacheKey,
    pub(super) reason: ForwardReason,
}

impl Revalidation {
    /// Why it is revalidated: it is stale, or the request asked.
    pub(crate) fn reason(&self) -> ForwardReason {
        self.reason
    }
    /// The headers to send upstream in place of the client's own
    /// preconditions: `If-None-Match` and/or `If-Modified-Since` (§4.3.1).
    /// Empty for an entry without validators, which is fetched anew.
    pub(crate) fn conditions(&self) -> HeaderMap {
        self.entry.validators()
    }
    /// Whether the request upstream is conditional, so that a 304 answers it.
    pub(crate) fn is_conditional(&self) -> bool {
        self.entry.has_validators()
    }
}

/// Whether a 304 describes the stored response (RFC 9111 §4.3.4): when it
/// carries an `ETag`, the stored response must have the same one (weak
/// comparison); without one, the single stored response is selected.
fn selects(stored: &CachedResponse, not_modified: &HeaderMap) -> bool {
    let Some(etag) = not_modified.get(header::ETAG) else {
        return true;
    };
    !stored.has_generated_etag()
        && stored
            .headers()
            .get(header::ETAG)
            .is_some_and(|current| same_entity_tag(current.as_bytes(), etag.as_bytes()))
}

/// The stored headers updated with a 304's (RFC 9111 §3.2): each header
/// the 304 carries replaces the stored one, except `Content-Length` (it
/// describes the 304, not the stored body), `Set-Cookie` (never stored) and
/// the headers that are never stored.
fn merge_not_modified(stored: &HeaderMap, not_modified: &HeaderMap) -> HeaderMap {
    let mut update = not_modified.clone();
    strip_unstored(&mut update);
    update.remove(header::CONTENT_LENGTH);
    update.remove(header::SET_COOKIE);
    let mut headers = stored.clone();
    for name in update.keys() {
        headers.remove(name);
    }
    for (name, value) in &update {
        headers.append(name.clone(), value.clone());
    }
    headers
}

impl Cache {
    /// Step 7, for a revalidation the origin answered 304 Not Modified
    /// (RFC 9111 §4.3.4): the stored headers are updated with the 304's
    /// (all but `Content-Length`, `Set-Cookie` and hop-by-hop ones), its
    /// freshness is computed anew, and the entry is stored again — or
    /// removed, if the updated headers no longer allow storing. Returns the
    /// response for the client (a 304 of its own when its preconditions
    /// match), or `None` when the 304 names a different representation
    /// than the stored one: the entry is then removed and the 304 cannot
    /// be used.
    pub(crate) async fn revalidated(
        &self,
        plan: &Plan,
        revalidation: Revalidation,
        not_modified: &HeaderMap,
        req: &(dyn RequestHead + Sync),
    ) -> Option<Answer> {
        let stored = revalidation.entry;
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        if !selects(&stored, not_modified) {
            if let Err(error) = store.remove(cache, &revalidation.key).await {
                tracing::warn!(%error, key = %revalidation.key, "removing a replaced entry failed");
            }
            return None;
        }
        Counters::bump(&self.counters(plan).revalidated);
        let headers = merge_not_modified(stored.headers(), not_modified);
        // The entry answers a GET even when a HEAD revalidated it.
        let facts = RequestFacts {
            head_as_get: false,
            ..plan.facts
        };
        let (entry, stored_again) = match self.assess(plan, facts, stored.status(), &headers) {
            Ok(storable) => {
                // Same tags as before: a 304 says nothing about them.
                let storable = Admission {
                    tags: stored.tags().to_vec(),
                    ..storable
                };
                let generated_etag =
                    stored.has_generated_etag() && !not_modified.contains_key(header::ETAG);
                let entry = Arc::new(self.entry(
                    plan,
                    &storable,
                    stored.status(),
                    &headers,
                    stored.body().clone(),
                    generated_etag,
                ));
                let result = store
                    .insert(
                        cache,
                        &revalidation.key,
                        Entry::Response(Arc::clone(&entry)),
                    )
                    .await;
                (entry, self.record_insert(plan, result))
            }
            Err(reason) => {
                if reason != NotStorable::RequestNoStore {
                    self.not_stored(plan);
                    if let Err(error) = store.remove(cache, &revalidation.key).await {
                        tracing::warn!(%error, key = %revalidation.key, "removing an entry failed");
                    }
                }
                // Used once, for this answer.
                let now = self.inner.clock.now();
                let no_stale = forbids_stale(&self.inner.targets.policy(&headers).cc);
                let entry = CachedResponse::new(
                    stored.status(),
                    &headers,
                    stored.body().clone(),
                    now,
                    Duration::ZERO,
                )
                .forbidding_stale(no_stale);
                (Arc::new(entry), false)
            }
        };
        let outcome = Outcome::Forward {
            reason: revalidation.reason,
            status: Some(StatusCode::NOT_MODIFIED),
            stored: stored_again,
            detail: None,
        };
        let mut answer = self.respond(plan, &entry, &outcome, req);
        // A cookie the origin set is the client's; it is never stored.
        for cookie in not_modified.get_all(header::SET_COOKIE) {
            answer.headers.append(header::SET_COOKIE, cookie.clone());
        }
        Some(answer)
    }

    /// The answer when the origin failed while a stored entry was being
    /// revalidated or refreshed: it answered with a server error (`status`)
    /// or not at all (`None`: a connection error or a timeout).
    ///
    /// - Within the entry's `stale-if-error` window, the stored entry
    ///   (RFC 5861 §4), labelled `fwd=stale` and `detail=stale-if-error`.
    /// - When the origin could not be reached and the entry forbids serving
    ///   it stale (`must-revalidate` and kin), 504 Gateway Timeout (RFC 9111
    ///   §5.2.2.2).
    /// - Otherwise `None`: the adapter passes the origin's response or error
    ///   on (and never stores a 5xx over the entry).
    pub(crate) fn origin_failed(
        &self,
        plan: &Plan,
        revalidation: &Revalidation,
        status: Option<StatusCode>,
        req: &dyn RequestHead,
    ) -> Option<Answer> {
        let entry = &revalidation.entry;
        let now = self.inner.clock.now();
        if entry.serves_if_error(now) {
            Counters::bump(&self.counters(plan).stale);
            let outcome = Outcome::StaleIfError {
                age: entry.age(now),
                staleness: entry.staleness(now),
                reason: revalidation.reason,
                status,
            };
            return Some(self.respond(plan, entry, &outcome, req));
        }
        if status.is_some() || !entry.forbids_stale() {
            return None;
        }
        let mut headers = HeaderMap::new();
        let outcome = Outcome::Forward {
            reason: revalidation.reason,
            status: None,
            stored: false,
            detail: Some("must-revalidate".to_owned()),
        };
        self.inner
            .status_headers
            .write(&outcome, Some(plan.key.as_str()), &mut headers);
        Some(Answer::new(
            StatusCode::GATEWAY_TIMEOUT,
            headers,
            Bytes::new(),
        ))
    }
}
