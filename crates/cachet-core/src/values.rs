//! The programmatic cache: typed values on the same [`Cache`] handle, for
//! what handlers compute themselves (what Django apps do with a simple cache's `set`,
//! a cache manager's `get_many`, `@cached` and `cache_evict`).
//!
//! Values are serialized with serde — [`Codec::Binary`] (postcard, compact)
//! by default, [`Codec::Json`] on request — and stored in the named cache
//! `values` when one is configured, else in `default`, beside the HTTP
//! entries and under the same byte budget, clock and store.
//!
//! `Cache` is `Clone + Send + Sync`: hand it to axum handlers as
//! `State<Cache>` (or an `Extension`), and to actix-web handlers as
//! `web::Data<Cache>`.
//!
//! ```
//! use cachet_core::{Cache, ValueKey};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cache = Cache::builder().build()?;
//! let key = ValueKey::new("user_profile").prefix("shop").param("id", 42).to_string();
//! assert_eq!(key, "shop:user_profile:id=42");
//!
//! cache.set(&key, &vec!["tea", "cake"], Duration::from_secs(60)).await?;
//! let profile: Option<Vec<String>> = cache.get(&key).await?;
//! assert_eq!(profile.unwrap(), ["tea", "cake"]);
//!
//! // Concurrent callers for one key run the function once; errors are not cached.
//! let total = cache
//!     .get_or_compute("totals:today", Duration::from_secs(30), || async {
//!         Ok::<_, std::io::Error>(1234_u64)
//!     })
//!     .await?;
//! assert_eq!(total, 1234);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use crate::cache::Cache;
use crate::entry::{Stored, StoredValue};
use crate::error::StoreError;
use crate::key::CacheKey;
use crate::rules::DEFAULT_CACHE;
use bytes::Bytes;
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The named cache values go to when it is configured.
pub const VALUES_CACHE: &str = "values";

/// How values are serialized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Codec {
    /// postcard: compact, fast, not self-describing (the default).
    #[default]
    Binary,
    /// JSON: readable in a store's own tools, larger.
    Json,
}

impl Codec {
    fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, ValueError> {
        let bytes = match self {
            Self::Binary => {
                postcard::to_stdvec(value).map_err(|e| ValueError::Encode(e.to_string()))?
            }
            Self::Json => {
                serde_json::to_vec(value).map_err(|e| ValueError::Encode(e.to_string()))?
            }
        };
        Ok(Bytes::from(bytes))
    }

    fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, ValueError> {
        match self {
            Self::Binary => {
                postcard::from_bytes(bytes).map_err(|e| ValueError::Decode(e.to_string()))
            }
            Self::Json => {
                serde_json::from_slice(bytes).map_err(|e| ValueError::Decode(e.to_string()))
            }
        }
    }
}

/// Why a value operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The value could not be serialized.
    #[error("cannot encode the value: {0}")]
    Encode(String),
    /// The stored bytes are not a value of the requested type.
    #[error("cannot decode the stored value: {0}")]
    Decode(String),
}

/// A namespaced key, built the way a Django cache key builder's `make_key`
/// does: `prefix:env:namespace:name=value:...:u=<hash>`, parameters sorted
/// by name so that the order they are given in never matters.
///
/// ```
/// use cachet_core::ValueKey;
/// let key = ValueKey::new("search")
///     .prefix("shop")
///     .env("prod")
///     .param("q", "tea")
///     .param("page", 2);
/// assert_eq!(key.to_string(), "shop:prod:search:page=2:q=tea");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ValueKey {
    prefix: Option<String>,
    env: Option<String>,
    namespace: String,
    params: Vec<(String, String)>,
    user: Option<String>,
}

impl ValueKey {
    /// A key in `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            ..Self::default()
        }
    }
    /// The application prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    /// The environment (`prod`, `staging`), so environments sharing a
    /// store never share values.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }
    /// A parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl fmt::Display) -> Self {
        self.params.push((name.into(), value.to_string()));
        self
    }
    /// Scopes the key to one user: `cache`'s keyed hash of `user_id`, never
    /// the id itself.
    pub fn user(mut self, cache: &Cache, user_id: &str) -> Self {
        let hash = cache
            .inner
            .identity
            .hash_header(&http::HeaderName::from_static("x-user"), user_id.as_bytes());
        let mut hex = String::new();
        hash.push_hex(&mut hex);
        self.user = Some(hex);
        self
    }
}

impl fmt::Display for ValueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for part in [&self.prefix, &self.env].into_iter().flatten() {
            out.push_str(part);
            out.push(':');
        }
        out.push_str(&self.namespace);
        let mut params: Vec<&(String, String)> = self.params.iter().collect();
        params.sort();
        for (name, value) in params {
            let _ = write!(out, ":{name}={value}");
        }
        if let Some(user) = &self.user {
            let _ = write!(out, ":u={user}");
        }
        f.write_str(&out)
    }
}

/// What to evict after (or before) an operation: keys, glob patterns
/// (`user:*`), tags — what a `cache_evict(pattern=..., before=...)` decorator does in a Django app.
///
/// ```
/// use cachet_core::{Cache, Evict};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache = Cache::builder().build()?;
/// let saved = cache
///     .evict_after(&Evict::new().pattern("materials:*").tag("material:42"), async {
///         Ok::<_, std::io::Error>("saved")  // the database write
///     })
///     .await?;
/// assert_eq!(saved, "saved");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Evict {
    keys: Vec<String>,
    patterns: Vec<String>,
    tags: Vec<String>,
}

impl Evict {
    /// Nothing yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// A key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }
    /// A glob pattern over keys: `*` any run of characters, `?` one.
    pub fn pattern(mut self, glob: impl Into<String>) -> Self {
        self.patterns.push(glob.into());
        self
    }
    /// A tag: every HTTP entry and value carrying it.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}

/// Per-key locks for [`Cache::get_or_compute`]: the first caller computes,
/// the others wait on the lock (a notification, not a poll) and then find
/// the value.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    locks: Mutex<HashMap<String, Arc<async_lock::Mutex<()>>>>,
}

/// A caller's hold on a key's lock; the last one out removes it.
struct Flight<'a> {
    flights: &'a Flights,
    key: &'a str,
    lock: Arc<async_lock::Mutex<()>>,
}

impl Flights {
    /// The heap the per-key locks of computations in flight hold.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (std::mem::size_of::<(String, Arc<async_lock::Mutex<()>>)>() + 1) as u64;
        let keys: u64 = locks.keys().map(|key| key.capacity() as u64).sum();
        locks.capacity() as u64 * slot
            + keys
            + locks.len() as u64 * crate::weight::shared::<async_lock::Mutex<()>>()
    }

    fn join<'a>(&'a self, key: &'a str) -> Flight<'a> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let lock = Arc::clone(locks.entry(key.to_owned()).or_default());
        Flight {
            flights: self,
            key,
            lock,
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut locks = self
            .flights
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are only made under this lock: two references (the map's
        // and ours) mean nobody else waits on this key.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(self.key);
        }
    }
}

/// A glob (`*`, `?`) as an anchored regex over whole keys.
fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let mut pattern = String::from("^");
    for ch in glob.chars() {
        match ch {
            '*' => pattern.push_str(".*"),
            '?' => pattern.push('.'),
            other => pattern.push_str(&regex::escape(&other.to_string())),
        }
    }
    pattern.push('$');
    Regex::new(&pattern)
}

impl Cache {
    /// The named cache values live in.
    fn values_cache(&self) -> &str {
        if self.inner.caches.contains_key(VALUES_CACHE) {
            VALUES_CACHE
        } else {
            DEFAULT_CACHE
        }
    }

    async fn stored_value(&self, key: &str) -> Result<Option<Arc<StoredValue>>, StoreError> {
        let now = self.inner.clock.now();
        match self.inner.store.get(self.values_cache(), key, now).await? {
            Some(Stored::Value(value)) if value.expires_at() > now => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// The value under `key`, if there is a live one.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        match self.stored_value(key).await? {
            Some(value) => self.inner.codec.decode(value.bytes()).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` under `key` for `ttl`, replacing what was there.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), ValueError> {
        self.set_tagged(key, value, ttl, &[]).await
    }

    /// [`set`](Self::set), indexed under `tags` so that
    /// [`purge_tag`](Self::purge_tag) and [`Evict::tag`] reach it.
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
        tags: &[&str],
    ) -> Result<(), ValueError> {
        let bytes = self.inner.codec.encode(value)?;
        let tags: Vec<Arc<str>> = tags.iter().map(|tag| Arc::from(*tag)).collect();
        let stored =
            StoredValue::new(bytes, self.inner.clock.now(), ttl).with_tags(Arc::from(tags));
        self.put_value(key, stored).await
    }

    async fn put_value(&self, key: &str, value: StoredValue) -> Result<(), ValueError> {
        let key = CacheKey::from_raw(key);
        let value = Stored::Value(Arc::new(value));
        Ok(self
            .inner
            .store
            .insert(self.values_cache(), &key, value)
            .await?)
    }

    /// Whether a live value is under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, ValueError> {
        Ok(self.stored_value(key).await?.is_some())
    }

    /// How long the value under `key` has left, if there is one.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, ValueError> {
        let now = self.inner.clock.now();
        Ok(self
            .stored_value(key)
            .await?
            .map(|value| value.expires_at().duration_since(now).unwrap_or_default()))
    }

    /// Gives the value under `key` `ttl` more from now; whether there was one.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, ValueError> {
        let Some(value) = self.stored_value(key).await? else {
            return Ok(false);
        };
        self.put_value(key, value.expiring(self.inner.clock.now(), ttl))
            .await?;
        Ok(true)
    }

    /// The live values of `keys`, by key; missing keys are left out.
    pub async fn get_many<T, K>(&self, keys: &[K]) -> Result<HashMap<String, T>, ValueError>
    where
        T: DeserializeOwned,
        K: AsRef<str>,
    {
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            if let Some(value) = self.get(key.as_ref()).await? {
                found.insert(key.as_ref().to_owned(), value);
            }
        }
        Ok(found)
    }

    /// Stores every `(key, value)` for `ttl`.
    pub async fn set_many<T, K, I>(&self, items: I, ttl: Duration) -> Result<(), ValueError>
    where
        T: Serialize,
        K: AsRef<str>,
        I: IntoIterator<Item = (K, T)>,
    {
        for (key, value) in items {
            self.set(key.as_ref(), &value, ttl).await?;
        }
        Ok(())
    }

    /// The keys of every named cache that the glob `pattern` matches whole
    /// (`user:*`, `session:??`), sorted.
    pub async fn keys_like(&self, pattern: &str) -> Result<Vec<String>, ValueError> {
        let regex = glob_regex(pattern).map_err(|e| ValueError::Encode(e.to_string()))?;
        Ok(self
            .keys_matching(&regex)
            .await?
            .into_iter()
            .map(|stored| stored.key.as_str().to_owned())
            .collect())
    }

    /// Deletes every key the glob `pattern` matches whole; how many.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<usize, ValueError> {
        let regex = glob_regex(pattern).map_err(|e| ValueError::Encode(e.to_string()))?;
        Ok(self.delete_matching(&regex).await?)
    }

    /// The value under `key`, or `compute`'s result, stored for `ttl`.
    ///
    /// Concurrent callers for one key run `compute` once: the others wait
    /// for it and read what it stored. An error is returned to the caller
    /// that computed it and never stored; the next waiter computes anew. A
    /// store or decoding failure is logged and computes, never fails the call.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.get_or_compute_unless(key, ttl, |_| false, compute)
            .await
    }

    /// [`get_or_compute`](Self::get_or_compute) that does not store a result
    /// for which `unless` is true (an empty list, a placeholder).
    pub async fn get_or_compute_unless<T, E, F, Fut, U>(
        &self,
        key: &str,
        ttl: Duration,
        unless: U,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        U: FnOnce(&T) -> bool,
    {
        if let Some(value) = self.cached_value(key).await {
            return Ok(value);
        }
        let flight = self.inner.flights.join(key);
        let _turn = flight.lock.lock().await;
        // Whoever held the lock before may have stored it.
        if let Some(value) = self.cached_value(key).await {
            return Ok(value);
        }
        let value = compute().await?;
        if !unless(&value) {
            if let Err(error) = self.set(key, &value, ttl).await {
                tracing::warn!(%error, key, "storing a computed value failed");
            }
        }
        Ok(value)
    }

    /// The value under `key`, reading failures as a miss.
    async fn cached_value<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        match self.get(key).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, key, "reading a cached value failed; computing it");
                None
            }
        }
    }

    /// Deletes what `evict` names; how many entries went.
    pub async fn evict(&self, evict: &Evict) -> Result<usize, ValueError> {
        let mut removed = 0;
        for key in &evict.keys {
            removed += usize::from(self.delete(key).await?);
        }
        for pattern in &evict.patterns {
            removed += self.delete_pattern(pattern).await?;
        }
        for tag in &evict.tags {
            removed += self.purge_tag(tag).await?;
        }
        Ok(removed)
    }

    /// Runs `operation`; if it succeeds, evicts what `evict` names before
    /// returning its result. An eviction failure is logged: the operation
    /// already happened.
    pub async fn evict_after<T, E, Fut>(&self, evict: &Evict, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let result = operation.await?;
        if let Err(error) = self.evict(evict).await {
            tracing::warn!(%error, "evicting after an operation failed");
        }
        Ok(result)
    }

    /// Evicts what `evict` names, then runs `operation` (a Django app's
    /// `cache_evict(before=True)`).
    pub async fn evict_before<T, E, Fut>(&self, evict: &Evict, operation: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Err(error) = self.evict(evict).await {
            tracing::warn!(%error, "evicting before an operation failed");
        }
        operation.await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_keys() {
        let regex = glob_regex("user:*:profile?").unwrap();
        assert!(regex.is_match("user:42:profile1"));
        assert!(!regex.is_match("xuser:42:profile1"));
        assert!(!regex.is_match("user:42:profile"));
        assert!(glob_regex("a.b").unwrap().is_match("a.b"));
        assert!(!glob_regex("a.b").unwrap().is_match("axb"));
    }

    #[test]
    fn value_keys_sort_parameters() {
        let a = ValueKey::new("n").param("b", 2).param("a", 1);
        let b = ValueKey::new("n").param("a", 1).param("b", 2);
        assert_eq!(a.to_string(), "n:a=1:b=2");
        assert_eq!(a.to_string(), b.to_string());
    }

    #[test]
    fn both_codecs_round_trip() {
        for codec in [Codec::Binary, Codec::Json] {
            let bytes = codec.encode(&("tea", 3_u32)).unwrap();
            let back: (String, u32) = codec.decode(&bytes).unwrap();
            assert_eq!(back, ("tea".to_owned(), 3));
            assert!(matches!(
                codec.decode::<Vec<u64>>(b"\xff\xff\xff"),
                Err(ValueError::Decode(_))
            ));
        }
    }
}
