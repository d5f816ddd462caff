//! What operators do with a cache: read its rules, caches and stats, list
//! keys, delete, touch (give a new TTL) and clear.

use super::builder::MAX_TAG_BYTES;
use super::Cache;
use crate::clock::SharedClock;
use crate::config::rules::Rule;
use crate::key::CacheKey;
use crate::stats::{CacheStats, Health, KeyStats, ListedKey, PurgeKind, StatsSnapshot};
use crate::store::entry::Entry;
use crate::store::CacheSpec;
use crate::store::StoreError;
use crate::values::ValueCache;
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

impl Cache {
    /// The rules, as configured, in the order they are tried.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &Rule> + '_ {
        self.inner.rules.rules().iter().map(|rule| rule.rule())
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
    pub(crate) fn take_tags(
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

    /// The index terms of the Cache Groups (RFC 9875) `field` of a response
    /// names, on the origin `host`; bounded as tags are.
    pub(crate) fn group_terms(
        &self,
        headers: &http::HeaderMap,
        field: &http::HeaderName,
        host: Option<&str>,
    ) -> Vec<Arc<str>> {
        let mut terms = crate::protocol::tags::group_terms(headers, field, host);
        terms.retain(|term| term.len() <= MAX_TAG_BYTES);
        terms.truncate(self.inner.limits.max_tags);
        terms
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
        self.delete_as(key, false).await
    }

    pub(crate) async fn delete_as(&self, key: &str, soft: bool) -> Result<bool, StoreError> {
        self.inner.purges.count_as(PurgeKind::Key, soft);
        let key = CacheKey::from_raw(key);
        let mut found = false;
        for cache in self.inner.caches.keys() {
            found |= self.drop_entry(cache, &key, soft).await?;
        }
        Ok(found)
    }

    /// Deletes every key `pattern` matches; how many were deleted.
    pub async fn delete_matching(&self, pattern: &Regex) -> Result<usize, StoreError> {
        self.delete_matching_as(pattern, false).await
    }

    pub(crate) async fn delete_matching_as(
        &self,
        pattern: &Regex,
        soft: bool,
    ) -> Result<usize, StoreError> {
        self.inner.purges.count_as(PurgeKind::Pattern, soft);
        self.remove_matching(pattern, None, soft).await
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

    /// Whether every named cache answers (the store is probed with a read
    /// of each), and whether a remote tier is failing while the local one
    /// serves.
    pub async fn health(&self) -> Health {
        let now = self.inner.clock.now();
        let mut degraded = None;
        for name in self.inner.caches.keys() {
            match crate::store::check_health(&*self.inner.store, name, now).await {
                Err(error) => {
                    return Health::Failing {
                        error: error.to_string(),
                    }
                }
                Ok(reason) => degraded = degraded.or(reason),
            }
        }
        match degraded {
            Some(degraded) => Health::Degraded { degraded },
            None => Health::Ok,
        }
    }

    /// Per named cache, how many live entries have keys `pattern` matches
    /// (every entry without one) and the bytes they hold.
    pub async fn key_stats(
        &self,
        pattern: Option<&Regex>,
    ) -> Result<BTreeMap<String, KeyStats>, StoreError> {
        let now = self.inner.clock.now();
        let mut per_cache = BTreeMap::new();
        for name in self.inner.caches.keys() {
            let mut figures = KeyStats::default();
            for key in self.inner.store.keys(name).await? {
                if pattern.is_some_and(|p| !p.is_match(key.as_str())) {
                    continue;
                }
                if let Some(entry) = self.inner.store.get(name, &key, now).await? {
                    figures.count += 1;
                    // As the in-memory store weighs it, prepared form included.
                    let form = entry.response().map_or(0, |r| r.prepared_weight());
                    figures.bytes += crate::weight::key(key.as_str().len()) + entry.weight() + form;
                }
            }
            per_cache.insert(name.clone(), figures);
        }
        Ok(per_cache)
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
            bookkeeping_bytes: self.inner.coalescer.heap_bytes()
                + self
                    .inner
                    .value_caches
                    .values()
                    .map(ValueCache::heap_bytes)
                    .sum::<u64>(),
            purges: self.inner.purges.snapshot(),
            soft_purges: self.inner.purges.snapshot_soft(),
        }
    }
}
