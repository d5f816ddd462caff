//! URL rules: which requests are cached, where, for how long, and keyed by what.
//!
//! A [`Rule`] is the declarative form, written in code or read from TOML. The
//! rules of a cache compile into one [`RuleSet`] over the request path,
//! where the first matching rule wins.

use crate::config::path_pattern::PathPattern;
use crate::config::ConfigError;
use crate::store::CacheSpec;
use crate::units::de_field;
use http::{HeaderName, Method, StatusCode};
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The cache a rule uses when it names none.
pub(crate) const DEFAULT_CACHE: &str = "default";
/// The named cache of the programmatic values; no rule stores responses in it.
pub(crate) const VALUES_CACHE: &str = "values";
/// The largest body a rule buffers and stores when it sets no `max_body`.
pub(crate) const DEFAULT_MAX_BODY: u64 = 1024 * 1024;
/// How long a stale entry with validators is kept for revalidation when the
/// rule sets no `keep`.
pub(crate) const DEFAULT_KEEP: Duration = Duration::from_secs(300);
/// How long requests wait for another request's fetch of the same key when
/// the rule sets no `lock_timeout`.
pub(crate) const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a key whose response could not be stored skips coalescing when
/// the rule sets no `hit_for_miss`.
pub(crate) const DEFAULT_HIT_FOR_MISS: Duration = Duration::from_secs(10);

/// One URL rule, as written; the cache builder compiles a cache's rules into one
/// `RegexSet`, where the first matching rule wins.
///
/// ```
/// use cachet_core::Rule;
/// use std::time::Duration;
/// let rule = Rule::new(r"^/api/urls/$")
///     .cache("url")
///     .ttl(Duration::from_secs(300))
///     .vary_by_user(true)
///     .vary_by_method(false)
///     .vary_headers([http::header::ACCEPT_LANGUAGE])
///     .max_body(256 * 1024);
/// ```
///
/// Every field is declared once, here: the builder methods set it, and
/// `[[rules]]` tables deserialize into it (durations as [`DurationValue`](crate::config::DurationValue),
/// sizes as [`SizeValue`](crate::config::SizeValue), header and method names in any
/// case).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[must_use]
pub struct Rule {
    pub(crate) path: String,
    #[serde(default)]
    pub(crate) cache: Option<String>,
    #[serde(default, deserialize_with = "de_field::some_duration")]
    pub(crate) ttl: Option<Duration>,
    #[serde(default, deserialize_with = "de_field::some_methods")]
    pub(crate) methods: Option<Vec<Method>>,
    #[serde(default)]
    pub(crate) vary_by_user: bool,
    #[serde(default = "on")]
    pub(crate) vary_by_method: bool,
    #[serde(default, deserialize_with = "de_field::header_names")]
    pub(crate) vary_headers: Vec<HeaderName>,
    #[serde(default, deserialize_with = "de_field::some_size")]
    pub(crate) max_body: Option<u64>,
    #[serde(default = "on")]
    pub(crate) respect_origin: bool,
    #[serde(default, deserialize_with = "de_field::statuses")]
    pub(crate) statuses: Vec<StatusCode>,
    #[serde(default = "default_keep", deserialize_with = "de_field::duration")]
    pub(crate) keep: Duration,
    #[serde(default)]
    pub(crate) invalidates: Vec<String>,
    #[serde(default)]
    pub(crate) invalidate_scope: InvalidateScope,
    #[serde(default, deserialize_with = "de_field::duration")]
    pub(crate) stale_while_revalidate: Duration,
    #[serde(default, deserialize_with = "de_field::duration")]
    pub(crate) stale_if_error: Duration,
    #[serde(default = "on")]
    pub(crate) coalesce: bool,
    #[serde(
        default = "default_lock_timeout",
        deserialize_with = "de_field::duration"
    )]
    pub(crate) lock_timeout: Duration,
    #[serde(
        default = "default_hit_for_miss",
        deserialize_with = "de_field::duration"
    )]
    pub(crate) hit_for_miss: Duration,
    #[serde(default)]
    pub(crate) early_refresh: Option<f64>,
    #[serde(default)]
    pub(crate) heuristic_freshness: bool,
    #[serde(default)]
    pub(crate) normalize_query: bool,
    #[serde(default)]
    pub(crate) share_cookie_requests: bool,
    #[serde(default)]
    pub(crate) soft_invalidation: bool,
    #[serde(default, deserialize_with = "de_field::some_header_names")]
    pub(crate) bypass_headers: Option<Vec<HeaderName>>,
}

// The defaults of the fields that are not `false`, empty or unset: shared
// by `Rule::new` and the TOML form.
fn on() -> bool {
    true
}
fn default_keep() -> Duration {
    DEFAULT_KEEP
}
fn default_lock_timeout() -> Duration {
    DEFAULT_LOCK_TIMEOUT
}
fn default_hit_for_miss() -> Duration {
    DEFAULT_HIT_FOR_MISS
}

/// Whose entries a mutation under a rule clears.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidateScope {
    /// Every user's entries, and the shared ones (the default).
    #[default]
    All,
    /// The entries of the user who made the request, and the shared ones;
    /// other users' entries stay.
    User,
}

impl Rule {
    /// The regex over the canonical path, as written.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A rule for paths matching the regex `path`, with the defaults: the
    /// `default` cache and its TTL, GET and HEAD, shared between users, keyed
    /// by method, no varied headers, bodies up to 1 MiB, freshness from the
    /// origin's headers when it sends any, stale entries with validators kept
    /// five minutes for revalidation, stale entries served only as the
    /// origin's `stale-while-revalidate`/`stale-if-error` allow, concurrent
    /// misses coalesced (five-second lock timeout, ten-second hit-for-miss),
    /// no early refresh.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            cache: None,
            ttl: None,
            methods: None,
            vary_by_user: false,
            vary_by_method: on(),
            vary_headers: Vec::new(),
            max_body: None,
            respect_origin: on(),
            statuses: Vec::new(),
            keep: default_keep(),
            invalidates: Vec::new(),
            invalidate_scope: InvalidateScope::All,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            coalesce: on(),
            lock_timeout: default_lock_timeout(),
            hit_for_miss: default_hit_for_miss(),
            early_refresh: None,
            heuristic_freshness: false,
            normalize_query: false,
            share_cookie_requests: false,
            soft_invalidation: false,
            bypass_headers: None,
        }
    }

    /// A rule for one handler (`cachet::route` for axum, `HandlerCache`
    /// for actix-web), with the defaults of [`Rule::new`]: its path is never
    /// matched, since the handler's router already chose the requests.
    pub fn handler() -> Self {
        Self::new("")
    }

    /// The named cache that holds this rule's entries.
    pub fn cache(mut self, name: impl Into<String>) -> Self {
        self.cache = Some(name.into());
        self
    }

    /// How long entries stay fresh (default: the cache's TTL).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The methods whose responses are cached: `GET`, `HEAD` or both (default).
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = Some(methods.into_iter().collect());
        self
    }

    /// Whether each user gets their own entries (default `false`).
    pub fn vary_by_user(mut self, on: bool) -> Self {
        self.vary_by_user = on;
        self
    }

    /// Whether the method is part of the key (default `true`). When `false`,
    /// `HEAD` is answered from the `GET` entry.
    pub fn vary_by_method(mut self, on: bool) -> Self {
        self.vary_by_method = on;
        self
    }

    /// Request headers whose values are part of the key.
    pub fn vary_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.vary_headers = headers.into_iter().collect();
        self
    }

    /// The largest body buffered and stored, in bytes; larger bodies pass
    /// through unbuffered (default 1 MiB).
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// Whether the origin's `Cache-Control`/`Expires` set the freshness
    /// (default `true`; the rule's TTL is then the fallback). With `false`
    /// the rule's TTL always wins; `no-store` and `private` still count.
    pub fn respect_origin(mut self, on: bool) -> Self {
        self.respect_origin = on;
        self
    }

    /// Statuses stored besides 200. A listed status is stored with the
    /// rule's TTL when the origin gives no freshness. Unlisted, 203, 204,
    /// 300, 301, 308, 404, 410 and other non-error statuses are stored only
    /// with explicit freshness from the origin, and client errors (other
    /// than 404 and 410) and server errors never: a client can provoke
    /// them (cache-poisoned denial of service).
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// How long an entry with validators (an origin `ETag` or
    /// `Last-Modified`) is kept after it goes stale, so that the next
    /// request revalidates it with a conditional request instead of
    /// fetching the whole body again (RFC 9111 §4.3; default five minutes,
    /// zero to drop entries as soon as they go stale).
    pub fn keep(mut self, keep: Duration) -> Self {
        self.keep = keep;
        self
    }

    /// Regexes over cache keys: a successful mutation (POST, PUT, PATCH,
    /// DELETE, ...) of a path this rule matches also deletes every key one
    /// of them matches, besides its own URI (RFC 9111 §4.4).
    pub fn invalidates<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.invalidates = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Whose entries a mutation clears (default [`InvalidateScope::All`]).
    pub fn invalidate_scope(mut self, scope: InvalidateScope) -> Self {
        self.invalidate_scope = scope;
        self
    }

    /// How long after going stale an entry is served at once while one
    /// background request refreshes it (RFC 5861 §3). The origin's own
    /// `stale-while-revalidate=N` wins when `respect_origin` is on
    /// (default zero: only the origin's).
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = window;
        self
    }

    /// How long after going stale an entry is served when the origin
    /// answers 5xx, fails or times out (RFC 5861 §4). The origin's own
    /// `stale-if-error=N` wins when `respect_origin` is on (default zero:
    /// only the origin's).
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.stale_if_error = window;
        self
    }

    /// Whether concurrent misses for one key wait for a single request to
    /// the origin (default `true`).
    pub fn coalesce(mut self, on: bool) -> Self {
        self.coalesce = on;
        self
    }

    /// How long a request waits for another request's fetch of the same
    /// key before going to the origin itself, without storing (default
    /// five seconds).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// How long a key whose response could not be stored (private,
    /// `Set-Cookie`, too large, ...) sends its requests to the origin at
    /// once instead of queueing them behind one another (default ten
    /// seconds; zero turns it off).
    pub fn hit_for_miss(mut self, window: Duration) -> Self {
        self.hit_for_miss = window;
        self
    }

    /// Refreshes entries in the background shortly before they go stale,
    /// with a probability that grows as expiry nears and with how long the
    /// response took to fetch (XFetch, Vattani et al. 2015). `beta` above 1
    /// refreshes earlier; 1 is the usual choice. Off by default.
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.early_refresh = Some(beta);
        self
    }

    /// Whether a response without explicit freshness gets RFC 9111
    /// §4.2.2's heuristic lifetime (a tenth of the time since its
    /// `Last-Modified`, at most the rule's TTL; none without it) instead
    /// of the rule's TTL (default `false`). With it a rule forces no TTL:
    /// the shared-cache behaviour of a reverse proxy in front of any origin.
    pub fn heuristic_freshness(mut self, on: bool) -> Self {
        self.heuristic_freshness = on;
        self
    }

    /// Whether the query is normalized — parameters sorted by name, empty
    /// ones dropped, one canonical percent-encoding — for a higher hit rate
    /// (default `false`: the key holds the query exactly as received). The
    /// origin then receives the normalized query too, so that what is
    /// keyed is what it answers.
    pub fn normalize_query(mut self, on: bool) -> Self {
        self.normalize_query = on;
        self
    }

    /// Whether a response to a request with a `Cookie` header may be stored
    /// for everyone although it says neither `public` nor `s-maxage`
    /// (default `false`: a cookie may have personalised it, as Varnish's
    /// built-in policy assumes). A response with `Vary: Cookie` is stored
    /// per cookie either way.
    pub fn share_cookie_requests(mut self, on: bool) -> Self {
        self.share_cookie_requests = on;
        self
    }

    /// Whether the invalidation after a mutation is soft (default `false`):
    /// the entries it reaches become stale instead of being removed, so the
    /// next request revalidates them with their validators while others
    /// are served stale within `stale_while_revalidate`/`stale_if_error`
    /// (Varnish's soft purge). See [`Cache::soft`](crate::Cache::soft).
    pub fn soft_invalidation(mut self, on: bool) -> Self {
        self.soft_invalidation = on;
        self
    }

    /// Request headers whose presence makes a request skip the cache (not
    /// answered from it, not stored), replacing the cache-wide list (see
    /// `CacheBuilder::bypass_headers`).
    pub fn bypass_headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.bypass_headers = Some(headers.into_iter().collect());
        self
    }
}

/// A rule after validation, as the request path uses it.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    index: usize,
    /// Whether the rule is one of the configuration's (else it is attached
    /// to one handler, and `index` points past the configured rules at its
    /// cache's counters).
    configured: bool,
    /// The rule as declared, its header names sorted and deduplicated.
    rule: Rule,
    pattern: PathPattern,
    cache: Arc<str>,
    /// The rule's TTL, or its cache's.
    ttl: Duration,
    cache_get: bool,
    cache_head: bool,
    /// The rule's `max_body`, at most its cache's budget.
    max_body: u64,
    invalidates: Vec<Regex>,
}

impl CompiledRule {
    /// The same rule, marked as one of the configuration's.
    fn into_configured(mut self) -> Self {
        self.configured = true;
        self
    }

    /// `rule`, attached to one handler (its `path` is not matched: the
    /// handler's router chose the requests) and counted with the cache at
    /// `index`, past the configured rules.
    pub(crate) fn for_handler(
        index: usize,
        rule: &Rule,
        caches: &BTreeMap<String, CacheSpec>,
    ) -> Result<Self, ConfigError> {
        compile_rule(index, rule, caches).map_err(|error| match error {
            ConfigError::Rule { field, reason, .. } => ConfigError::Section {
                section: "handler rule".into(),
                field,
                reason,
            },
            other => other,
        })
    }

    /// The rule as declared (header names sorted and deduplicated).
    pub(crate) fn rule(&self) -> &Rule {
        &self.rule
    }
    /// Position of the rule in the configuration, from 0; a handler's
    /// rule comes after them all, at its cache's position.
    pub(crate) fn index(&self) -> usize {
        self.index
    }
    /// Whether the rule is one of the configuration's.
    pub(crate) fn is_configured(&self) -> bool {
        self.configured
    }
    /// The named cache holding the rule's entries.
    pub(crate) fn cache(&self) -> &str {
        &self.cache
    }
    /// How long entries stay fresh.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }
    /// Whether responses to `method` are cached by this rule.
    pub(crate) fn caches_method(&self, method: &str) -> bool {
        match method {
            "GET" => self.cache_get,
            "HEAD" => self.cache_head,
            _ => false,
        }
    }
    /// Whether each user gets their own entries.
    pub(crate) fn vary_by_user(&self) -> bool {
        self.rule.vary_by_user
    }
    /// Whether the method is part of the key.
    pub(crate) fn vary_by_method(&self) -> bool {
        self.rule.vary_by_method
    }
    /// Request headers (sorted by name) whose values are part of the key.
    pub(crate) fn vary_headers(&self) -> &[HeaderName] {
        &self.rule.vary_headers
    }
    /// The largest body buffered and stored, in bytes.
    pub(crate) fn max_body(&self) -> u64 {
        self.max_body
    }
    /// Whether the origin's headers set the freshness.
    pub(crate) fn respect_origin(&self) -> bool {
        self.rule.respect_origin
    }
    /// Statuses stored besides 200 (with the rule's TTL as their fallback).
    pub(crate) fn statuses(&self) -> &[StatusCode] {
        &self.rule.statuses
    }
    /// How long a stale entry with validators is kept for revalidation.
    pub(crate) fn keep(&self) -> Duration {
        self.rule.keep
    }
    /// Key regexes a mutation under this rule also clears.
    pub(crate) fn invalidates(&self) -> &[Regex] {
        &self.invalidates
    }
    /// Whose entries a mutation under this rule clears.
    pub(crate) fn invalidate_scope(&self) -> InvalidateScope {
        self.rule.invalidate_scope
    }
    /// The rule's `stale-while-revalidate` window.
    pub(crate) fn stale_while_revalidate(&self) -> Duration {
        self.rule.stale_while_revalidate
    }
    /// The rule's `stale-if-error` window.
    pub(crate) fn stale_if_error(&self) -> Duration {
        self.rule.stale_if_error
    }
    /// Whether concurrent misses wait for one fetch.
    pub(crate) fn coalesce(&self) -> bool {
        self.rule.coalesce
    }
    /// How long a request waits for another's fetch.
    pub(crate) fn lock_timeout(&self) -> Duration {
        self.rule.lock_timeout
    }
    /// How long an unstorable key skips coalescing.
    pub(crate) fn hit_for_miss(&self) -> Duration {
        self.rule.hit_for_miss
    }
    /// The XFetch `beta`, when early refresh is on.
    pub(crate) fn early_refresh(&self) -> Option<f64> {
        self.rule.early_refresh
    }
    /// Whether responses without explicit freshness get the §4.2.2
    /// heuristic lifetime rather than the rule's TTL.
    pub(crate) fn heuristic_freshness(&self) -> bool {
        self.rule.heuristic_freshness
    }
    /// Whether the query is normalized (and forwarded normalized).
    pub(crate) fn normalize_query(&self) -> bool {
        self.rule.normalize_query
    }
    /// Whether responses to requests with cookies may be shared without
    /// `public` or `s-maxage`.
    pub(crate) fn share_cookie_requests(&self) -> bool {
        self.rule.share_cookie_requests
    }
    /// Whether its invalidations leave stale entries rather than none.
    pub(crate) fn soft_invalidation(&self) -> bool {
        self.rule.soft_invalidation
    }
    /// The rule's own bypass headers, when it replaces the cache-wide list.
    pub(crate) fn bypass_headers(&self) -> Option<&[HeaderName]> {
        self.rule.bypass_headers.as_deref()
    }
}

/// Up to how many rules [`RuleSet::find`] tries one by one.
const FEW_RULES: usize = 8;

/// Compiled rules, first match wins: a few are tried in turn, more go
/// through one `RegexSet`.
#[derive(Debug, Clone)]
pub(crate) struct RuleSet {
    set: RegexSet,
    rules: Vec<Arc<CompiledRule>>,
}

impl RuleSet {
    /// Validates and compiles `rules` against the named `caches`.
    pub(crate) fn compile(
        rules: &[Rule],
        caches: &BTreeMap<String, CacheSpec>,
    ) -> Result<Self, ConfigError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(index, rule)| {
                compile_rule(index, rule, caches).map(CompiledRule::into_configured)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set =
            RegexSet::new(compiled.iter().map(|rule| rule.pattern.as_str())).map_err(|err| {
                ConfigError::Syntax {
                    reason: format!("the rules' regexes do not fit in one set: {err}"),
                }
            })?;
        Ok(Self {
            set,
            rules: compiled.into_iter().map(Arc::new).collect(),
        })
    }

    /// The first rule whose regex matches `path`. A few rules are tried in
    /// turn, each regex stopping at its first match (its literal prefix
    /// usually decides at once); the set's search, which looks for every
    /// rule's match and allocates their list, pays off with many.
    pub(crate) fn find(&self, path: &str) -> Option<&Arc<CompiledRule>> {
        if self.rules.len() <= FEW_RULES {
            return self.rules.iter().find(|rule| rule.pattern.is_match(path));
        }
        let index = self.set.matches(path).iter().next()?;
        self.rules.get(index)
    }

    /// The rules, in order.
    pub(crate) fn rules(&self) -> &[Arc<CompiledRule>] {
        &self.rules
    }
}

fn compile_rule(
    index: usize,
    rule: &Rule,
    caches: &BTreeMap<String, CacheSpec>,
) -> Result<CompiledRule, ConfigError> {
    let error = |field: &str, reason: String| ConfigError::Rule {
        index,
        path: rule.path.clone(),
        field: field.to_owned(),
        reason,
    };
    let pattern =
        Regex::new(&rule.path).map_err(|err| error("path", format!("invalid regex: {err}")))?;
    let cache_name = rule.cache.as_deref().unwrap_or(DEFAULT_CACHE);
    if cache_name == VALUES_CACHE {
        return Err(error(
            "cache",
            format!("`{VALUES_CACHE}` holds the programmatic cache's values; store responses in another cache"),
        ));
    }
    let Some(spec) = caches.get(cache_name) else {
        let known: Vec<&str> = caches.keys().map(String::as_str).collect();
        return Err(error(
            "cache",
            format!(
                "unknown cache `{cache_name}`; the configured caches are: {}",
                known.join(", ")
            ),
        ));
    };
    let ttl = rule.ttl.unwrap_or(spec.ttl);
    if ttl.is_zero() {
        return Err(error(
            "ttl",
            "a ttl of zero would never serve a hit; remove the rule instead".into(),
        ));
    }
    let (mut cache_get, mut cache_head) = (true, true);
    if let Some(methods) = &rule.methods {
        if methods.is_empty() {
            return Err(error(
                "methods",
                "the list is empty; name GET, HEAD or both".into(),
            ));
        }
        (cache_get, cache_head) = (false, false);
        for method in methods {
            match *method {
                Method::GET => cache_get = true,
                Method::HEAD => cache_head = true,
                ref other => {
                    return Err(error(
                        "methods",
                        format!("`{other}` responses are not cached; only GET and HEAD are (mutations invalidate instead)"),
                    ))
                }
            }
        }
    }
    let mut rule = rule.clone();
    rule.vary_headers
        .sort_by(|a: &HeaderName, b: &HeaderName| a.as_str().cmp(b.as_str()));
    rule.vary_headers.dedup();
    let max_body = match rule.max_body {
        Some(0) => {
            return Err(error(
                "max_body",
                "a size of zero bytes would store nothing; it must be above zero".into(),
            ))
        }
        Some(bytes) => bytes,
        None => DEFAULT_MAX_BODY,
    };
    for status in &rule.statuses {
        let code = status.as_u16();
        if !(200..=599).contains(&code) || matches!(code, 206 | 304) {
            return Err(error(
                "statuses",
                format!("{status} cannot be stored: only final statuses from 200 to 599, except 206 and 304"),
            ));
        }
    }
    if let Some(beta) = rule.early_refresh {
        if !(beta.is_finite() && beta > 0.0) {
            return Err(error(
                "early_refresh",
                format!("beta must be a number above zero (1.0 is usual), not {beta}"),
            ));
        }
    }
    let invalidates = rule
        .invalidates
        .iter()
        .map(|pattern| {
            Regex::new(pattern)
                .map_err(|err| error("invalidates", format!("invalid regex `{pattern}`: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CompiledRule {
        index,
        configured: false,
        pattern: PathPattern::new(pattern),
        cache: cache_name.into(),
        ttl,
        cache_get,
        cache_head,
        // A body larger than its cache could never be kept.
        max_body: max_body.min(spec.max_bytes),
        invalidates,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> BTreeMap<String, CacheSpec> {
        BTreeMap::from([(DEFAULT_CACHE.to_owned(), CacheSpec::default())])
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            Rule::new("^/api/urls/stats/$").ttl(Duration::from_secs(900)),
            Rule::new("^/api/"),
        ];
        let set = RuleSet::compile(&rules, &caches()).unwrap();
        assert_eq!(set.find("/api/urls/stats/").unwrap().index(), 0);
        assert_eq!(set.find("/api/urls/").unwrap().index(), 1);
        assert!(set.find("/health").is_none());
        assert_eq!(set.find("/api/x").unwrap().ttl(), Duration::from_secs(300));
    }

    #[test]
    fn few_rules_tried_in_turn_find_what_the_set_finds() {
        let patterns = [
            r"^/api/v1/items/\d+$",
            r"/static/",
            r"^/api/",
            r"\.json$",
            r"^/$",
            r"(?i)^/Search",
            r"^/api/v1/",
            r"users/(me|\d+)",
            r"^/",
        ];
        let paths = [
            "/",
            "/api/v1/items/12",
            "/api/v1/items/x",
            "/x/static/a.css",
            "/data.json",
            "/SEARCH?q=1",
            "/api/users/me",
            "/other/users/7",
            "/api",
            "",
        ];
        for count in 1..=patterns.len() {
            let rules: Vec<Rule> = patterns[..count].iter().map(|p| Rule::new(*p)).collect();
            let set = RuleSet::compile(&rules, &caches()).unwrap();
            for path in paths {
                let by_set = set.set.matches(path).iter().next();
                let found = set.find(path).map(|rule| rule.index());
                assert_eq!(found, by_set, "{count} rules, path {path:?}");
            }
        }
    }

    #[test]
    fn methods_and_headers_are_normalized() {
        let rule: Rule = toml::from_str(
            "path = '^/'\nmethods = ['get']\nvary_headers = ['Accept-Language', 'accept', 'ACCEPT']",
        )
        .unwrap();
        let set = RuleSet::compile(&[rule], &caches()).unwrap();
        let rule = &set.rules()[0];
        assert!(rule.caches_method("GET"));
        assert!(!rule.caches_method("HEAD"));
        assert_eq!(rule.vary_headers(), ["accept", "accept-language"]);
    }

    #[test]
    fn max_body_is_capped_by_the_cache_budget() {
        let caches = BTreeMap::from([(
            DEFAULT_CACHE.to_owned(),
            CacheSpec {
                max_bytes: 1000,
                ttl: Duration::from_secs(1),
            },
        )]);
        let set = RuleSet::compile(&[Rule::new("^/")], &caches).unwrap();
        assert_eq!(set.rules()[0].max_body(), 1000);
    }

    #[test]
    fn an_empty_rule_set_matches_nothing() {
        let set = RuleSet::compile(&[], &caches()).unwrap();
        assert!(set.find("/").is_none());
    }
}
