//! The request path, step by step, as adapters drive it:
//!
//! 1. [`Cache::route`]: match the rules and build the key — or pass the
//!    request through untouched, or bypass the cache for it.
//! 2. [`Cache::lookup`] (or [`Cache::lookup_now`] for in-memory stores): a
//!    fresh entry the request's own directives accept, or a miss and why.
//! 3. On a hit, [`Cache::answer`]: the response (200, or 304 when the
//!    client's copy is current), with `Age` and `Cache-Status`.
//! 4. On a miss, forward; then [`Cache::check_storable`] on the response head,
//!    [`Cache::store`] once the body is complete, and [`Cache::forwarded`] to
//!    label the response.

use crate::cache::Cache;
use crate::conditional::{etag_for_body, is_not_modified, not_modified_headers};
use crate::directives::RequestDirectives;
use crate::entry::CachedResponse;
use crate::error::StoreError;
use crate::freshness::{freshness, http_date, Freshness};
use crate::key::{combine_header_values, CacheKey, KeyBuilder};
use crate::outcome::{Forward, Outcome, StatusHeaders};
use crate::policy::{check_storable, NotStorable, RequestFacts, RuleFacts};
use crate::request::RequestHead;
use crate::rules::CompiledRule;
use crate::stats::Counters;
use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::StatusCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Route {
    /// No rule matches: pass it through untouched (no headers added).
    Pass,
    /// A rule matches but the cache is not used for this request; label the
    /// response with [`Cache::bypassed`].
    Bypass(Forward),
    /// Serve from or fill the cache.
    Cache(Plan),
}

/// What the cache will do with one request that matched a rule: the rule and
/// the key, and what the storage policy needs to know later.
#[derive(Debug, Clone)]
pub struct Plan {
    rule: Arc<CompiledRule>,
    key: CacheKey,
    head: bool,
    facts: RequestFacts,
    directives: RequestDirectives,
}

impl Plan {
    /// The matching rule.
    pub fn rule(&self) -> &CompiledRule {
        &self.rule
    }
    /// The entry's key.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }
    /// Whether the request is a `HEAD`: a hit is answered without a body.
    pub fn is_head(&self) -> bool {
        self.head
    }
    /// Whether the client said `only-if-cached`: answer a miss with
    /// [`Cache::only_if_cached`] instead of forwarding.
    pub fn only_if_cached(&self) -> bool {
        self.directives.only_if_cached
    }
}

/// The result of a lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A fresh entry the request accepts.
    Hit(Hit),
    /// Go to the origin, for this reason.
    Miss(Forward),
}

/// A fresh entry found for a request.
#[derive(Debug, Clone)]
pub struct Hit {
    entry: Arc<CachedResponse>,
    age: Duration,
    ttl: Duration,
}

impl Hit {
    /// The stored response.
    pub fn entry(&self) -> &Arc<CachedResponse> {
        &self.entry
    }
    /// The entry's age (RFC 9111 §4.2.3).
    pub fn age(&self) -> Duration {
        self.age
    }
    /// How long it stays fresh.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// A response head that may be stored, with its freshness. Made only by
/// [`Cache::check_storable`] and consumed by [`Cache::store`].
#[derive(Debug, Clone, Copy)]
pub struct Storable {
    freshness: Freshness,
    received_at: SystemTime,
}

/// A response the cache makes itself: a hit (200 or 304) or a 504 for
/// `only-if-cached`. `body` is empty for `HEAD`, 304 and 504.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers, `Cache-Status` and `Age` included.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Headers that describe a connection, not the response (RFC 9110 §7.6.1),
/// and `Age`, which the cache computes itself: never stored.
const NOT_STORED_HEADERS: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::AGE,
];

impl Cache {
    /// Steps 1 and 3 of the design: the rule that matches `req` and the key
    /// of its entry.
    pub fn route(&self, req: &dyn RequestHead) -> Route {
        let method = req.method();
        let Some(rule) = self.inner.rules.find(req.path()) else {
            return Route::Pass;
        };
        let head = match method {
            "GET" => false,
            "HEAD" => true,
            _ => return Route::Bypass(Forward::Method),
        };
        if !rule.caches_method(method) {
            return Route::Bypass(Forward::Method);
        }
        // Range requests pass through: partial content is never stored.
        if req.header(&header::RANGE).is_some() {
            return Route::Bypass(Forward::Bypass);
        }
        let key_method = if rule.vary_by_method() { method } else { "GET" };
        let mut key = KeyBuilder::new(req.path(), req.query()).method(key_method);
        let mut shared = true;
        if rule.vary_by_user() {
            let identity = self.inner.identity.of(req);
            shared = identity.is_none();
            key = key.user(identity);
        }
        for name in rule.vary_headers() {
            let mut values: Vec<&[u8]> = Vec::new();
            req.header_values(name, &mut |value| values.push(value));
            key = key.header(name.as_str(), combine_header_values(&values).as_deref());
        }
        let directives = RequestDirectives::of(req);
        Route::Cache(Plan {
            rule: Arc::clone(rule),
            key: key.finish(),
            head,
            facts: RequestFacts {
                shared,
                authorized: req.header(&header::AUTHORIZATION).is_some(),
                head_as_get: head && !rule.vary_by_method(),
                no_store: directives.no_store,
            },
            directives,
        })
    }

    /// Step 2: a fresh entry for `plan` that the request accepts, or why
    /// not. Counts a hit or a miss; a store failure is logged, counted, and
    /// reads as a miss.
    pub async fn lookup(&self, plan: &Plan) -> Lookup {
        if let Some(found) = self.lookup_now(plan) {
            return found;
        }
        let now = self.inner.clock.now();
        let found = self
            .inner
            .store
            .get(plan.rule.cache(), plan.key.as_str(), now)
            .await;
        self.record_lookup(plan, found, now)
    }

    /// [`lookup`](Self::lookup) without waiting, when the store can answer at
    /// once (the in-memory store always can); `None` when it cannot.
    pub fn lookup_now(&self, plan: &Plan) -> Option<Lookup> {
        let now = self.inner.clock.now();
        if plan.directives.no_cache {
            // The client wants the origin's answer (RFC 9111 §5.2.1.4).
            return Some(self.record_lookup(plan, Ok(None), now));
        }
        let found = self
            .inner
            .store
            .get_now(plan.rule.cache(), plan.key.as_str(), now)?;
        Some(self.record_lookup(plan, found, now))
    }

    fn record_lookup(
        &self,
        plan: &Plan,
        found: Result<Option<Arc<CachedResponse>>, StoreError>,
        now: SystemTime,
    ) -> Lookup {
        let counters = self.counters(plan);
        let entry = match found {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, key = %plan.key, "cache lookup failed; forwarding to the origin");
                Counters::bump(&counters.store_errors);
                None
            }
        };
        let Some(entry) = entry else {
            Counters::bump(&counters.misses);
            let reason = if plan.directives.no_cache {
                Forward::Request
            } else {
                Forward::UriMiss
            };
            return Lookup::Miss(reason);
        };
        let (age, ttl) = (entry.age(now), entry.time_to_live(now));
        if !plan.directives.accepts(age, ttl) {
            Counters::bump(&counters.misses);
            return Lookup::Miss(Forward::Request);
        }
        Counters::bump(&counters.hits);
        Lookup::Hit(Hit { entry, age, ttl })
    }

    /// Step 3: the response for a hit — 304 when `req`'s preconditions show
    /// the client's copy is current (RFC 9110 §13.2.2), otherwise the stored
    /// response (without a body for `HEAD`) — labelled with `Age` and
    /// `Cache-Status`. The origin is not contacted.
    pub fn answer(&self, plan: &Plan, hit: &Hit, req: &dyn RequestHead) -> Answer {
        let entry = hit.entry();
        let outcome = Outcome::Hit {
            age: hit.age,
            ttl: hit.ttl,
        };
        let conditional = req.header(&header::IF_NONE_MATCH).is_some()
            || req.header(&header::IF_MODIFIED_SINCE).is_some();
        if conditional
            && entry.status() == StatusCode::OK
            && is_not_modified(
                req,
                entry
                    .headers()
                    .get(header::ETAG)
                    .map(http::HeaderValue::as_bytes),
                http_date(entry.headers().get(header::LAST_MODIFIED)),
            )
        {
            let mut headers = not_modified_headers(entry.headers());
            self.inner
                .status_headers
                .write(&outcome, Some(&plan.key), &mut headers);
            return Answer {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: Bytes::new(),
            };
        }
        // Sized for the status headers too, so adding them never regrows the map.
        let mut headers =
            HeaderMap::with_capacity(entry.headers().len() + StatusHeaders::MAX_HEADERS);
        for (name, value) in entry.headers() {
            headers.append(name.clone(), value.clone());
        }
        self.inner
            .status_headers
            .write(&outcome, Some(&plan.key), &mut headers);
        Answer {
            status: entry.status(),
            headers,
            body: if plan.head {
                Bytes::new()
            } else {
                entry.body().clone()
            },
        }
    }

    /// The answer to an `only-if-cached` request that missed: 504 Gateway
    /// Timeout, without contacting the origin (RFC 9111 §5.2.1.7).
    pub fn only_if_cached(&self, plan: &Plan) -> Answer {
        let mut headers = HeaderMap::new();
        self.inner
            .status_headers
            .write(&Outcome::OnlyIfCached, Some(&plan.key), &mut headers);
        Answer {
            status: StatusCode::GATEWAY_TIMEOUT,
            headers,
            body: Bytes::new(),
        }
    }

    /// Step 4, before the body is read: whether a response with `status` and
    /// `headers` may be stored for `plan`, and for how long. A refusal is
    /// counted.
    pub fn check_storable(
        &self,
        plan: &Plan,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Storable, NotStorable> {
        let received_at = self.inner.clock.now();
        let freshness = freshness(
            headers,
            received_at,
            plan.rule.ttl(),
            plan.rule.respect_origin(),
        );
        let rule = RuleFacts {
            keyed: plan.rule.vary_headers(),
            statuses: plan.rule.statuses(),
        };
        match check_storable(plan.facts, rule, status, headers, &freshness) {
            Ok(()) => Ok(Storable {
                freshness,
                received_at,
            }),
            Err(reason) => {
                self.not_stored(plan);
                Err(reason)
            }
        }
    }

    /// Records that a response for `plan` was not stored for a reason found
    /// after [`check_storable`](Self::check_storable) (its body was too large,
    /// it had trailers).
    pub fn not_stored(&self, plan: &Plan) {
        Counters::bump(&self.counters(plan).not_stored);
    }

    /// Step 4, once the body is complete: stores the response for `plan`.
    /// `headers` are the response's: they gain `Content-Length` and, for a
    /// body without one, a strong `ETag`, so the client sees what later hits
    /// will send. The stored copy drops hop-by-hop headers. Returns whether
    /// it was stored; a store failure is logged and counted.
    pub async fn store(
        &self,
        plan: &Plan,
        storable: Storable,
        status: StatusCode,
        headers: &mut HeaderMap,
        body: Bytes,
    ) -> bool {
        headers.insert(header::CONTENT_LENGTH, body.len().into());
        if !headers.contains_key(header::ETAG) {
            headers.insert(header::ETAG, etag_for_body(&body));
        }
        let mut headers = headers.clone();
        for name in &NOT_STORED_HEADERS {
            headers.remove(name);
        }
        let Storable {
            freshness,
            received_at,
        } = storable;
        let entry = CachedResponse::new(status, headers, body, received_at, freshness.remaining())
            .with_initial_age(freshness.initial_age);
        let counters = self.counters(plan);
        match self
            .inner
            .store
            .insert(plan.rule.cache(), &plan.key, Arc::new(entry))
            .await
        {
            Ok(()) => {
                Counters::bump(&counters.inserts);
                true
            }
            Err(error) => {
                tracing::warn!(%error, key = %plan.key, "storing a response failed");
                Counters::bump(&counters.store_errors);
                false
            }
        }
    }

    /// Labels a response that went to the origin for `reason`: its status,
    /// and whether it was `stored` or why not.
    pub fn forwarded(
        &self,
        plan: &Plan,
        reason: Forward,
        status: StatusCode,
        stored: Result<(), NotStorable>,
        headers: &mut HeaderMap,
    ) {
        let outcome = Outcome::Forward {
            reason,
            status: Some(status),
            stored: stored.is_ok(),
            detail: stored.err().map(|why| why.to_string()),
        };
        self.inner
            .status_headers
            .write(&outcome, Some(&plan.key), headers);
    }

    /// Labels a response to a request the rule matched but the cache did not
    /// handle ([`Route::Bypass`]).
    pub fn bypassed(&self, reason: Forward, headers: &mut HeaderMap) {
        let outcome = Outcome::Forward {
            reason,
            status: None,
            stored: false,
            detail: None,
        };
        self.inner.status_headers.write(&outcome, None, headers);
    }
}
