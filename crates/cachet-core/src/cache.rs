//! The [`Cache`] handle: rules, named caches, store, clock and stats in one
//! cheaply cloneable value, with the request-path steps that adapters call and
//! the key-tracking operations that operators call.

use crate::clock::{SharedClock, SystemClock};
use crate::coalesce::Coalescer;
use crate::entry::Stored;
use crate::error::{ConfigError, StoreError};
use crate::identity::Identity;
use crate::key::CacheKey;
use crate::outcome::StatusHeaders;
use crate::request_path::Plan;
use crate::rules::{CacheSpec, Rule, RuleSet, DEFAULT_CACHE};
use crate::stats::{CacheStats, Counters, StatsSnapshot};
use crate::store::{MokaStore, Store};
use crate::tags::TagSettings;
use crate::values::{Codec, Flights};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A response cache: what to cache (rules), where (named caches in a store),
/// and its statistics. Clone it freely; clones share everything.
///
/// Adapters drive it per request with [`route`](Self::route),
/// [`lookup`](Self::lookup), [`answer`](Self::answer),
/// [`check_storable`](Self::check_storable) and [`store`](Self::store)
/// (see the `request_path` steps); operators use the key-tracking methods.
///
/// ```
/// use cachet_core::{Cache, Lookup, MockClock, Route, Rule};
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
/// let Route::Cache(plan) = cache.route(&request) else { panic!("a rule matches") };
/// assert_eq!(plan.key().as_str(), "/api/items?b=2&a=1 GET");
/// assert!(matches!(cache.lookup(&plan, &request).await, Lookup::Miss(_)));
///
/// let mut headers = http::HeaderMap::new();
/// let storable = cache.check_storable(&plan, http::StatusCode::OK, &headers).unwrap();
/// cache.store(&plan, storable, &request, http::StatusCode::OK, &mut headers, "hello".into()).await;
/// assert!(headers.contains_key("etag"));
///
/// clock.advance(Duration::from_secs(5));
/// let Lookup::Hit(hit) = cache.lookup(&plan, &request).await else { panic!("fresh") };
/// assert_eq!(hit.entry().body(), "hello");
/// assert_eq!(hit.age(), Duration::from_secs(5));
///
/// clock.advance(Duration::from_secs(60));
/// assert!(matches!(cache.lookup(&plan, &request).await, Lookup::Miss(_)));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) rules: RuleSet,
    pub(crate) caches: BTreeMap<String, CacheSpec>,
    counters: HashMap<String, Arc<Counters>>,
    /// The counters of each rule's cache, by rule index.
    rule_counters: Vec<Arc<Counters>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: SharedClock,
    pub(crate) identity: Identity,
    pub(crate) status_headers: StatusHeaders,
    pub(crate) tags: TagSettings,
    pub(crate) codec: Codec,
    pub(crate) key_host: bool,
    pub(crate) flights: Flights,
    pub(crate) coalescer: Arc<Coalescer>,
    pub(crate) limits: Limits,
    started: SystemTime,
}

/// Request headers that make a request skip the cache unless configured
/// otherwise: they ask an origin to treat the request as another method or
/// another URL, which no key holds.
pub const DEFAULT_BYPASS_HEADERS: [&str; 5] = [
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// The longest key a request may make, unless configured otherwise: longer
/// targets bypass the cache.
pub(crate) const DEFAULT_MAX_KEY_BYTES: usize = 8 * 1024;
/// How many variants of one URL a response's `Vary` may make, unless
/// configured otherwise.
pub(crate) const DEFAULT_MAX_VARIANTS: usize = 64;
/// How many tags a response may carry into the index (more are dropped),
/// unless configured otherwise.
pub(crate) const DEFAULT_MAX_TAGS: usize = 64;

/// The longest tag indexed, in bytes: longer ones are dropped.
pub(crate) const MAX_TAG_BYTES: usize = 256;

/// The bounds on what client input makes the cache keep, and the headers
/// that bypass it.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) bypass_headers: Vec<http::HeaderName>,
    pub(crate) max_key_bytes: usize,
    pub(crate) max_variants: usize,
    pub(crate) max_tags: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bypass_headers: DEFAULT_BYPASS_HEADERS
                .iter()
                .map(|name| http::HeaderName::from_static(name))
                .collect(),
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_variants: DEFAULT_MAX_VARIANTS,
            max_tags: DEFAULT_MAX_TAGS,
        }
    }
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
    status_headers: StatusHeaders,
    tags: TagSettings,
    codec: Codec,
    key_host: bool,
    limits: Limits,
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
            status_headers: StatusHeaders::default(),
            tags: TagSettings::default(),
            codec: Codec::default(),
            key_host: false,
            limits: Limits::default(),
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

    /// Whether keys include the request's host (`Host`, or the URI's
    /// authority), normalized, so that virtual hosts behind one reverse
    /// proxy never share entries (default `false`: an application serves
    /// one site).
    pub fn key_host(mut self, on: bool) -> Self {
        self.key_host = on;
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

    /// Also write `X-Cache: HIT|MISS|BYPASS` (default `false`; `Cache-Status`
    /// is always written).
    pub fn x_cache(mut self, on: bool) -> Self {
        self.status_headers.x_cache = on;
        self
    }

    /// Put the key and the reason a response was not stored into
    /// `Cache-Status` (default `false`: keys reveal request details).
    pub fn debug_headers(mut self, on: bool) -> Self {
        self.status_headers.debug = on;
        self
    }

    /// The response header handlers put tags in (default `Cache-Tag`).
    pub fn tag_header(mut self, name: http::HeaderName) -> Self {
        self.tags.header = name;
        self
    }

    /// Whether the tag header is taken off responses before they reach the
    /// client (default `true`).
    pub fn strip_tag_header(mut self, strip: bool) -> Self {
        self.tags.strip = strip;
        self
    }

    /// How the programmatic cache serializes values (default
    /// [`Codec::Binary`]).
    pub fn value_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Request headers whose presence makes a request skip the cache, for
    /// every rule that sets no `bypass_headers` of its own (default
    /// [`DEFAULT_BYPASS_HEADERS`]: method-override and URL-rewrite headers).
    /// Behind a load balancer that passes client-sent `X-Forwarded-Host`
    /// on, add it here (or key on it with `vary_headers`); see
    /// docs/security.md.
    pub fn bypass_headers(mut self, names: impl IntoIterator<Item = http::HeaderName>) -> Self {
        self.limits.bypass_headers = names.into_iter().collect();
        self
    }

    /// The longest key a request may make, in bytes (default 8 KiB): a
    /// request with a longer target or varied headers bypasses the cache.
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_key_bytes = bytes;
        self
    }

    /// How many variants (`Vary`) one URL may have at once (default 64):
    /// past it, a new variant is not stored.
    pub fn max_variants(mut self, count: usize) -> Self {
        self.limits.max_variants = count;
        self
    }

    /// How many tags one response may carry into the tag index (default
    /// 64): the rest are dropped, and tags longer than 256 bytes too.
    pub fn max_tags(mut self, count: usize) -> Self {
        self.limits.max_tags = count;
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
        for (field, value) in [
            ("max_key_bytes", self.limits.max_key_bytes),
            ("max_variants", self.limits.max_variants),
        ] {
            if value == 0 {
                return Err(ConfigError::Section {
                    section: "security".into(),
                    field: field.into(),
                    reason: "zero would cache nothing; it must be above zero".into(),
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
                coalescer: Arc::new(Coalescer::new(Arc::clone(&self.clock))),
                clock: self.clock,
                identity: self.identity,
                status_headers: self.status_headers,
                tags: self.tags,
                codec: self.codec,
                key_host: self.key_host,
                flights: Flights::default(),
                limits: self.limits,
                started,
            }),
        })
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

impl Cache {
    /// A builder with the `default` cache and no rules.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// The counters of the cache holding `plan`'s entry (by rule index: no
    /// string hashing on the request path).
    pub(crate) fn counters(&self, plan: &Plan) -> &Counters {
        &self.inner.rule_counters[plan.rule().index()]
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

    /// The tags of a response: those in its tag header (taken off `headers`
    /// unless configured otherwise) and in its [`CacheTags`](crate::CacheTags)
    /// extension. Adapters call it on every response the cache handles.
    pub fn take_tags(
        &self,
        headers: &mut http::HeaderMap,
        extension: Option<&crate::CacheTags>,
    ) -> Vec<Arc<str>> {
        let mut tags = self.inner.tags.take(headers, extension);
        // Tags come from responses, and the index grows with them.
        tags.retain(|tag| tag.len() <= MAX_TAG_BYTES);
        tags.truncate(self.inner.limits.max_tags);
        tags
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
        self.remove_matching(pattern, None).await
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
        // A variant index has no freshness of its own; its variants do.
        let Some(Stored::Response(entry)) = self.inner.store.get(cache, key.as_str(), now).await?
        else {
            return Ok(false);
        };
        let refreshed = entry.refreshed(now, ttl);
        self.inner
            .store
            .insert(cache, key, Stored::from(refreshed))
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
            bookkeeping_bytes: self.inner.coalescer.heap_bytes() + self.inner.flights.heap_bytes(),
        }
    }
}
