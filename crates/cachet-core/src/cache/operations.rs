//! What operators do with a cache: read its rules, caches and stats, list
//! keys, delete, touch (give a new TTL) and clear.

use super::builder::MAX_TAG_BYTES;
use super::Cache;
use crate::clock::SharedClock;
use crate::config::rules::{CacheSpec, RuleSet};
use crate::stats::{CacheStats, PurgeKind, StatsSnapshot};
use crate::store::entry::Entry;
use crate::store::key::CacheKey;
use crate::store::StoreError;
use regex::Regex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A key and the named cache that holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub struct ListedKey {
    /// The named cache.
    pub cache: String,
    /// The key.
    pub key: CacheKey,
}

impl Cache {
    /// The compiled rules.
    pub fn rules(&self) -> &RuleSet {
        &self.inner.rules
    }

    /// The named caches and their budgets.
    pub fn caches(&self) -> &BTreeMap<String, CacheSpec> {
        &self.inner.caches
    }

    /// The store the cache keeps its entries in (its health:
    /// [`Store::degraded`](crate::store::Store::degraded)).
    pub fn storage(&self) -> &Arc<dyn crate::store::Store> {
        &self.inner.store
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
    pub async fn keys(&self) -> Result<Vec<ListedKey>, StoreError> {
        let mut all = Vec::new();
        for cache in self.inner.caches.keys() {
            let keys = self.inner.store.keys(cache).await?;
            all.extend(keys.into_iter().map(|key| ListedKey {
                cache: cache.clone(),
                key,
            }));
        }
        all.sort();
        Ok(all)
    }

    /// The live keys that `pattern` matches (anywhere in the key; anchor it
    /// with `^` to match from the path's start).
    pub async fn keys_matching(&self, pattern: &Regex) -> Result<Vec<ListedKey>, StoreError> {
        let mut keys = self.keys().await?;
        keys.retain(|stored| pattern.is_match(stored.key.as_str()));
        Ok(keys)
    }

    /// Deletes `key` from whichever cache holds it; whether it was there.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.purges.count(PurgeKind::Key);
        let key = CacheKey::from_raw(key);
        let mut found = false;
        for cache in self.inner.caches.keys() {
            found |= self.inner.store.remove(cache, &key).await?;
        }
        Ok(found)
    }

    /// Deletes every key `pattern` matches; how many were deleted.
    pub async fn delete_matching(&self, pattern: &Regex) -> Result<usize, StoreError> {
        self.inner.purges.count(PurgeKind::Pattern);
        self.remove_matching(pattern, None).await
    }

    /// Makes `key` fresh for `ttl` from now (memcached's `touch`); whether
    /// it was there. The origin is not asked.
    pub async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut found = false;
        for cache in self.inner.caches.keys() {
            found |= self.touch_in(cache, &CacheKey::from_raw(key), ttl).await?;
        }
        Ok(found)
    }

    /// Makes every key `pattern` matches fresh for `ttl` from now; how many.
    pub async fn touch_matching(
        &self,
        pattern: &Regex,
        ttl: Duration,
    ) -> Result<usize, StoreError> {
        let mut refreshed = 0;
        for stored in self.keys_matching(pattern).await? {
            refreshed += usize::from(self.touch_in(&stored.cache, &stored.key, ttl).await?);
        }
        Ok(refreshed)
    }

    async fn touch_in(
        &self,
        cache: &str,
        key: &CacheKey,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = self.inner.clock.now();
        // A variant index has no freshness of its own; its variants do.
        let Some(Entry::Response(entry)) = self.inner.store.get(cache, key, now).await? else {
            return Ok(false);
        };
        let refreshed = entry.refreshed(now, ttl);
        self.inner
            .store
            .insert(cache, key, Entry::from(refreshed))
            .await?;
        Ok(true)
    }

    /// Removes every entry of the named cache `cache`.
    pub async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        if !self.inner.caches.contains_key(cache) {
            return Err(crate::store::unknown_cache(cache));
        }
        self.inner.purges.count(PurgeKind::Clear);
        self.inner.store.clear(cache).await
    }

    /// Removes every entry of every named cache.
    pub async fn clear_all(&self) -> Result<(), StoreError> {
        self.inner.purges.count(PurgeKind::Clear);
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
            bookkeeping_bytes: self.inner.coalescer.heap_bytes() + self.inner.values.heap_bytes(),
        }
    }
}
