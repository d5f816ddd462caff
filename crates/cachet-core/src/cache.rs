//! The [`Cache`] handle: rules, named caches, store, clock and stats in one
//! cheaply cloneable value, with the request-path steps that adapters call and
//! the key-tracking operations that operators call.

use crate::clock::{SharedClock, SystemClock};
use crate::entry::CachedResponse;
use crate::error::{ConfigError, StoreError};
use crate::identity::Identity;
use crate::key::{combine_header_values, CacheKey, KeyBuilder};
use crate::policy::{check_storable, NotStorable, RequestFacts};
use crate::request::RequestHead;
use crate::rules::{CacheSpec, CompiledRule, Rule, RuleSet, DEFAULT_CACHE};
use crate::stats::{CacheStats, Counters, StatsSnapshot};
use crate::store::{MokaStore, Store};
use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::StatusCode;
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A response cache: what to cache (rules), where (named caches in a store),
/// and its statistics. Clone it freely; clones share everything.
///
/// Adapters drive it per request with [`plan`](Self::plan),
/// [`lookup`](Self::lookup), [`check_storable`](Self::check_storable) and
/// [`store`](Self::store); operators use the key-tracking methods.
///
/// ```
/// use cachet_core::{Cache, MockClock, Rule};
/// use std::time::Duration;
///
/// # tokio_test_block_on(async {
/// let clock = MockClock::new();
/// let cache = Cache::builder()
///     .rule(Rule::new("^/api/").ttl(Duration::from_secs(60)))
///     .clock(clock.clone())
///     .build()
///     .unwrap();
///
/// let request = http::Request::get("/api/items?b=2&a=1").body(()).unwrap();
/// let plan = cache.plan(&request).expect("a rule matches");
/// assert_eq!(plan.key().as_str(), "/api/items?a=1&b=2 GET");
/// assert!(cache.lookup(&plan).await.is_none());
///
/// let headers = http::HeaderMap::new();
/// cache.check_storable(&plan, http::StatusCode::OK, &headers).unwrap();
/// cache.store(&plan, http::StatusCode::OK, headers, "hello".into()).await;
///
/// clock.advance(Duration::from_secs(5));
/// let hit = cache.lookup(&plan).await.expect("fresh");
/// assert_eq!(hit.entry().body(), "hello");
/// assert_eq!(hit.age(), Duration::from_secs(5));
///
/// clock.advance(Duration::from_secs(60));
/// assert!(cache.lookup(&plan).await.is_none());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    rules: RuleSet,
    caches: BTreeMap<String, CacheSpec>,
    counters: HashMap<String, Arc<Counters>>,
    /// The counters of each rule's cache, by rule index.
    rule_counters: Vec<Arc<Counters>>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    identity: Identity,
    started: SystemTime,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("rules", &self.inner.rules.rules().len())
            .field("caches", &self.inner.caches)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cache`]. Nothing is applied until [`build`](Self::build)
/// has checked the whole configuration.
#[must_use]
pub struct CacheBuilder {
    caches: BTreeMap<String, CacheSpec>,
    rules: Vec<Rule>,
    identity: Identity,
    clock: SharedClock,
    store: Option<Arc<dyn Store>>,
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("caches", &self.caches)
            .field("rules", &self.rules)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self {
            caches: BTreeMap::from([(DEFAULT_CACHE.to_owned(), CacheSpec::default())]),
            rules: Vec::new(),
            identity: Identity::default(),
            clock: Arc::new(SystemClock),
            store: None,
        }
    }
}

impl CacheBuilder {
    /// Adds (or replaces) the named cache `name`. A cache called `default`
    /// (64 MiB, 5 minutes) exists unless replaced.
    pub fn cache(mut self, name: impl Into<String>, spec: CacheSpec) -> Self {
        self.caches.insert(name.into(), spec);
        self
    }

    /// Appends a rule; rules are tried in the order they are added.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Appends several rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = Rule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// How users are told apart (default: [`Identity::default`]).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The clock (default: the system clock). Tests pass a [`MockClock`](crate::MockClock).
    pub fn clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A store to use instead of the in-memory [`MokaStore`]. It must know
    /// every named cache of this builder.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Checks the configuration and builds the cache.
    pub fn build(self) -> Result<Cache, ConfigError> {
        for (name, spec) in &self.caches {
            if spec.max_bytes == 0 {
                return Err(ConfigError::Cache {
                    name: name.clone(),
                    field: "max_bytes".into(),
                    reason: "a size of zero bytes would store nothing; it must be above zero"
                        .into(),
                });
            }
        }
        let rules = RuleSet::compile(&self.rules, &self.caches)?;
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MokaStore::new(&self.caches, Arc::clone(&self.clock))));
        let counters: HashMap<String, Arc<Counters>> = self
            .caches
            .keys()
            .map(|name| (name.clone(), Arc::default()))
            .collect();
        let rule_counters = rules
            .rules()
            .iter()
            .map(|rule| Arc::clone(&counters[rule.cache()]))
            .collect();
        let started = self.clock.now();
        Ok(Cache {
            inner: Arc::new(Inner {
                rules,
                caches: self.caches,
                counters,
                rule_counters,
                store,
                clock: self.clock,
                identity: self.identity,
                started,
            }),
        })
    }
}

/// What the cache will do with one request that matched a rule: the rule and
/// the key, and the facts the storage policy needs later.
#[derive(Debug, Clone)]
pub struct Plan {
    rule: Arc<CompiledRule>,
    key: CacheKey,
    head: bool,
    facts: RequestFacts,
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
}

/// A fresh entry found for a request.
#[derive(Debug, Clone)]
pub struct Hit {
    entry: Arc<CachedResponse>,
    age: Duration,
}

impl Hit {
    /// The stored response.
    pub fn entry(&self) -> &Arc<CachedResponse> {
        &self.entry
    }
    /// How long it has been stored.
    pub fn age(&self) -> Duration {
        self.age
    }
}

/// A key and the named cache that holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StoredKey {
    /// The named cache.
    pub cache: String,
    /// The key.
    pub key: CacheKey,
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
    /// A builder with the `default` cache and no rules.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// Step 1 and 3 of the request path: the rule that matches `req` and the
    /// key of its entry, or `None` when the request is not cached (no rule,
    /// a method the rule does not cache, or a range request).
    pub fn plan(&self, req: &dyn RequestHead) -> Option<Plan> {
        let method = req.method();
        let head = match method {
            "GET" => false,
            "HEAD" => true,
            _ => return None,
        };
        let rule = self.inner.rules.find(req.path())?;
        // Range requests pass through: partial content is never stored.
        if !rule.caches_method(method) || req.header(&header::RANGE).is_some() {
            return None;
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
        Some(Plan {
            rule: Arc::clone(rule),
            key: key.finish(),
            head,
            facts: RequestFacts {
                shared,
                authorized: req.header(&header::AUTHORIZATION).is_some(),
                head_as_get: head && !rule.vary_by_method(),
            },
        })
    }

    /// Step 4: the fresh entry for `plan`, if any. Counts a hit or a miss; a
    /// store failure is logged and counted, and reads as a miss.
    pub async fn lookup(&self, plan: &Plan) -> Option<Hit> {
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
    pub fn lookup_now(&self, plan: &Plan) -> Option<Option<Hit>> {
        let now = self.inner.clock.now();
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
    ) -> Option<Hit> {
        let counters = self.counters(plan);
        match found {
            Ok(Some(entry)) => {
                Counters::bump(&counters.hits);
                let age = entry.age(now);
                Some(Hit { entry, age })
            }
            Ok(None) => {
                Counters::bump(&counters.misses);
                None
            }
            Err(error) => {
                tracing::warn!(%error, key = %plan.key, "cache lookup failed; forwarding to the origin");
                Counters::bump(&counters.store_errors);
                Counters::bump(&counters.misses);
                None
            }
        }
    }

    /// Step 5, before the body is read: whether a response with `status` and
    /// `headers` may be stored for `plan`. A refusal is counted.
    pub fn check_storable(
        &self,
        plan: &Plan,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<(), NotStorable> {
        let verdict = check_storable(plan.facts, plan.rule.vary_headers(), status, headers);
        if verdict.is_err() {
            self.not_stored(plan);
        }
        verdict
    }

    /// Records that a response for `plan` was not stored for a reason found
    /// after [`check_storable`](Self::check_storable) (its body was too large,
    /// it had trailers).
    pub fn not_stored(&self, plan: &Plan) {
        Counters::bump(&self.counters(plan).not_stored);
    }

    /// Step 5, once the body is complete: stores the response for `plan`
    /// (which must have passed [`check_storable`](Self::check_storable)).
    /// Returns whether it was stored; a store failure is logged and counted.
    pub async fn store(
        &self,
        plan: &Plan,
        status: StatusCode,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> bool {
        for name in &NOT_STORED_HEADERS {
            headers.remove(name);
        }
        headers.insert(header::CONTENT_LENGTH, body.len().into());
        let entry = CachedResponse::new(
            status,
            headers,
            body,
            self.inner.clock.now(),
            plan.rule.ttl(),
        );
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

    /// The counters of the cache holding `plan`'s entry (by rule index: no
    /// string hashing on the request path).
    fn counters(&self, plan: &Plan) -> &Counters {
        &self.inner.rule_counters[plan.rule.index()]
    }

    /// The compiled rules.
    pub fn rules(&self) -> &RuleSet {
        &self.inner.rules
    }

    /// The named caches and their budgets.
    pub fn caches(&self) -> &BTreeMap<String, CacheSpec> {
        &self.inner.caches
    }

    /// The clock the cache reads.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Every live key, with the cache holding it, sorted.
    pub async fn keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let mut all = Vec::new();
        for cache in self.inner.caches.keys() {
            let keys = self.inner.store.keys(cache).await?;
            all.extend(keys.into_iter().map(|key| StoredKey {
                cache: cache.clone(),
                key,
            }));
        }
        all.sort();
        Ok(all)
    }

    /// The live keys that `pattern` matches (anywhere in the key; anchor it
    /// with `^` to match from the path's start).
    pub async fn keys_matching(&self, pattern: &Regex) -> Result<Vec<StoredKey>, StoreError> {
        let mut keys = self.keys().await?;
        keys.retain(|stored| pattern.is_match(stored.key.as_str()));
        Ok(keys)
    }

    /// Deletes `key` from whichever cache holds it; whether it was there.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut found = false;
        for cache in self.inner.caches.keys() {
            found |= self.inner.store.remove(cache, key).await?;
        }
        Ok(found)
    }

    /// Deletes every key `pattern` matches; how many were deleted.
    pub async fn delete_matching(&self, pattern: &Regex) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for stored in self.keys_matching(pattern).await? {
            deleted += usize::from(
                self.inner
                    .store
                    .remove(&stored.cache, stored.key.as_str())
                    .await?,
            );
        }
        Ok(deleted)
    }

    /// Makes `key` fresh for `ttl` from now; whether it was there.
    pub async fn refresh(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut found = false;
        for cache in self.inner.caches.keys() {
            found |= self
                .refresh_in(cache, &CacheKey::from_raw(key), ttl)
                .await?;
        }
        Ok(found)
    }

    /// Makes every key `pattern` matches fresh for `ttl` from now; how many.
    pub async fn refresh_matching(
        &self,
        pattern: &Regex,
        ttl: Duration,
    ) -> Result<usize, StoreError> {
        let mut refreshed = 0;
        for stored in self.keys_matching(pattern).await? {
            refreshed += usize::from(self.refresh_in(&stored.cache, &stored.key, ttl).await?);
        }
        Ok(refreshed)
    }

    async fn refresh_in(
        &self,
        cache: &str,
        key: &CacheKey,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.inner.clock.now();
        let Some(entry) = self.inner.store.get(cache, key.as_str(), now).await? else {
            return Ok(false);
        };
        let refreshed = entry.refreshed(now, ttl);
        self.inner
            .store
            .insert(cache, key, Arc::new(refreshed))
            .await?;
        Ok(true)
    }

    /// Removes every entry of the named cache `cache`.
    pub async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        if !self.inner.caches.contains_key(cache) {
            return Err(crate::store::unknown_cache(cache));
        }
        self.inner.store.clear(cache).await
    }

    /// Removes every entry of every named cache.
    pub async fn clear_all(&self) -> Result<(), StoreError> {
        for cache in self.inner.caches.keys() {
            self.inner.store.clear(cache).await?;
        }
        Ok(())
    }

    /// The figures of every named cache now.
    pub fn stats(&self) -> StatsSnapshot {
        let caches = self
            .inner
            .caches
            .iter()
            .map(|(name, spec)| {
                let usage = self.inner.store.usage(name).unwrap_or_default();
                (
                    name.clone(),
                    CacheStats::new(&self.inner.counters[name], usage, spec.max_bytes),
                )
            })
            .collect();
        let uptime = self
            .inner
            .clock
            .now()
            .duration_since(self.inner.started)
            .unwrap_or_default();
        StatsSnapshot {
            uptime_secs: uptime.as_secs(),
            caches,
        }
    }
}
