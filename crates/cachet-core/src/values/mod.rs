//! The programmatic cache: typed values for what handlers compute
//! themselves (what Django apps do with a simple cache's `set`, a cache
//! manager's `get_many`, `@cached` and `cache_evict`).
//!
//! [`ValueCache`] is its own handle ([`Cache::values`](crate::Cache::values))
//! over its own named cache, `values` (16 MiB unless configured under
//! `[caches.values]`): its patterns, key listings and deletions never reach
//! an HTTP entry, and no rule may store responses there. Any other named
//! cache that no rule stores responses in is a value cache of its own,
//! with its own budget and default TTL ([`Cache::values_in`](crate::Cache::values_in),
//! Django's `caches['user']`); each one's patterns, listings and clears stay
//! within it. Values are
//! serialized with serde — [`Codec::Binary`] (postcard, compact) by
//! default, [`Codec::Json`] on request — under the cache's clock and store.
//!
//! `ValueCache` is `Clone + Send + Sync`: hand it to axum handlers as
//! `State<ValueCache>` (or an `Extension`), and to actix-web handlers as
//! `web::Data<ValueCache>`.
//!
//! ```
//! use cachet_core::Cache;
//! use cachet_core::values::ValueKey;
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let values = Cache::builder().build()?.values();
//! let key = ValueKey::new("user_profile").prefix("shop").param("id", 42).to_string();
//! assert_eq!(key, "shop:user_profile:id=42");
//!
//! values.set(&key, &vec!["tea", "cake"], Duration::from_secs(60)).await?;
//! let profile: Option<Vec<String>> = values.get(&key).await?;
//! assert_eq!(profile.unwrap(), ["tea", "cake"]);
//!
//! // Concurrent callers for one key run the function once; errors are not cached.
//! let total = values
//!     .get_or_compute("totals:today", Duration::from_secs(30), || async {
//!         Ok::<_, std::io::Error>(1234_u64)
//!     })
//!     .await?;
//! assert_eq!(total, 1234);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod atomic;
mod codec;
mod evict;
mod flights;
mod key;

pub use self::codec::{Codec, ValueError};
pub use self::evict::Evict;
pub use self::key::ValueKey;

use self::flights::Flights;
use crate::clock::SharedClock;
use crate::identity::Identity;
use crate::key::CacheKey;
use crate::store::entry::{Entry, ValueEntry};
use crate::store::{CacheSpec, Store, StoreError, StoreUsage};
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long `get_or_compute` waits for another instance computing the same
/// value (with a store shared between instances that coordinates them),
/// before computing it too.
const COMPUTE_WAIT: Duration = Duration::from_secs(5);

/// What [`ValueCache::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValuesInfo {
    /// Where values live: `"memory"`, or with a Redis tier
    /// `"memory, then Redis at …"` (the URL without its password).
    pub store: String,
    /// Whether other instances share the values (a Redis tier).
    pub shared: bool,
    /// This instance's memory: live values, bytes held, and what was
    /// dropped.
    pub usage: StoreUsage,
    /// The named cache the values live in (`values` unless
    /// [`Cache::values_in`](crate::Cache::values_in) chose another).
    pub cache: String,
    /// Its memory budget.
    pub max_bytes: u64,
    /// Its default TTL: what `#[cached]` without `ttl` stores values for.
    pub default_ttl: Duration,
    /// A tier the store works without just now, and why (Redis down).
    pub degraded: Option<String>,
}

/// The programmatic cache: typed values with a TTL, in one named cache
/// (`values`, or the one [`Cache::values_in`](crate::Cache::values_in)
/// names). Made by [`Cache`](crate::Cache); clones share everything (the
/// store, and the computations in flight).
#[derive(Clone)]
pub struct ValueCache {
    shared: Arc<Shared>,
}

struct Shared {
    /// The named cache the values live in.
    cache: Arc<str>,
    store: Arc<dyn Store>,
    clock: SharedClock,
    codec: Codec,
    identity: Identity,
    flights: Flights,
    /// The named cache's budget and default TTL.
    spec: CacheSpec,
    /// Every named cache, for evictions by tag (a tag reaches HTTP entries
    /// too, so that a write purges the pages that show what it changed).
    caches: Vec<String>,
}

impl fmt::Debug for ValueCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueCache")
            .field("cache", &self.shared.cache)
            .field("codec", &self.shared.codec)
            .finish_non_exhaustive()
    }
}

impl ValueCache {
    /// The handle a [`Cache`](crate::Cache) builds over its store, for
    /// the named cache `cache` configured as `spec`.
    pub(crate) fn new(
        cache: &str,
        spec: CacheSpec,
        store: Arc<dyn Store>,
        clock: SharedClock,
        codec: Codec,
        identity: Identity,
        caches: Vec<String>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                cache: Arc::from(cache),
                store,
                clock,
                codec,
                identity,
                flights: Flights::default(),
                spec,
                caches,
            }),
        }
    }

    /// The named cache the values live in.
    pub fn cache_name(&self) -> &str {
        &self.shared.cache
    }

    /// How long values are kept when no TTL is given (`#[cached]` without
    /// `ttl`): the named cache's `ttl`.
    pub fn default_ttl(&self) -> Duration {
        self.shared.spec.ttl
    }

    /// The heap the computations in flight hold.
    pub(crate) fn heap_bytes(&self) -> u64 {
        self.shared.flights.heap_bytes()
    }

    async fn stored_value(&self, key: &str) -> Result<Option<Arc<ValueEntry>>, StoreError> {
        let now = self.shared.clock.now();
        let key = CacheKey::from_raw(key);
        match self.shared.store.get(&self.shared.cache, &key, now).await? {
            Some(Entry::Value(value)) if value.expires_at() > now => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// The value under `key`, if there is a live one.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ValueError> {
        match self.stored_value(key).await? {
            Some(value) => self.shared.codec.decode(value.bytes()).map(Some),
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

    /// [`set`](Self::set), indexed under `tags` so that [`Evict::tag`] and
    /// [`Cache::purge_tag`](crate::Cache::purge_tag) reach it.
    pub async fn set_tagged<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
        tags: &[&str],
    ) -> Result<(), ValueError> {
        let bytes = self.shared.codec.encode(value)?;
        let tags: Vec<Arc<str>> = tags.iter().map(|tag| Arc::from(*tag)).collect();
        let stored =
            ValueEntry::new(bytes, self.shared.clock.now(), ttl).with_tags(Arc::from(tags));
        self.put_value(key, stored).await
    }

    async fn put_value(&self, key: &str, value: ValueEntry) -> Result<(), ValueError> {
        let key = CacheKey::from_raw(key);
        let value = Entry::Value(Arc::new(value));
        Ok(self
            .shared
            .store
            .insert(&self.shared.cache, &key, value)
            .await?)
    }

    /// Whether a live value is under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, ValueError> {
        Ok(self.stored_value(key).await?.is_some())
    }

    /// How long the value under `key` has left, if there is one.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, ValueError> {
        let now = self.shared.clock.now();
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
        self.put_value(key, value.expiring(self.shared.clock.now(), ttl))
            .await?;
        Ok(true)
    }

    /// The live values of `keys`, by key; missing keys are left out (one
    /// `MGET` on a shared Redis tier).
    pub async fn get_many<T, K>(&self, keys: &[K]) -> Result<HashMap<String, T>, ValueError>
    where
        T: DeserializeOwned,
        K: AsRef<str>,
    {
        let now = self.shared.clock.now();
        let cache_keys: Vec<CacheKey> = keys
            .iter()
            .map(|key| CacheKey::from_raw(key.as_ref()))
            .collect();
        let stored = self
            .shared
            .store
            .get_many(&self.shared.cache, &cache_keys, now)
            .await?;
        let mut found = HashMap::with_capacity(keys.len());
        for (key, entry) in keys.iter().zip(stored) {
            if let Some(Entry::Value(value)) = entry {
                if value.expires_at() > now {
                    let decoded = self.shared.codec.decode(value.bytes())?;
                    found.insert(key.as_ref().to_owned(), decoded);
                }
            }
        }
        Ok(found)
    }

    /// Stores every `(key, value)` for `ttl` (in one round trip on a
    /// shared Redis tier).
    pub async fn set_many<T, K, I>(&self, items: I, ttl: Duration) -> Result<(), ValueError>
    where
        T: Serialize,
        K: AsRef<str>,
        I: IntoIterator<Item = (K, T)>,
    {
        let now = self.shared.clock.now();
        let mut entries = Vec::new();
        for (key, value) in items {
            let bytes = self.shared.codec.encode(&value)?;
            let value = Entry::Value(Arc::new(ValueEntry::new(bytes, now, ttl)));
            entries.push((CacheKey::from_raw(key.as_ref()), value));
        }
        Ok(self
            .shared
            .store
            .insert_many(&self.shared.cache, entries)
            .await?)
    }

    /// The keys of the live values that the glob `pattern` matches whole
    /// (`user:*`, `session:??`), sorted. HTTP entries are never listed.
    pub async fn keys_like(&self, pattern: &str) -> Result<Vec<String>, ValueError> {
        let regex = glob_regex(pattern).map_err(|e| ValueError::Encode(e.to_string()))?;
        let mut keys: Vec<String> = self
            .shared
            .store
            .keys(&self.shared.cache)
            .await?
            .into_iter()
            .filter(|key| regex.is_match(key.as_str()))
            .map(|key| key.as_str().to_owned())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes every value whose key the glob `pattern` matches whole; how
    /// many. `delete_pattern("*")` empties the value cache and nothing else.
    pub async fn delete_pattern(&self, pattern: &str) -> Result<usize, ValueError> {
        let regex = glob_regex(pattern).map_err(|e| ValueError::Encode(e.to_string()))?;
        let mut removed = 0;
        for key in self.shared.store.keys(&self.shared.cache).await? {
            if regex.is_match(key.as_str()) {
                removed += usize::from(self.shared.store.remove(&self.shared.cache, &key).await?);
            }
        }
        Ok(removed)
    }

    /// Deletes the value under `key`; whether there was one.
    pub async fn delete(&self, key: &str) -> Result<bool, ValueError> {
        let key = CacheKey::from_raw(key);
        Ok(self.shared.store.remove(&self.shared.cache, &key).await?)
    }

    /// Removes every value.
    pub async fn clear(&self) -> Result<(), ValueError> {
        Ok(self.shared.store.clear(&self.shared.cache).await?)
    }

    /// Checks that the store answers now — Redis too, with a round trip,
    /// when the cache has a Redis tier (a Redis cache manager's `ping`).
    /// The error says which tier failed and why; values still work from
    /// memory meanwhile.
    pub async fn ping(&self) -> Result<(), ValueError> {
        let now = self.shared.clock.now();
        match crate::store::check_health(&*self.shared.store, &self.shared.cache, now).await? {
            None => Ok(()),
            Some(degraded) => Err(StoreError::new(degraded).into()),
        }
    }

    /// What the value cache holds, where, and whether every tier works (a
    /// Redis cache manager's `info`).
    ///
    /// ```
    /// let values = cachet_core::Cache::builder().build()?.values();
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let info = values.info().await;
    /// assert_eq!((info.store.as_str(), info.shared), ("memory", false));
    /// assert_eq!(info.max_bytes, 16 * 1024 * 1024);
    /// # });
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub async fn info(&self) -> ValuesInfo {
        let store = &self.shared.store;
        let now = self.shared.clock.now();
        let degraded = match crate::store::check_health(&**store, &self.shared.cache, now).await {
            Ok(degraded) => degraded,
            Err(error) => Some(error.to_string()),
        };
        ValuesInfo {
            store: store.describe(),
            shared: store.shared().is_some(),
            usage: store.usage(&self.shared.cache).unwrap_or_default(),
            cache: self.shared.cache.to_string(),
            max_bytes: self.shared.spec.max_bytes,
            default_ttl: self.shared.spec.ttl,
            degraded,
        }
    }

    /// Deletes every entry tagged `tag` — values, and the HTTP entries of
    /// every named cache; how many.
    async fn purge_tag(&self, tag: &str) -> Result<usize, StoreError> {
        let store = &self.shared.store;
        let mut removed = 0;
        for cache in &self.shared.caches {
            for key in store.tagged(cache, tag).await? {
                removed += usize::from(store.remove(cache, &key).await?);
            }
        }
        Ok(removed)
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
    ///
    /// Concurrent calls for one key compute it once in this process; on a
    /// shared Redis tier with `distributed_lock`, once across instances
    /// (the others wait up to 5 s for the value).
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
        self.get_or_compute_tagged(key, ttl, &[], unless, compute)
            .await
    }

    /// [`get_or_compute_unless`](Self::get_or_compute_unless) that stores the
    /// value under `tags`, so that [`Evict::tag`] and
    /// [`Cache::purge_tag`](crate::Cache::purge_tag) reach it (what
    /// `#[cached(tags = [...])]` expands to).
    pub async fn get_or_compute_tagged<T, E, F, Fut, U>(
        &self,
        key: &str,
        ttl: Duration,
        tags: &[&str],
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
        let flight = self.shared.flights.join(key);
        let _turn = flight.lock.lock().await;
        // Whoever held the lock before may have stored it.
        if let Some(value) = self.cached_value(key).await {
            return Ok(value);
        }
        // Another instance sharing the store may be computing it.
        let shared = self.shared.store.shared();
        let cache_key = CacheKey::from_raw(key);
        if let Some(shared) = shared {
            if shared
                .before_fetch(&self.shared.cache, &cache_key, COMPUTE_WAIT)
                .await
            {
                if let Some(value) = self.cached_value(key).await {
                    shared.fetch_done(&self.shared.cache, &cache_key).await;
                    return Ok(value);
                }
            }
        }
        let computed = compute().await;
        if let Ok(value) = &computed {
            if !unless(value) {
                if let Err(error) = self.set_tagged(key, value, ttl, tags).await {
                    tracing::warn!(%error, key, "storing a computed value failed");
                }
            }
        }
        if let Some(shared) = shared {
            shared.fetch_done(&self.shared.cache, &cache_key).await;
        }
        computed
    }

    /// The key `#[cached]` stores `function`'s result under by default for
    /// `arguments` (a tuple of them, `self` left out): the function's path,
    /// then the arguments in this cache's codec — JSON as it is, binary in
    /// hex — or, past 128 bytes, their BLAKE3 hash. With it, a value a
    /// `#[cached]` function stored can be read or deleted by hand.
    ///
    /// ```
    /// let values = cachet_core::Cache::builder().build()?.values();
    /// let key = values.function_key("shop::get_user", &(42_u64, "en"))?;
    /// assert_eq!(key, "shop::get_user:2a02656e");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn function_key<A: Serialize + ?Sized>(
        &self,
        function: &str,
        arguments: &A,
    ) -> Result<String, ValueError> {
        let encoded = self.shared.codec.encode(arguments)?;
        Ok(self.key_of_encoded(function, &encoded))
    }

    /// The arguments of a [`function_key`](Self::function_key), encoded
    /// one at a time into one buffer as `#[cached]` does (so that the
    /// compiler points at an argument that is not `Serialize`): the same
    /// bytes as the tuple of them — its elements in a row in postcard, a
    /// JSON array in JSON.
    pub(crate) fn function_key_arguments(&self) -> KeyArguments {
        KeyArguments {
            codec: self.shared.codec,
            encoded: Ok(Vec::with_capacity(32)),
            count: 0,
        }
    }

    /// [`function_key`](Self::function_key) from [`KeyArguments`].
    pub(crate) fn function_key_of(
        &self,
        function: &str,
        arguments: KeyArguments,
    ) -> Result<String, ValueError> {
        let mut encoded = arguments.encoded?;
        match (self.shared.codec, arguments.count) {
            (_, 0) => return self.function_key(function, &()),
            (Codec::Json, _) => {
                encoded.insert(0, b'[');
                encoded.push(b']');
            }
            (Codec::Binary, _) => {}
        }
        Ok(self.key_of_encoded(function, &encoded))
    }

    fn key_of_encoded(&self, function: &str, encoded: &[u8]) -> String {
        const LONGEST: usize = 128;
        let written = match self.shared.codec {
            Codec::Json => String::from_utf8_lossy(encoded).into_owned(),
            Codec::Binary => hex(encoded),
        };
        if written.len() <= LONGEST {
            return format!("{function}:{written}");
        }
        format!("{function}:blake3-{}", blake3::hash(encoded).to_hex())
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

/// A `#[cached]` function's arguments, encoded as they come
/// ([`ValueCache::function_key_arguments`]); the first failure is kept.
/// Only the attribute's expansion makes one.
#[doc(hidden)]
#[derive(Debug)]
pub struct KeyArguments {
    codec: Codec,
    encoded: Result<Vec<u8>, ValueError>,
    count: usize,
}

impl KeyArguments {
    /// Appends `argument`.
    pub(crate) fn push<T: Serialize + ?Sized>(mut self, argument: &T) -> Self {
        if let Ok(buf) = &mut self.encoded {
            if self.codec == Codec::Json && self.count > 0 {
                buf.push(b',');
            }
            if let Err(error) = self.codec.encode_into(argument, buf) {
                self.encoded = Err(error);
            }
        }
        self.count += 1;
        self
    }
}

/// `bytes` in lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
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
}
