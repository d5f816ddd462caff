//! Building a [`Cache`]: named caches, rules, identity, store, clock,
//! headers and the limits on what client input makes it keep.

use super::{Cache, CacheUse, Inner};
use crate::clock::{SharedClock, SystemClock};
use crate::config::rules::{Rule, RuleSet, DEFAULT_CACHE, VALUES_CACHE};
use crate::config::{ConfigError, DEFAULT_BYPASS_HEADERS};
use crate::engine::coalesce::Coalescer;
use crate::identity::Identity;
use crate::protocol::cache_status::StatusHeaders;
use crate::protocol::directives::ClientNoCache;
use crate::protocol::tags::TagSettings;
use crate::protocol::targeted::{Targets, CDN_CACHE_CONTROL};
use crate::stats::{Counters, Purges};
use crate::store::tier::Warnings;
use crate::store::CacheSpec;
use crate::store::{MemoryStore, Store};
use crate::values::{Codec, ValueCache};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

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
    pub(crate) client_no_cache: ClientNoCache,
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
            client_no_cache: ClientNoCache::default(),
        }
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
    store: Option<StoreChoice>,
    status_headers: StatusHeaders,
    targets: Targets,
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

/// The store [`CacheBuilder::build`] uses: one given, or one it makes.
enum StoreChoice {
    Built(Arc<dyn Store>),
    Made(Box<StoreMaker>),
}

type StoreMaker = dyn FnOnce(&BTreeMap<String, CacheSpec>, &SharedClock) -> Result<Arc<dyn Store>, ConfigError>
    + Send;

impl Default for CacheBuilder {
    fn default() -> Self {
        Self {
            caches: BTreeMap::from([(DEFAULT_CACHE.to_owned(), CacheSpec::default())]),
            rules: Vec::new(),
            identity: Identity::default(),
            clock: Arc::new(SystemClock),
            store: None,
            status_headers: StatusHeaders::default(),
            targets: Targets::default(),
            tags: TagSettings::default(),
            codec: Codec::default(),
            key_host: false,
            limits: Limits::default(),
        }
    }
}

impl CacheBuilder {
    /// Adds (or replaces) the named cache `name`. A cache called `default`
    /// (64 MiB, 5 minutes) exists unless replaced, and one called `values`
    /// (16 MiB) holds the [programmatic values](crate::values::ValueCache).
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

    /// The clock (default: the system clock). Tests pass a [`MockClock`](crate::clock::MockClock).
    pub fn clock(mut self, clock: impl crate::clock::Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A store to use instead of the in-memory [`MemoryStore`]. It must know
    /// every named cache of this builder.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(StoreChoice::Built(store));
        self
    }

    /// A store made when [`build`](Self::build) knows every named cache
    /// (the `values` cache included) and the clock: a tiered store builds
    /// its in-memory tier from them.
    pub fn store_with(
        mut self,
        make: impl FnOnce(
                &BTreeMap<String, CacheSpec>,
                &SharedClock,
            ) -> Result<Arc<dyn Store>, ConfigError>
            + Send
            + 'static,
    ) -> Self {
        self.store = Some(StoreChoice::Made(Box::new(make)));
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

    /// A response field of cachet's own that, when valid, decides storage
    /// and freshness before `CDN-Cache-Control` and `Cache-Control`
    /// (RFC 9213 targeted cache control), and is removed before the client
    /// sees it. Off by default.
    ///
    /// ```
    /// use cachet_core::CacheBuilder;
    /// use http::HeaderName;
    ///
    /// let cache = CacheBuilder::default()
    ///     .target_field(HeaderName::from_static("cachet-cache-control"))
    ///     .build()?;
    /// # drop(cache);
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub fn target_field(mut self, name: http::HeaderName) -> Self {
        self.targets.own = Some(name);
        self
    }

    /// Whether `CDN-Cache-Control` (RFC 9213) decides storage and freshness
    /// before `Cache-Control` (default `true`).
    pub fn cdn_cache_control(mut self, obey: bool) -> Self {
        self.targets.cdn = obey;
        self
    }

    /// Whether `CDN-Cache-Control` reaches the client, for CDNs in front of
    /// cachet (default `true`); with `false` it is removed.
    pub fn forward_cdn_cache_control(mut self, forward: bool) -> Self {
        self.targets.forward_cdn = forward;
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

    /// How the [programmatic cache](crate::values::ValueCache) serializes values
    /// (default [`Codec::Binary`]).
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

    /// What a client's `no-cache` (`max-age=0`, `Pragma: no-cache`) does
    /// (default [`ClientNoCache::Revalidate`]: coalesced revalidations).
    pub fn client_no_cache(mut self, choice: ClientNoCache) -> Self {
        self.limits.client_no_cache = choice;
        self
    }

    /// Applies the environment variable that overrides the configuration's
    /// budget, read through `lookup` (a name to its value):
    /// `CACHET_MAX_BYTES` (the `default` cache's `max_bytes`). A bad value
    /// is an error naming the variable. Call it once, where the
    /// configuration is loaded ([`from_env`](Self::from_env) reads the
    /// process's environment; [`PersistenceConfig::env_overrides`](crate::persistence::PersistenceConfig::env_overrides)
    /// reads the dump's variables).
    ///
    /// ```
    /// use cachet_core::CacheBuilder;
    /// let env = |name: &str| (name == "CACHET_MAX_BYTES").then(|| "128MiB".to_owned());
    /// let cache = CacheBuilder::from_toml("")?.env_overrides(env)?.build()?;
    /// assert_eq!(cache.caches()["default"].max_bytes, 128 * 1024 * 1024);
    ///
    /// let bad = |name: &str| (name == "CACHET_MAX_BYTES").then(|| "lots".to_owned());
    /// let error = CacheBuilder::from_toml("")?.env_overrides(bad).unwrap_err();
    /// assert!(error.to_string().starts_with("environment variable `CACHET_MAX_BYTES`"));
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub fn env_overrides(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let error = |variable: &str, reason: String| ConfigError::Env {
            variable: variable.to_owned(),
            reason,
        };
        if let Some(text) = lookup("CACHET_MAX_BYTES") {
            let bytes = crate::units::SizeValue::Text(text)
                .parse()
                .map_err(|reason| error("CACHET_MAX_BYTES", reason))?;
            let spec = self.caches.entry(DEFAULT_CACHE.to_owned()).or_default();
            spec.max_bytes = bytes;
        }
        Ok(self)
    }

    /// [`env_overrides`](Self::env_overrides) from the process's environment.
    pub fn from_env(self) -> Result<Self, ConfigError> {
        self.env_overrides(|name| std::env::var(name).ok())
    }

    /// Checks the configuration and builds the cache. No I/O: a dump is
    /// restored by [`Persistence::restore`](crate::persistence::Persistence::restore).
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
        if let Some(own) = &self.targets.own {
            // Stripped before clients see it: never a field they need.
            if [http::header::CACHE_CONTROL, CDN_CACHE_CONTROL].contains(own) {
                return Err(ConfigError::Section {
                    section: "headers".into(),
                    field: "target".into(),
                    reason: format!(
                        "`{own}` is read by every cache and removed from responses as cachet's own \
                         field; name a field of cachet's own, e.g. `Cachet-Cache-Control`"
                    ),
                });
            }
        }
        let mut caches = self.caches;
        caches
            .entry(VALUES_CACHE.to_owned())
            .or_insert_with(CacheSpec::values);
        let rules = RuleSet::compile(&self.rules, &caches)?;
        let store = match self.store {
            Some(StoreChoice::Built(store)) => store,
            Some(StoreChoice::Made(make)) => make(&caches, &self.clock)?,
            None => Arc::new(MemoryStore::new(&caches, Arc::clone(&self.clock))),
        };
        if store.shared().is_some() && self.identity.is_random() {
            if let Some(rule) = rules.rules().iter().find(|rule| rule.rule().vary_by_user) {
                return Err(ConfigError::Section {
                    section: "identity".into(),
                    field: "secret_env".into(),
                    reason: format!(
                        "rule `{}` varies by user and the store is shared between instances: \
                         every instance must hash users with the same secret; set \
                         [identity] secret_env",
                        rule.rule().path
                    ),
                });
            }
        }
        // Every named cache no rule stores responses in holds values.
        let value_caches: BTreeMap<String, ValueCache> = caches
            .iter()
            .filter(|(name, _)| {
                !rules
                    .rules()
                    .iter()
                    .any(|rule| rule.cache() == name.as_str())
            })
            .map(|(name, spec)| {
                let values = ValueCache::new(
                    name,
                    *spec,
                    Arc::clone(&store),
                    Arc::clone(&self.clock),
                    self.codec,
                    self.identity.clone(),
                    caches.keys().cloned().collect(),
                );
                (name.clone(), values)
            })
            .collect();
        let mut uses = BTreeMap::from([(VALUES_CACHE.to_owned(), CacheUse::Values)]);
        for rule in rules.rules() {
            uses.entry(rule.cache().to_owned())
                .or_insert_with(|| CacheUse::Responses(format!("rule `{}`", rule.rule().path())));
        }
        let counters: HashMap<String, Arc<Counters>> = caches
            .keys()
            .map(|name| (name.clone(), Arc::default()))
            .collect();
        // The configured rules' counters, then each cache's for the rules
        // attached to handlers (`Cache::handler_rule`).
        let rule_counters = rules
            .rules()
            .iter()
            .map(|rule| Arc::clone(&counters[rule.cache()]))
            .chain(caches.keys().map(|name| Arc::clone(&counters[name])))
            .collect();
        let started = self.clock.now();
        let cache = Cache {
            inner: Arc::new(Inner {
                rules,
                caches,
                counters,
                rule_counters,
                store,
                coalescer: Arc::new(Coalescer::new(Arc::clone(&self.clock))),
                clock: self.clock,
                identity: self.identity,
                status_headers: StatusHeaders {
                    strip: self.targets.stripped().into(),
                    ..self.status_headers
                },
                targets: self.targets,
                tags: self.tags,
                key_host: self.key_host,
                value_caches,
                uses: Mutex::new(uses),
                purges: Purges::default(),
                limits: self.limits,
                store_warnings: Warnings::default(),
                prepares_answers: AtomicBool::new(false),
                started,
            }),
        };
        Ok(cache)
    }
}
