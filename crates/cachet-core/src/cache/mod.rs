//! The [`Cache`] handle: rules, named caches, store, clock and stats in one
//! cheaply cloneable value. Its operations for operators (list, delete,
//! touch, clear, stats) are in `operations`; the request path's steps,
//! which adapters call, in the `engine`.

mod builder;
mod config;
mod installed;
mod operations;
mod soft;

pub use self::builder::CacheBuilder;
pub(crate) use self::builder::Limits;
#[cfg(test)]
pub(crate) use self::builder::DEFAULT_MAX_KEY_BYTES;
pub use self::installed::{install, installed};
pub use self::soft::SoftPurge;

use crate::clock::SharedClock;
use crate::config::rules::{RuleSet, VALUES_CACHE};
use crate::config::ConfigError;
use crate::engine::coalesce::Coalescer;
use crate::identity::Identity;
use crate::protocol::cache_status::StatusHeaders;
use crate::protocol::tags::TagSettings;
use crate::protocol::targeted::Targets;
use crate::stats::{Counters, Purges};
use crate::store::tier::Warnings;
use crate::store::CacheSpec;
use crate::store::Store;
use crate::values::ValueCache;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// A response cache: what to cache (rules), where (named caches in a store),
/// and its statistics. Clone it freely; clones share everything.
///
/// Operators list, delete, [touch](Self::touch) and purge entries and read
/// [`stats`](Self::stats); handlers keep their own values in
/// [`values`](Self::values); adapters drive it per request through the
/// [`adapter`](crate::adapter) steps.
///
/// ```
/// use cachet_core::adapter::{self, Route};
/// use cachet_core::{Cache, Rule};
/// use http::{Request, Response};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let cache = Cache::builder()
///     .rule(Rule::new("^/api/").ttl(Duration::from_secs(60)))
///     .build()?;
///
/// // What an adapter does on a miss: the origin's response is stored.
/// let req = Request::get("/api/items?b=2&a=1").body(())?;
/// let Route::Cache(plan) = adapter::route(&cache, &req) else { unreachable!("a rule matches") };
/// let origin = |_req: Request<()>| async {
///     let body = http_body_util::Full::new(bytes::Bytes::from("[]"));
///     Ok::<_, std::convert::Infallible>(Response::builder().header("cache-tag", "items").body(body).unwrap())
/// };
/// adapter::serve(cache.clone(), plan.into(), origin, req).await?;
///
/// let keys = cache.keys().await?;
/// assert_eq!(keys[0].key.as_str(), "/api/items?b=2&a=1 GET");
/// assert!(cache.touch("/api/items?b=2&a=1 GET", Duration::from_secs(600)).await?);
/// assert_eq!(cache.purge_tag("items").await?, 1);
/// assert_eq!(cache.stats().caches["default"].inserts, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) rules: RuleSet,
    pub(crate) caches: BTreeMap<String, CacheSpec>,
    pub(crate) counters: HashMap<String, Arc<Counters>>,
    /// The counters of each rule's cache, by rule index.
    pub(crate) rule_counters: Vec<Arc<Counters>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: SharedClock,
    pub(crate) identity: Identity,
    pub(crate) status_headers: StatusHeaders,
    /// The targeted cache-control fields obeyed before `Cache-Control`.
    pub(crate) targets: Targets,
    pub(crate) tags: TagSettings,
    pub(crate) key_host: bool,
    /// The value caches: every named cache no configured rule stores
    /// responses in, `values` among them.
    pub(crate) value_caches: BTreeMap<String, ValueCache>,
    /// What each named cache in use holds.
    pub(crate) uses: Mutex<BTreeMap<String, CacheUse>>,
    pub(crate) coalescer: Arc<Coalescer>,
    pub(crate) purges: Purges,
    pub(crate) limits: Limits,
    /// Store failures on the request path, logged at a bounded rate (a
    /// shared tier that is down fails every lookup until it is back).
    pub(crate) store_warnings: Warnings,
    /// Whether an adapter prepares hits' headers in its own form
    /// (`adapter::prepare_answers`): entries stored from then on have room
    /// for one.
    pub(crate) prepares_answers: AtomicBool,
    started: SystemTime,
}

/// What a named cache holds: values, or responses (and whose).
#[derive(Debug, Clone)]
pub(crate) enum CacheUse {
    Values,
    /// Responses, first stored by the rule named (for errors).
    Responses(String),
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

impl Cache {
    /// A builder with the `default` and `values` caches and no rules.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// The programmatic cache: typed values in the named cache `values`.
    pub fn values(&self) -> ValueCache {
        self.inner.value_caches[VALUES_CACHE].clone()
    }

    /// The typed values of the named cache `name`, with its own budget and
    /// default TTL (Django's `caches['user']`). Any cache that no rule
    /// stores responses in holds values; a cache of HTTP responses does
    /// not, so that its pattern deletions and listings never mix the two.
    ///
    /// ```
    /// let cache = cachet_core::Cache::from_toml(r#"
    ///     [caches.user]
    ///     max_bytes = "8MiB"
    ///     ttl = "10m"
    /// "#)?;
    /// let users = cache.values_in("user")?;
    /// assert_eq!(users.default_ttl(), std::time::Duration::from_secs(600));
    /// assert!(cache.values_in("nope").is_err());
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub fn values_in(&self, name: &str) -> Result<ValueCache, ConfigError> {
        let unknown = || {
            let known: Vec<&str> = self.inner.value_caches.keys().map(String::as_str).collect();
            ConfigError::Cache {
                name: name.to_owned(),
                field: "values".into(),
                reason: format!("no such cache; the value caches are {}", known.join(", ")),
            }
        };
        if !self.inner.caches.contains_key(name) {
            return Err(unknown());
        }
        self.claim(name, CacheUse::Values, "values")?;
        self.inner
            .value_caches
            .get(name)
            .cloned()
            .ok_or_else(unknown)
    }

    /// Records that `name` holds `wanted`, or says what it already holds: a
    /// named cache holds values or responses, never both, so that a value
    /// cache's patterns, listings and clears never reach a response.
    pub(crate) fn claim(
        &self,
        name: &str,
        wanted: CacheUse,
        field: &str,
    ) -> Result<(), ConfigError> {
        let mut uses = self
            .inner
            .uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = uses.get(name);
        let conflict = matches!(
            (held, &wanted),
            (Some(CacheUse::Values), CacheUse::Responses(_))
                | (Some(CacheUse::Responses(_)), CacheUse::Values)
        );
        match held {
            Some(held) if conflict => Err(ConfigError::Cache {
                name: name.to_owned(),
                field: field.to_owned(),
                reason: match held {
                    CacheUse::Responses(by) => format!(
                        "{by} stores responses in it; values need a cache no rule stores in"
                    ),
                    CacheUse::Values => {
                        "it holds values (Cache::values_in); store responses in another cache"
                            .into()
                    }
                },
            }),
            _ => {
                uses.entry(name.to_owned()).or_insert(wanted);
                Ok(())
            }
        }
    }
}
