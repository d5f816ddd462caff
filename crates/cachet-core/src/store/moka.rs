//! The default store: one moka cache per named cache, in process memory.

use super::key_index::KeyIndex;
use super::{unknown_cache, Immediate, Store, StoreUsage, Walk, WalkPart};
use crate::clock::SharedClock;
use crate::key::CacheKey;
use crate::store::entry::Entry;
use crate::store::CacheSpec;
use crate::store::StoreError;
use moka::notification::RemovalCause;
use moka::sync::Cache as MokaCache;
use moka::Expiry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

type Entries = MokaCache<Arc<str>, Entry>;

#[derive(Debug, Default)]
struct Removals {
    evictions: AtomicU64,
    expirations: AtomicU64,
    explicit: AtomicU64,
    replaced: AtomicU64,
}

#[derive(Debug)]
struct Named {
    entries: Entries,
    removals: Arc<Removals>,
    index: Arc<KeyIndex>,
}

/// An in-memory [`Store`] on [moka](https://docs.rs/moka): entries are
/// weighed in bytes (body, headers, key) against each named cache's
/// `max_bytes`, expire after their own TTL, and are never serialised — a hit
/// is a pointer clone.
///
/// ```
/// use cachet_core::{CacheSpec, store::{MokaStore, Store}};
/// use cachet_core::clock::SystemClock;
/// use std::{collections::BTreeMap, sync::Arc};
///
/// let caches = BTreeMap::from([("url".to_owned(), CacheSpec::default())]);
/// let store = MokaStore::new(&caches, Arc::new(SystemClock));
/// assert_eq!(store.usage("url").unwrap().entries, 0);
/// assert!(store.usage("nope").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct MokaStore {
    caches: Arc<HashMap<String, Named>>,
    clock: SharedClock,
}

/// Moka's own expiry for a value: the time left until it may be dropped, so
/// memory is reclaimed even for keys that are never read again.
struct EntryExpiry {
    clock: SharedClock,
}

impl Expiry<Arc<str>, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Entry,
        _at: Instant,
    ) -> Option<Duration> {
        Some(time_left(value, self.clock.now()))
    }

    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        value: &Entry,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(time_left(value, self.clock.now()))
    }
}

fn time_left(value: &Entry, now: SystemTime) -> Duration {
    value.keep_until().duration_since(now).unwrap_or_default()
}

impl Named {
    fn run_pending_tasks(&self, now: SystemTime) {
        let gone: Vec<Arc<Arc<str>>> = self
            .entries
            .iter()
            .filter(|(_, value)| !value.is_kept(now))
            .map(|(key, _)| key)
            .collect();
        for key in gone {
            self.expire(&key);
        }
        self.entries.run_pending_tasks();
    }

    /// Removes `key`, unindexes it and counts an expiration.
    fn expire(&self, key: &str) {
        if self.remove(key).is_some() {
            self.removals.expirations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes `key` and unindexes it (the listener does too; whichever
    /// comes second finds nothing to do).
    fn remove(&self, key: &str) -> Option<Entry> {
        let value = self.entries.remove(key)?;
        self.index.removed(key, &value);
        Some(value)
    }
}

/// Budget per entry of the room moka's table gets up front. Growing the
/// table rehashes every key it holds (a fifth of a million-entry restore).
/// The table takes 1.4 times its room before it grows, so room for
/// `max_bytes / 3 KiB` entries holds one per 2.2 KiB of budget without
/// growing, at 8 bytes a bucket, two to four buckets per entry of room:
/// 0.5 to 1 % of the budget, about what a table full of small responses
/// (1.3 KiB each) takes anyway.
const BYTES_PER_ROOM: u64 = 3 * 1024;

fn initial_capacity(max_bytes: u64) -> usize {
    usize::try_from(max_bytes / BYTES_PER_ROOM).unwrap_or(usize::MAX)
}

impl MokaStore {
    /// A store with one moka cache per entry of `caches`, reading time from `clock`.
    pub fn new(caches: &BTreeMap<String, CacheSpec>, clock: SharedClock) -> Self {
        let caches = caches
            .iter()
            .map(|(name, spec)| {
                let removals = Arc::new(Removals::default());
                let counted = Arc::clone(&removals);
                let index = Arc::new(KeyIndex::default());
                let indexed = Arc::clone(&index);
                let entries = MokaCache::builder()
                    .max_capacity(spec.max_bytes)
                    .initial_capacity(initial_capacity(spec.max_bytes))
                    .weigher(|key: &Arc<str>, value: &Entry| {
                        let weight = crate::weight::key(key.len()) + value.weight();
                        u32::try_from(weight).unwrap_or(u32::MAX)
                    })
                    .expire_after(EntryExpiry {
                        clock: Arc::clone(&clock),
                    })
                    .eviction_listener(move |key, value, cause| {
                        indexed.removed(&key, &value);
                        match cause {
                            RemovalCause::Size => {
                                counted.evictions.fetch_add(1, Ordering::Relaxed);
                            }
                            RemovalCause::Expired => {
                                counted.expirations.fetch_add(1, Ordering::Relaxed);
                            }
                            RemovalCause::Explicit => {
                                counted.explicit.fetch_add(1, Ordering::Relaxed);
                            }
                            RemovalCause::Replaced => {
                                counted.replaced.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    })
                    .build();
                let named = Named {
                    entries,
                    removals,
                    index,
                };
                (name.clone(), named)
            })
            .collect();
        Self {
            caches: Arc::new(caches),
            clock,
        }
    }

    fn named(&self, cache: &str) -> Result<&Named, StoreError> {
        self.caches.get(cache).ok_or_else(|| unknown_cache(cache))
    }

    fn lookup(&self, cache: &str, key: &str, now: SystemTime) -> Result<Option<Entry>, StoreError> {
        let named = self.named(cache)?;
        let Some(entry) = named.entries.get(key) else {
            return Ok(None);
        };
        // moka expires by its own clock; the cache's clock is the authority.
        if entry.is_kept(now) {
            return Ok(Some(entry));
        }
        named.expire(key);
        Ok(None)
    }

    /// Stores `value` under `key` in `cache` (moka's insert never waits).
    fn put(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError> {
        let named = self.named(cache)?;
        let key: Arc<str> = Arc::from(key.as_str());
        // Indexed first: the listener's notice for this value, however
        // early, finds it indexed.
        named.index.add(&key, &value);
        named.entries.insert(key, value);
        Ok(())
    }

    /// Runs moka's pending maintenance (evictions, expirations) now, and
    /// drops every value past its `keep_until` by the store's clock (moka's
    /// own timer runs on real time, which a mock clock does not move), so
    /// that usage figures and the tag index are exact. Tests and stats call
    /// it; the request path does not.
    pub fn run_pending_tasks(&self) {
        let now = self.clock.now();
        for named in self.caches.values() {
            named.run_pending_tasks(now);
        }
    }
}

#[async_trait::async_trait]
impl Store for MokaStore {
    async fn get(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<Option<Entry>, StoreError> {
        self.lookup(cache, key.as_str(), now)
    }

    async fn insert(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError> {
        self.put(cache, key, value)
    }

    async fn remove(&self, cache: &str, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(self.named(cache)?.remove(key.as_str()).is_some())
    }

    async fn tagged(&self, cache: &str, tag: &str) -> Result<Vec<CacheKey>, StoreError> {
        let mut keys: Vec<CacheKey> = self
            .named(cache)?
            .index
            .keys(tag)
            .into_iter()
            .map(|key| CacheKey::from_raw(&*key))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn keys(&self, cache: &str) -> Result<Vec<CacheKey>, StoreError> {
        let now = self.clock.now();
        let mut keys: Vec<CacheKey> = self
            .named(cache)?
            .entries
            .iter()
            .filter(|(_, entry)| entry.is_kept(now))
            .map(|(key, _)| CacheKey::from_raw(&**key))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        let named = self.named(cache)?;
        named.entries.invalidate_all();
        named.entries.run_pending_tasks();
        named.index.clear();
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn immediate(&self) -> Option<&dyn Immediate> {
        Some(self)
    }

    fn walker(&self) -> Option<&dyn Walk> {
        Some(self)
    }

    fn usage(&self, cache: &str) -> Option<StoreUsage> {
        let named = self.caches.get(cache)?;
        // Exact figures need moka's pending evictions applied and values
        // past their time dropped; stats are off the request path, so the
        // cost (a pass over the entries) is fine here.
        named.run_pending_tasks(self.clock.now());
        Some(StoreUsage {
            entries: named.entries.entry_count(),
            bytes: named.entries.weighted_size(),
            evictions: named.removals.evictions.load(Ordering::Relaxed),
            expirations: named.removals.expirations.load(Ordering::Relaxed),
            removals: named.removals.explicit.load(Ordering::Relaxed),
            replacements: named.removals.replaced.load(Ordering::Relaxed),
            tagged: named.index.pairs(),
        })
    }
}

impl Immediate for MokaStore {
    fn get_now(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Option<Result<Option<Entry>, StoreError>> {
        Some(self.lookup(cache, key.as_str(), now))
    }

    fn insert_now(
        &self,
        cache: &str,
        key: &CacheKey,
        value: Entry,
    ) -> Option<Result<(), StoreError>> {
        Some(self.put(cache, key, value))
    }
}

impl Walk for MokaStore {
    fn walk(
        &self,
        cache: &str,
        part: WalkPart,
        visit: &mut dyn FnMut(&str, &Entry) -> bool,
    ) -> Result<(), StoreError> {
        let named = self.named(cache)?;
        let now = self.clock.now();
        named.index.walk(part, &mut |key, value| {
            !value.is_kept(now) || visit(key, value)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use crate::key::KeyBuilder;
    use crate::store::entry::CachedResponse;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};

    fn store(max_bytes: u64, clock: &MockClock) -> MokaStore {
        let caches = BTreeMap::from([(
            "c".to_owned(),
            CacheSpec {
                max_bytes,
                ttl: Duration::from_secs(60),
            },
        )]);
        MokaStore::new(&caches, Arc::new(clock.clone()))
    }

    fn entry(clock: &MockClock, body: usize, ttl: u64) -> Entry {
        Entry::from(CachedResponse::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(vec![b'x'; body]),
            crate::clock::Clock::now(clock),
            Duration::from_secs(ttl),
        ))
    }

    fn key(path: &str) -> CacheKey {
        KeyBuilder::new(path, None).method("GET").finish()
    }

    #[tokio::test]
    async fn removals_are_counted_by_reason() {
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        for body in [10, 20] {
            let stored = entry(&clock, body, 60);
            store.insert("c", &key("/a"), stored).await.unwrap();
        }
        store
            .insert("c", &key("/b"), entry(&clock, 10, 60))
            .await
            .unwrap();
        assert!(store.remove("c", &key("/b")).await.unwrap());
        let usage = store.usage("c").unwrap();
        assert_eq!((usage.replacements, usage.removals), (1, 1));
        assert_eq!(
            (usage.evictions, usage.expirations, usage.entries),
            (0, 0, 1)
        );
        let weight = crate::weight::key(key("/a").as_str().len()) + entry(&clock, 20, 60).weight();
        assert_eq!(usage.bytes, weight, "the key's cost and the entry's");
    }

    #[tokio::test]
    async fn entries_expire_by_the_injected_clock() {
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        store
            .insert("c", &key("/a"), entry(&clock, 10, 60))
            .await
            .unwrap();
        assert!(store
            .get("c", &key("/a"), crate::clock::Clock::now(&clock))
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.keys("c").await.unwrap(), vec![key("/a")]);
        clock.advance(Duration::from_secs(60));
        assert!(store.keys("c").await.unwrap().is_empty());
        assert!(store
            .get("c", &key("/a"), crate::clock::Clock::now(&clock))
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.usage("c").unwrap().expirations, 1);
    }

    #[tokio::test]
    async fn stale_entries_are_kept_until_keep_until() {
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        let kept = CachedResponse::new(
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::new(),
            crate::clock::Clock::now(&clock),
            Duration::from_secs(10),
        )
        .with_keep(Duration::from_secs(20));
        store
            .insert("c", &key("/a"), Entry::from(kept))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(29));
        let now = crate::clock::Clock::now(&clock);
        let found = store.get("c", &key("/a"), now).await.unwrap();
        let response = found.and_then(|stored| stored.response().cloned()).unwrap();
        assert!(!response.is_fresh(now), "stale but kept");
        assert_eq!(store.keys("c").await.unwrap(), vec![key("/a")]);
        clock.advance(Duration::from_secs(1));
        let now = crate::clock::Clock::now(&clock);
        assert!(store.get("c", &key("/a"), now).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn max_bytes_bounds_the_weighed_size() {
        let clock = MockClock::new();
        let store = store(64 * 1024, &clock);
        for index in 0..200 {
            store
                .insert("c", &key(&format!("/{index}")), entry(&clock, 1024, 60))
                .await
                .unwrap();
        }
        store.run_pending_tasks();
        let usage = store.usage("c").unwrap();
        assert!(usage.bytes <= 64 * 1024, "{usage:?}");
        assert!(usage.entries < 200, "{usage:?}");
        assert!(usage.evictions >= 200 - usage.entries, "{usage:?}");
        assert_eq!(usage.expirations, 0);
    }

    #[tokio::test]
    async fn unknown_caches_are_errors() {
        let clock = MockClock::new();
        let store = store(1024, &clock);
        let err = store
            .get("nope", &key("/"), crate::clock::Clock::now(&clock))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown cache `nope`"));
    }
}
