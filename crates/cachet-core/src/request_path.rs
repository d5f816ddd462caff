//! The request path, step by step, as adapters drive it:
//!
//! 1. [`Cache::route`]: match the rules and build the key — or pass the
//!    request through untouched, or bypass the cache for it.
//! 2. [`Cache::lookup`] (or [`Cache::lookup_now`] for in-memory stores): a
//!    fresh entry the request's own directives accept, or a miss and why.
//! 3. On a hit, [`Cache::answer`]: the response (200, or 304 when the
//!    client's copy is current), with `Age` and `Cache-Status`.
//! 4. On a hit that asks for a refresh ([`Hit::into_refresh`]: the entry is
//!    served stale while it is revalidated, or refreshed early), fetch it
//!    in the background with [`Cache::refresh_fetch`], one at a time per key.
//! 5. On a miss, [`Cache::coalesce`]: fetch, or wait for the request that
//!    already is and then [`Cache::lookup_landed`].
//! 6. Forward; then [`Cache::check_storable`] on the response head,
//!    [`Cache::store`] once the body is complete, and [`Cache::forwarded`] to
//!    label the response. When the origin fails, [`Cache::origin_failed`]
//!    may answer from the stale entry instead (`stale-if-error`).

use crate::cache::Cache;
use crate::cache_control::CacheControl;
use crate::conditional::{
    answers_not_modified, etag_for_body, not_modified_headers, same_entity_tag,
};
use crate::directives::RequestDirectives;
use crate::entry::{CachedResponse, Stored, VariantIndex};
use crate::error::StoreError;
use crate::freshness::{freshness, heuristic_lifetime, Freshness};
use crate::identity::Resolved;
use crate::key::{combine_header_values, normalize_host, CacheKey, HeaderPart, KeyBuilder};
use crate::outcome::{Forward, Outcome, StatusHeaders};
use crate::policy::{check_storable, NotStorable, RequestFacts, RuleFacts};
use crate::request::RequestHead;
use crate::rules::CompiledRule;
use crate::stats::Counters;
use crate::tags::uri_term;
use crate::target::{canonical_path, differs};
use crate::variants::variant_key;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::uri::PathAndQuery;
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
    /// How long the target (canonical path and query) at the key's start is.
    target_len: usize,
    /// The canonical target, when it differs from the request's own.
    rewrite: Option<PathAndQuery>,
    /// Whether the canonical path differs from the request's own.
    changes_path: bool,
    head: bool,
    facts: RequestFacts,
    directives: RequestDirectives,
    /// When the request arrived, for rules that refresh early (which need
    /// to know how long a fetch takes).
    started: Option<SystemTime>,
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
    /// The canonical path and query the origin must receive, when they
    /// differ from the request's own (`/api/m%65` is `/api/me`,
    /// `/static/../api/me` is `/api/me`, a `normalize_query` rule's query
    /// is sorted): the adapter puts it in the request it forwards, so the
    /// application answers exactly what was keyed. `None` when the request
    /// is already canonical.
    pub fn target(&self) -> Option<&PathAndQuery> {
        self.rewrite.as_ref()
    }
    /// Whether [`target`](Self::target) changes the path, not only the
    /// query. An adapter that cannot make the application route on the
    /// canonical path (it runs after routing) must not cache the request:
    /// it treats it as [`Route::Bypass`] ([`Cache::bypassed`]).
    pub fn changes_path(&self) -> bool {
        self.changes_path
    }
    /// Sets `req`'s URI to [`target`](Self::target), keeping its scheme and
    /// authority (absolute-form and HTTP/2 requests have them). `false`
    /// when no such URI can be made: the request must then bypass the
    /// cache, since the origin would not receive what was keyed.
    #[must_use]
    pub fn retarget<B>(&self, req: &mut http::Request<B>) -> bool {
        let Some(target) = &self.rewrite else {
            return true;
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(target.clone());
        match http::Uri::from_parts(parts) {
            Ok(uri) => {
                *req.uri_mut() = uri;
                true
            }
            Err(_) => false,
        }
    }
    /// The index term of the entry's URI, for purges by URI: the target,
    /// and the host when keys hold it.
    pub(crate) fn uri_term(&self, key_host: bool) -> Arc<str> {
        let key = self.key.as_str();
        let target = &key[..self.target_len];
        let host = key_host.then(|| key.split(' ').nth(2)).flatten();
        uri_term(target, host)
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
    /// An entry the request accepts: fresh, or stale within its `max-stale`.
    Hit(Hit),
    /// An entry that must be revalidated before use (stale, or the request
    /// said `no-cache`): forward with [`Revalidation::conditions`] and hand
    /// a 304 to [`Cache::revalidated`].
    Revalidate(Revalidation),
    /// Go to the origin, for this reason.
    Miss(Forward),
}

/// An entry found for a request.
#[derive(Debug, Clone)]
pub struct Hit {
    entry: Arc<CachedResponse>,
    age: Duration,
    ttl: Duration,
    staleness: Option<Duration>,
    /// Boxed: rare, and kept out of the way of every hit's moves.
    refresh: Option<Box<Revalidation>>,
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
    /// How long it stays fresh (zero for a stale hit).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// How long ago it went stale, for a stale hit (`max-stale`,
    /// `stale-while-revalidate`).
    pub fn staleness(&self) -> Option<Duration> {
        self.staleness
    }
    /// What to fetch in the background once the hit has been answered, if
    /// anything: the entry is served stale while revalidated, or it is near
    /// its expiry and the rule refreshes early.
    pub fn into_refresh(self) -> Option<Revalidation> {
        self.refresh.map(|refresh| *refresh)
    }
}

/// A stored entry to revalidate with the origin (RFC 9111 §4.3).
#[derive(Debug, Clone)]
pub struct Revalidation {
    entry: Arc<CachedResponse>,
    key: CacheKey,
    reason: Forward,
}

impl Revalidation {
    /// The stored response.
    pub fn entry(&self) -> &Arc<CachedResponse> {
        &self.entry
    }
    /// Why it is revalidated: it is stale, or the request asked.
    pub fn reason(&self) -> Forward {
        self.reason
    }
    /// The headers to send upstream in place of the client's own
    /// preconditions: `If-None-Match` and/or `If-Modified-Since` (§4.3.1).
    /// Empty for an entry without validators, which is fetched anew.
    pub fn conditions(&self) -> HeaderMap {
        self.entry.validators()
    }
    /// Whether the request upstream is conditional, so that a 304 answers it.
    pub fn is_conditional(&self) -> bool {
        self.entry.has_validators()
    }
}

/// A response head that may be stored, with its freshness and the request
/// headers it varies on. Made only by [`Cache::check_storable`] and consumed
/// by [`Cache::store`].
#[derive(Debug, Clone)]
pub struct Storable {
    freshness: Freshness,
    received_at: SystemTime,
    vary: Vec<HeaderName>,
    tags: Vec<Arc<str>>,
}

impl Storable {
    /// Stores the entry under `tags` too (from [`Cache::take_tags`]), so
    /// [`Cache::purge_tag`] finds it.
    #[must_use]
    pub fn with_tags(mut self, tags: Vec<Arc<str>>) -> Self {
        self.tags.extend(tags);
        self
    }
}

/// What became of a response that went to the origin, for its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Stored.
    Stored,
    /// Not stored, for this reason.
    Refused(NotStorable),
    /// Streaming to the client while it is recorded: stored at the body's
    /// end if it fits the rule's `max_body`.
    Recording,
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

/// What a store read found, and where.
enum Found {
    /// Under the primary key.
    Primary(Result<Option<Stored>, StoreError>),
    /// Under the variant key the primary key's index selected.
    Variant(Result<Option<Stored>, StoreError>, CacheKey),
}

/// Headers that may carry a credential: a rule that keys on one keys on
/// its keyed hash, so keys never show it.
fn is_credential(name: &HeaderName) -> bool {
    matches!(
        *name,
        header::AUTHORIZATION | header::COOKIE | header::PROXY_AUTHORIZATION
    )
}

/// `Connection` options that name no end-to-end header.
const CONNECTION_OPTIONS: [&str; 3] = ["close", "keep-alive", "te"];

/// Whether `req` must skip the cache whatever its key: it carries one of
/// `bypass_headers`; it has a body (a GET or HEAD with one may be answered
/// from it, and an origin that reads it would be keyed on less than it
/// sees); it upgrades the protocol; it asks for a range; or `Connection`
/// names a header, which a proxy would drop after the key was made from it.
fn bypasses(req: &dyn RequestHead, bypass_headers: &[HeaderName]) -> bool {
    if bypass_headers.iter().any(|name| req.header(name).is_some()) {
        return true;
    }
    let has_body = req.header(&header::TRANSFER_ENCODING).is_some()
        || req
            .header(&header::CONTENT_LENGTH)
            .is_some_and(|length| length.trim_ascii() != b"0");
    if has_body || req.header(&header::UPGRADE).is_some() || req.header(&header::RANGE).is_some() {
        return true;
    }
    let mut names_a_header = false;
    req.header_values(&header::CONNECTION, &mut |value| {
        names_a_header |= value
            .split(|&byte| byte == b',')
            .map(<[u8]>::trim_ascii)
            .any(|option| {
                !option.is_empty()
                    && !CONNECTION_OPTIONS
                        .iter()
                        .any(|known| option.eq_ignore_ascii_case(known.as_bytes()))
            });
    });
    names_a_header
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
    let mut headers = stored.clone();
    for name in not_modified.keys() {
        if *name == header::CONTENT_LENGTH
            || *name == header::SET_COOKIE
            || NOT_STORED_HEADERS.contains(name)
        {
            continue;
        }
        headers.remove(name);
        for value in not_modified.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
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
    ///
    /// Rules match the canonical path (see [`Plan::target`]), the one the
    /// key holds and the origin receives. The request bypasses the cache
    /// when the rule does not cache its method, when it is a range request,
    /// a protocol upgrade, carries a body, names a header in `Connection`,
    /// carries one of the bypass headers, has an ambiguous path, a host
    /// that is not one, a key longer than `max_key_bytes`, or (on a
    /// `vary_by_user` rule) a credential without a clear identity.
    pub fn route(&self, req: &dyn RequestHead) -> Route {
        let method = req.method();
        let raw_path = req.path();
        let path = match canonical_path(raw_path) {
            Ok(path) => path,
            Err(_) => {
                // Origins disagree on what it names: never cached.
                return match self.inner.rules.find(raw_path) {
                    Some(_) => Route::Bypass(Forward::Bypass),
                    None => Route::Pass,
                };
            }
        };
        let Some(rule) = self.inner.rules.find(&path) else {
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
        let limits = &self.inner.limits;
        let bypass_headers = rule.bypass_headers().unwrap_or(&limits.bypass_headers);
        if bypasses(req, bypass_headers) {
            return Route::Bypass(Forward::Bypass);
        }
        let query = req.query();
        if path.len() + query.map_or(0, str::len) > limits.max_key_bytes {
            return Route::Bypass(Forward::Bypass);
        }
        let target = KeyBuilder::for_canonical(&path, query, rule.normalize_query());
        let target_len = target.len();
        let changes_path = path != raw_path;
        let rewrite = if differs(target.as_str(), raw_path, query) {
            match PathAndQuery::try_from(target.as_str()) {
                Ok(target) => Some(target),
                Err(_) => return Route::Bypass(Forward::Bypass),
            }
        } else {
            None
        };
        let key_method = if rule.vary_by_method() { method } else { "GET" };
        let mut key = target.method(key_method);
        if self.inner.key_host {
            let host = req.header(&header::HOST).or_else(|| req.authority());
            if host.is_some_and(|host| normalize_host(host).is_none()) {
                return Route::Bypass(Forward::Bypass);
            }
            key = key.host(host);
        }
        let mut shared = true;
        if rule.vary_by_user() {
            let identity = match self.inner.identity.resolve(req) {
                Resolved::User(hash) => Some(hash),
                Resolved::Anonymous => None,
                Resolved::Unresolved => return Route::Bypass(Forward::Bypass),
            };
            shared = identity.is_none();
            key = key.user(identity);
        }
        for name in rule.vary_headers() {
            let mut values: Vec<&[u8]> = Vec::new();
            req.header_values(name, &mut |value| values.push(value));
            let value = combine_header_values(&values);
            key = match value {
                // A credential is keyed by a keyed hash, never as it is.
                Some(value) if is_credential(name) => key.header_part(
                    name.as_str(),
                    HeaderPart::Hashed(self.inner.identity.hash_header(name, &value)),
                ),
                value => key.header(name.as_str(), value.as_deref()),
            };
        }
        let key = key.finish();
        if key.as_str().len() > limits.max_key_bytes {
            return Route::Bypass(Forward::Bypass);
        }
        let directives = RequestDirectives::of(req);
        let started = rule.early_refresh().map(|_| self.inner.clock.now());
        Route::Cache(Plan {
            rule: Arc::clone(rule),
            key,
            target_len,
            rewrite,
            changes_path,
            head,
            facts: RequestFacts {
                shared,
                authorized: req.header(&header::AUTHORIZATION).is_some(),
                head_as_get: head && !rule.vary_by_method(),
                no_store: directives.no_store,
                cookie: req.header(&header::COOKIE).is_some(),
            },
            directives,
            started,
        })
    }

    /// Step 2: an entry for `plan` that the request accepts, one to
    /// revalidate, or why neither. `req` selects among the URL's variants.
    /// Counts a hit or a miss; a store failure is logged, counted, and reads
    /// as a miss.
    pub async fn lookup(&self, plan: &Plan, req: &(dyn RequestHead + Sync)) -> Lookup {
        self.lookup_counted(plan, req, true).await
    }

    /// Step 5, after waiting for another request's fetch of `plan`'s key:
    /// the lookup again, not counted as a second hit or miss (the request's
    /// miss was counted); a hit is counted as coalesced.
    pub async fn lookup_landed(&self, plan: &Plan, req: &(dyn RequestHead + Sync)) -> Lookup {
        let found = self.lookup_counted(plan, req, false).await;
        if matches!(found, Lookup::Hit(_)) {
            Counters::bump(&self.counters(plan).coalesced);
        }
        found
    }

    async fn lookup_counted(
        &self,
        plan: &Plan,
        req: &(dyn RequestHead + Sync),
        count: bool,
    ) -> Lookup {
        if let Some(found) = self.lookup_now_counted(plan, req, count) {
            return found;
        }
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        let found = match store.get(cache, plan.key.as_str(), now).await {
            Ok(Some(Stored::Variants(index))) => {
                let key = variant_key(&plan.key, &index, req, &self.inner.identity);
                let found = store.get(cache, key.as_str(), now).await;
                Found::Variant(found, key)
            }
            found => Found::Primary(found),
        };
        self.record_lookup(plan, found, now, count)
    }

    /// [`lookup`](Self::lookup) without waiting, when the store can answer at
    /// once (the in-memory store always can); `None` when it cannot.
    pub fn lookup_now(&self, plan: &Plan, req: &dyn RequestHead) -> Option<Lookup> {
        self.lookup_now_counted(plan, req, true)
    }

    fn lookup_now_counted(
        &self,
        plan: &Plan,
        req: &dyn RequestHead,
        count: bool,
    ) -> Option<Lookup> {
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        let found = match store.get_now(cache, plan.key.as_str(), now)? {
            Ok(Some(Stored::Variants(index))) => {
                let key = variant_key(&plan.key, &index, req, &self.inner.identity);
                let found = store.get_now(cache, key.as_str(), now)?;
                Found::Variant(found, key)
            }
            found => Found::Primary(found),
        };
        Some(self.record_lookup(plan, found, now, count))
    }

    fn record_lookup(&self, plan: &Plan, found: Found, now: SystemTime, count: bool) -> Lookup {
        let counters = self.counters(plan);
        let bump = |counter| {
            if count {
                Counters::bump(counter);
            }
        };
        let miss = |reason| {
            bump(&counters.misses);
            Lookup::Miss(reason)
        };
        let (found, variant) = match found {
            Found::Primary(found) => (found, None),
            Found::Variant(found, key) => (found, Some(key)),
        };
        let entry = match found {
            Ok(Some(Stored::Response(entry))) => entry,
            // An index under a variant key (the generation collided) or an
            // application value under an HTTP key: neither answers; a miss.
            Ok(Some(Stored::Variants(_) | Stored::Value(_)) | None) => {
                return miss(if variant.is_some() {
                    Forward::VaryMiss
                } else {
                    Forward::UriMiss
                });
            }
            Err(error) => {
                tracing::warn!(%error, key = %plan.key, "cache lookup failed; forwarding to the origin");
                Counters::bump(&counters.store_errors);
                return miss(Forward::UriMiss);
            }
        };
        let revalidation = |entry: &Arc<CachedResponse>, reason| Revalidation {
            entry: Arc::clone(entry),
            key: variant.clone().unwrap_or_else(|| plan.key.clone()),
            reason,
        };
        let age = entry.age(now);
        let directives = &plan.directives;
        let reason = if entry.is_fresh(now) {
            let ttl = entry.time_to_live(now);
            if directives.accepts(age, ttl) {
                bump(&counters.hits);
                let refresh = self
                    .refreshes_early(plan, &entry, ttl)
                    .then(|| Box::new(revalidation(&entry, Forward::Stale)));
                return Lookup::Hit(Hit {
                    entry,
                    age,
                    ttl,
                    staleness: None,
                    refresh,
                });
            }
            Forward::Request
        } else {
            let staleness = entry.staleness(now);
            let while_revalidating =
                entry.serves_while_revalidating(now) && directives.accepts_while_revalidating(age);
            if while_revalidating || directives.accepts_stale(age, staleness, entry.forbids_stale())
            {
                bump(&counters.hits);
                if while_revalidating {
                    bump(&counters.stale);
                }
                let refresh =
                    while_revalidating.then(|| Box::new(revalidation(&entry, Forward::Stale)));
                return Lookup::Hit(Hit {
                    entry,
                    age,
                    ttl: Duration::ZERO,
                    staleness: Some(staleness),
                    refresh,
                });
            }
            Forward::Stale
        };
        // Kept past its freshness: revalidated when it has validators,
        // fetched anew otherwise — and served if the origin fails, within
        // its `stale-if-error` window.
        bump(&counters.misses);
        Lookup::Revalidate(revalidation(&entry, reason))
    }

    /// Whether a fresh hit with `ttl` left should also refresh the entry in
    /// the background: the rule's early refresh (XFetch) fires with a
    /// probability that grows as expiry nears and with the fetch time.
    fn refreshes_early(&self, plan: &Plan, entry: &CachedResponse, ttl: Duration) -> bool {
        let Some(beta) = plan.rule.early_refresh() else {
            return false;
        };
        let fetch_time = entry.fetch_time();
        !fetch_time.is_zero() && refresh_early(ttl, fetch_time, beta, unit_random())
    }

    /// Step 3: the response for a hit — 304 when `req`'s preconditions show
    /// the client's copy is current (RFC 9110 §13.2.2), otherwise the stored
    /// response (without a body for `HEAD`) — labelled with `Age` and
    /// `Cache-Status`. The origin is not contacted.
    pub fn answer(&self, plan: &Plan, hit: &Hit, req: &dyn RequestHead) -> Answer {
        let outcome = match hit.staleness {
            None => Outcome::Hit {
                age: hit.age,
                ttl: hit.ttl,
            },
            Some(staleness) => Outcome::StaleHit {
                age: hit.age,
                staleness,
                refreshing: hit.refresh.is_some(),
            },
        };
        self.respond(plan, hit.entry(), &outcome, req)
    }

    /// A stored response for `req`, labelled with `outcome`: 304 when the
    /// client's preconditions match it, else the response itself.
    fn respond(
        &self,
        plan: &Plan,
        entry: &CachedResponse,
        outcome: &Outcome,
        req: &dyn RequestHead,
    ) -> Answer {
        if answers_not_modified(req, entry.status(), entry.headers()) {
            let mut headers = not_modified_headers(entry.headers());
            self.inner
                .status_headers
                .write(outcome, Some(&plan.key), &mut headers);
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
            .write(outcome, Some(&plan.key), &mut headers);
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
        self.assess(plan, plan.facts, status, headers)
            .inspect_err(|_| self.not_stored(plan))
    }

    /// The freshness of a response to `plan` received now, and whether the
    /// policy lets it be stored for a request described by `facts`.
    fn assess(
        &self,
        plan: &Plan,
        facts: RequestFacts,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Storable, NotStorable> {
        let received_at = self.inner.clock.now();
        let mut freshness = freshness(
            headers,
            received_at,
            plan.rule.ttl(),
            plan.rule.respect_origin(),
        );
        if !freshness.explicit && plan.rule.heuristic_freshness() {
            freshness.lifetime = heuristic_lifetime(headers, received_at).min(plan.rule.ttl());
        }
        let vary = check_storable(facts, self.rule_facts(plan), status, headers, &freshness)?;
        Ok(Storable {
            freshness,
            received_at,
            vary,
            // Every entry is indexed under its URI, for purges by URI.
            tags: vec![plan.uri_term(self.inner.key_host)],
        })
    }

    fn rule_facts<'a>(&self, plan: &'a Plan) -> RuleFacts<'a> {
        RuleFacts {
            keyed: plan.rule.vary_headers(),
            statuses: plan.rule.statuses(),
            keep: plan.rule.keep(),
            respect_origin: plan.rule.respect_origin(),
            share_cookie_requests: plan.rule.share_cookie_requests(),
        }
    }

    /// Records that a response for `plan` was not stored for a reason found
    /// after [`check_storable`](Self::check_storable) (its body was too large,
    /// it had trailers).
    pub fn not_stored(&self, plan: &Plan) {
        Counters::bump(&self.counters(plan).not_stored);
    }

    /// Step 4, once the body is complete: stores the response for `plan`,
    /// under the variant `req` selects when the response has `Vary`.
    /// `headers` are the response's: they gain `Content-Length` and, for a
    /// body without one, a strong `ETag`, so the client sees what later hits
    /// will send. The stored copy drops hop-by-hop headers. Returns whether
    /// it was stored; a store failure is logged and counted.
    pub async fn store(
        &self,
        plan: &Plan,
        storable: Storable,
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
        let mut stored = headers.clone();
        for name in &NOT_STORED_HEADERS {
            stored.remove(name);
        }
        let entry = self.entry(plan, &storable, status, stored, body, generated_etag);
        let result = self.insert_variant(plan, &storable.vary, req, entry).await;
        self.record_insert(plan, result)
    }

    /// A response as stored: fresh by `storable`, kept stale for the rule's
    /// `keep` when the origin gave a validator to revalidate it with (not
    /// an `ETag` the cache generated).
    fn entry(
        &self,
        plan: &Plan,
        storable: &Storable,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        generated_etag: bool,
    ) -> CachedResponse {
        let entry = CachedResponse::new(
            status,
            headers,
            body,
            storable.received_at,
            storable.freshness.remaining(),
        )
        .with_initial_age(storable.freshness.initial_age)
        .with_tags(Arc::from(storable.tags.as_slice()));
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
        let (while_revalidate, if_error) = self.stale_windows(plan, entry.headers());
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
    fn stale_windows(&self, plan: &Plan, headers: &HeaderMap) -> (Duration, Duration) {
        let rule = &plan.rule;
        let cc = CacheControl::from_headers(headers);
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
    async fn insert_variant(
        &self,
        plan: &Plan,
        vary: &[HeaderName],
        req: &(dyn RequestHead + Sync),
        entry: CachedResponse,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        if vary.is_empty() {
            return store.insert(cache, &plan.key, Stored::from(entry)).await;
        }
        let now = self.inner.clock.now();
        let max_variants = self.inner.limits.max_variants;
        let index = match store.get(cache, plan.key.as_str(), now).await? {
            Some(Stored::Variants(index))
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
        let key = variant_key(&plan.key, &index, req, &self.inner.identity);
        store
            .insert(cache, &plan.key, Stored::Variants(Arc::new(index)))
            .await?;
        store.insert(cache, &key, Stored::from(entry)).await
    }

    fn record_insert(&self, plan: &Plan, result: Result<(), StoreError>) -> bool {
        let counters = self.counters(plan);
        match result {
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

    /// Step 4 for a revalidation the origin answered 304 Not Modified
    /// (RFC 9111 §4.3.4): the stored headers are updated with the 304's
    /// (all but `Content-Length`, `Set-Cookie` and hop-by-hop ones), its
    /// freshness is computed anew, and the entry is stored again — or
    /// removed, if the updated headers no longer allow storing. Returns the
    /// response for the client (a 304 of its own when its preconditions
    /// match), or `None` when the 304 names a different representation
    /// than the stored one: the entry is then removed and the 304 cannot
    /// be used.
    pub async fn revalidated(
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
            if let Err(error) = store.remove(cache, revalidation.key.as_str()).await {
                tracing::warn!(%error, key = %revalidation.key, "removing a replaced entry failed");
            }
            return None;
        }
        let headers = merge_not_modified(stored.headers(), not_modified);
        // The entry answers a GET even when a HEAD revalidated it.
        let facts = RequestFacts {
            head_as_get: false,
            ..plan.facts
        };
        let (entry, stored_again) = match self.assess(plan, facts, stored.status(), &headers) {
            Ok(storable) => {
                // Same tags as before: a 304 says nothing about them.
                let storable = Storable {
                    tags: stored.tags().to_vec(),
                    ..storable
                };
                let generated_etag =
                    stored.has_generated_etag() && !not_modified.contains_key(header::ETAG);
                let entry = Arc::new(self.entry(
                    plan,
                    &storable,
                    stored.status(),
                    headers,
                    stored.body().clone(),
                    generated_etag,
                ));
                let result = store
                    .insert(
                        cache,
                        &revalidation.key,
                        Stored::Response(Arc::clone(&entry)),
                    )
                    .await;
                (entry, self.record_insert(plan, result))
            }
            Err(reason) => {
                if reason != NotStorable::RequestNoStore {
                    self.not_stored(plan);
                    if let Err(error) = store.remove(cache, revalidation.key.as_str()).await {
                        tracing::warn!(%error, key = %revalidation.key, "removing an entry failed");
                    }
                }
                // Used once, for this answer.
                let now = self.inner.clock.now();
                let entry = CachedResponse::new(
                    stored.status(),
                    headers,
                    stored.body().clone(),
                    now,
                    Duration::ZERO,
                );
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
    pub fn origin_failed(
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
            .write(&outcome, Some(&plan.key), &mut headers);
        Some(Answer {
            status: StatusCode::GATEWAY_TIMEOUT,
            headers,
            body: Bytes::new(),
        })
    }

    /// Labels a response that went to the origin for `reason`: its status,
    /// and whether it was stored, why not, or that it is being recorded.
    pub fn forwarded(
        &self,
        plan: &Plan,
        reason: Forward,
        status: StatusCode,
        storage: &Storage,
        headers: &mut HeaderMap,
    ) {
        let outcome = Outcome::Forward {
            reason,
            status: Some(status),
            stored: matches!(storage, Storage::Stored),
            detail: match storage {
                Storage::Stored => None,
                Storage::Recording => Some("recording".to_owned()),
                Storage::Refused(why) => Some(why.to_string()),
            },
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

/// XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh an entry
/// with `ttl` left when `fetch_time · beta · −ln(u)` reaches it, for `u`
/// uniform in (0, 1]. Early refreshes spread out and grow likelier as
/// expiry nears, and slow fetches start sooner.
fn refresh_early(ttl: Duration, fetch_time: Duration, beta: f64, u: f64) -> bool {
    fetch_time.as_secs_f64() * beta * -u.ln() >= ttl.as_secs_f64()
}

/// A number uniform in (0, 1], from 53 random bits.
fn unit_random() -> f64 {
    let bits = getrandom::u64().unwrap_or(u64::MAX) >> 11;
    (bits as f64 + 1.0) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::DEFAULT_MAX_KEY_BYTES;
    use crate::{Identity, Rule};

    fn cache() -> Cache {
        Cache::builder()
            .rule(Rule::new("^/api/me$").vary_by_user(true))
            .rule(Rule::new("^/api/long$").vary_headers(["x-long"]))
            .rule(Rule::new("^/api/"))
            .identity(Identity::none().header(http::HeaderName::from_static("x-api-key")))
            .build()
            .unwrap()
    }

    fn route(target: &str, headers: &[(&str, &str)]) -> Route {
        let mut req = http::Request::get(target);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        cache().route(&req.body(()).unwrap())
    }

    fn rule_of(route: &Route) -> Option<usize> {
        match route {
            Route::Cache(plan) => Some(plan.rule().index()),
            _ => None,
        }
    }

    #[test]
    fn rules_match_the_canonical_path_the_origin_receives() {
        for target in ["/api/m%65", "/api/./me", "/static/../api/me", "/api/%6De"] {
            let route = route(target, &[]);
            assert_eq!(rule_of(&route), Some(0), "{target}");
            let Route::Cache(plan) = route else {
                unreachable!()
            };
            assert_eq!(plan.target().map(PathAndQuery::as_str), Some("/api/me"));
            assert!(plan.changes_path());
        }
        let Route::Cache(plan) = route("/api/me", &[]) else {
            panic!("cached")
        };
        assert_eq!(plan.target(), None);
    }

    #[test]
    fn requests_the_key_cannot_describe_bypass() {
        let bypassed = |headers: &[(&str, &str)]| {
            matches!(route("/api/items", headers), Route::Bypass(Forward::Bypass))
        };
        assert!(!bypassed(&[
            ("connection", "keep-alive, close"),
            ("content-length", "0")
        ]));
        for headers in [
            &[("content-length", "5")][..],
            &[("transfer-encoding", "chunked")],
            &[("connection", "accept-language")],
            &[("connection", "keep-alive, x-secret")],
            &[("upgrade", "websocket")],
            &[("range", "bytes=0-1")],
            &[("x-http-method-override", "DELETE")],
            &[("x-original-url", "/admin")],
        ] {
            assert!(bypassed(headers), "{headers:?}");
        }
    }

    #[test]
    fn an_unclear_identity_bypasses_a_per_user_rule() {
        assert!(matches!(
            route("/api/me", &[("x-api-key", "")]),
            Route::Bypass(_)
        ));
        let mut req = http::Request::get("/api/me");
        req = req.header("x-api-key", "a").header("x-api-key", "b");
        assert!(matches!(
            cache().route(&req.body(()).unwrap()),
            Route::Bypass(_)
        ));
        assert!(matches!(
            route("/api/me", &[("x-api-key", "a")]),
            Route::Cache(_)
        ));
        assert!(matches!(route("/api/me", &[]), Route::Cache(_)));
    }

    #[test]
    fn keys_longer_than_max_key_bytes_bypass() {
        let long = "v".repeat(DEFAULT_MAX_KEY_BYTES);
        assert!(matches!(
            route("/api/long", &[("x-long", "short")]),
            Route::Cache(_)
        ));
        assert!(matches!(
            route("/api/long", &[("x-long", &long)]),
            Route::Bypass(_)
        ));
        let target = format!("/api/items?{long}");
        assert!(matches!(route(&target, &[]), Route::Bypass(_)));
    }

    #[test]
    fn credentials_a_rule_keys_on_are_hashed() {
        let cache = Cache::builder()
            .rule(Rule::new("^/").vary_headers(["cookie", "authorization"]))
            .build()
            .unwrap();
        let req = http::Request::get("/a")
            .header("cookie", "sessionid=SECRET")
            .header("authorization", "Bearer SECRET")
            .body(())
            .unwrap();
        let Route::Cache(plan) = cache.route(&req) else {
            panic!("cached")
        };
        assert!(!plan.key().as_str().contains("SECRET"), "{}", plan.key());
    }

    #[test]
    fn early_refresh_grows_likelier_near_expiry_and_with_slow_fetches() {
        let secs = Duration::from_secs;
        // u = 1 never refreshes; a small u refreshes well before expiry.
        assert!(!refresh_early(secs(1), secs(1), 1.0, 1.0));
        assert!(refresh_early(secs(4), secs(1), 1.0, 0.01));
        assert!(!refresh_early(secs(5), secs(1), 1.0, 0.01));
        // The same draw fires sooner for a slower fetch or a larger beta.
        assert!(refresh_early(secs(20), secs(5), 1.0, 0.01));
        assert!(refresh_early(secs(20), secs(1), 5.0, 0.01));
        let draws = (0..10_000).map(|_| unit_random());
        assert!(draws.clone().all(|u| u > 0.0 && u <= 1.0));
        let mean = draws.sum::<f64>() / 10_000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
