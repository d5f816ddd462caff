//! The default store: one quick_cache cache per named cache, in process
//! memory.

use super::key_index::KeyIndex;
use super::{unknown_cache, Immediate, Store, StoreUsage, Walk, WalkPart};
use crate::clock::SharedClock;
use crate::key::CacheKey;
use crate::store::entry::{CachedResponse, Entry};
use crate::store::CacheSpec;
use crate::store::StoreError;
use quick_cache::sync::{Cache as QuickCache, EntryAction};
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

type Entries = QuickCache<Arc<str>, Slot, EntryWeight, DefaultHashBuilder, Evictions>;

/// A value as quick_cache holds it: the entry, and whether its weight
/// counts the entry's prepared form. The flag is the slot's, not the
/// entry's, and changes only under the shard's lock
/// (its [`Immediate::count_prepared`]), which weighs the slot again: the
/// weight quick_cache takes away when the slot goes is the one it added.
#[derive(Debug, Clone)]
struct Slot {
    entry: Entry,
    counts_prepared: bool,
}

impl Slot {
    fn new(entry: Entry) -> Self {
        Self {
            entry,
            counts_prepared: false,
        }
    }
}

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

/// An in-memory [`Store`] on [quick_cache](https://docs.rs/quick_cache)
/// (S3-FIFO eviction): entries are weighed in bytes (body, headers, key)
/// against each named cache's `max_bytes` and are never serialised — a hit
/// is a pointer clone. An entry past its `keep_until` by the store's clock
/// is dropped when a lookup finds it, skipped by key listings, and swept
/// when usage is read; until then it is the first to go when room is needed,
/// since nothing reads it.
///
/// ```
/// use cachet_core::{CacheSpec, store::{MemoryStore, Store}};
/// use cachet_core::clock::SystemClock;
/// use std::{collections::BTreeMap, sync::Arc};
///
/// let caches = BTreeMap::from([("url".to_owned(), CacheSpec::default())]);
/// let store = MemoryStore::new(&caches, Arc::new(SystemClock));
/// assert_eq!(store.usage("url").unwrap().entries, 0);
/// assert!(store.usage("nope").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    /// By name: a few names, found by comparing them (every lookup finds
    /// its cache first; hashing the name cost more than the comparisons).
    caches: Arc<BTreeMap<String, Named>>,
    clock: SharedClock,
}

/// An entry's weight: what it keeps alive on the heap (see `weight`).
#[derive(Debug, Clone)]
struct EntryWeight;

impl Weighter<Arc<str>, Slot> for EntryWeight {
    fn weight(&self, key: &Arc<str>, slot: &Slot) -> u64 {
        // Stable while the slot is held: a form is never unmade, and the
        // slot counts one only once it is made.
        let prepared = match &slot.entry {
            Entry::Response(response) if slot.counts_prepared => response.prepared_weight(),
            _ => 0,
        };
        // Never zero: quick_cache never evicts a weightless item.
        (crate::weight::key(key.len()) + slot.entry.weight() + prepared).max(1)
    }
}

/// Unindexes and counts what quick_cache evicts to make room (or refuses:
/// an entry too large for its shard). quick_cache reports a replaced value
/// here too; the store already unindexed it when it indexed its successor,
/// and counted a replacement, so it is not counted again. The values are
/// collected while the shard is locked and unindexed after, so the index's
/// locks are never taken inside the cache's.
#[derive(Debug, Clone)]
struct Evictions {
    removals: Arc<Removals>,
    index: Arc<KeyIndex>,
}

impl Lifecycle<Arc<str>, Slot> for Evictions {
    type RequestState = Vec<(Arc<str>, Entry)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, evicted: &mut Self::RequestState, key: Arc<str>, slot: Slot) {
        evicted.push((key, slot.entry));
    }

    fn end_request(&self, evicted: Self::RequestState) {
        for (key, value) in &evicted {
            if self.index.removed(key, value) {
                self.removals.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Named {
    /// Drops every value past its `keep_until` at `now`.
    fn sweep(&self, now: SystemTime) {
        let gone: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, slot)| !slot.entry.is_kept(now))
            .map(|(key, _)| key)
            .collect();
        for key in gone {
            self.expire(&key, now);
        }
    }

    /// Removes `key` if its value is still past its time at `now` (a fresh
    /// one may have replaced it meanwhile), unindexes it and counts an
    /// expiration.
    fn expire(&self, key: &str, now: SystemTime) {
        let removed = self.entries.remove_if(key, |slot| !slot.entry.is_kept(now));
        if let Some((key, slot)) = removed {
            self.index.removed(&key, &slot.entry);
            self.removals.expirations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes `key`, unindexes it and counts a removal.
    fn remove(&self, key: &str) -> Option<Entry> {
        let (key, slot) = self.entries.remove(key)?;
        self.index.removed(&key, &slot.entry);
        self.removals.explicit.fetch_add(1, Ordering::Relaxed);
        Some(slot.entry)
    }
}

/// Bytes of budget per entry of the room the table gets up front (an
/// estimate quick_cache also sizes its record of recently evicted keys by).
const BYTES_PER_ROOM: u64 = 3 * 1024;

/// The least budget a shard gets. quick_cache splits a cache's budget
/// evenly between its shards and refuses an entry larger than 97% of one
/// (as moka would one larger than the whole cache), so a small cache is one
/// shard and a large one has shards of at least this size: a body up to
/// the default `max_body` (1 MiB) many times over always fits.
const MIN_SHARD_BYTES: u64 = 16 * 1024 * 1024;

/// Shards for a cache of `max_bytes`: enough that threads rarely share one
/// lock (four per core, quick_cache's default), no more than keep each at
/// least [`MIN_SHARD_BYTES`].
fn shards(max_bytes: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let by_size = usize::try_from(max_bytes / MIN_SHARD_BYTES).unwrap_or(usize::MAX);
    by_size.clamp(1, cores * 4)
}

impl MemoryStore {
    /// A store with one cache per entry of `caches`, reading time from `clock`.
    pub fn new(caches: &BTreeMap<String, CacheSpec>, clock: SharedClock) -> Self {
        let caches = caches
            .iter()
            .map(|(name, spec)| {
                let removals = Arc::new(Removals::default());
                let index = Arc::new(KeyIndex::default());
                let room = usize::try_from(spec.max_bytes / BYTES_PER_ROOM)
                    .unwrap_or(usize::MAX)
                    .max(1);
                let options = OptionsBuilder::new()
                    .shards(shards(spec.max_bytes))
                    .estimated_items_capacity(room)
                    .weight_capacity(spec.max_bytes)
                    .build()
                    .expect("every option is set and in range");
                let evictions = Evictions {
                    removals: Arc::clone(&removals),
                    index: Arc::clone(&index),
                };
                let entries = QuickCache::with_options(
                    options,
                    EntryWeight,
                    DefaultHashBuilder::default(),
                    evictions,
                );
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
        let Some(Slot { entry, .. }) = named.entries.get(key) else {
            return Ok(None);
        };
        if entry.is_kept(now) {
            return Ok(Some(entry));
        }
        named.expire(key, now);
        Ok(None)
    }

    /// Stores `value` under `key` in `cache` (an insert never waits on I/O).
    fn put(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError> {
        let named = self.named(cache)?;
        let key: Arc<str> = Arc::from(key.as_str());
        // Indexed first: an eviction of this value, however early, finds
        // it indexed. The index knows whether the key held a value.
        if named.index.add(&key, &value) {
            named.removals.replaced.fetch_add(1, Ordering::Relaxed);
        }
        named.entries.insert(key, Slot::new(value));
        Ok(())
    }

    /// Drops every value past its `keep_until` by the store's clock, so
    /// that usage figures and the tag index are exact. Tests and stats call
    /// it; the request path does not.
    pub fn run_pending_tasks(&self) {
        let now = self.clock.now();
        for named in self.caches.values() {
            named.sweep(now);
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
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
            .filter(|(_, slot)| slot.entry.is_kept(now))
            .map(|(key, _)| CacheKey::from_raw(&*key))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        let named = self.named(cache)?;
        named.entries.clear();
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
        // Exact figures need values past their time dropped; stats are off
        // the request path, so the cost (a pass over the entries) is fine.
        named.sweep(self.clock.now());
        Some(StoreUsage {
            entries: u64::try_from(named.entries.len()).unwrap_or(u64::MAX),
            bytes: named.entries.weight(),
            evictions: named.removals.evictions.load(Ordering::Relaxed),
            expirations: named.removals.expirations.load(Ordering::Relaxed),
            removals: named.removals.explicit.load(Ordering::Relaxed),
            replacements: named.removals.replaced.load(Ordering::Relaxed),
            tagged: named.index.pairs(),
        })
    }
}

impl Immediate for MemoryStore {
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

    /// Counts `entry`'s form in the weight of `key`'s slot, if the slot
    /// still holds `entry` and the form is made; the shard weighs the slot
    /// again. A slot replaced or removed meanwhile is left as it is.
    fn count_prepared(&self, cache: &str, key: &CacheKey, entry: &Arc<CachedResponse>) {
        let Ok(named) = self.named(cache) else {
            return;
        };
        // quick_cache asks for the key in its owned form (once per entry).
        let key: Arc<str> = Arc::from(key.as_str());
        // Never waits: a key being loaded holds no entry to count.
        let _ = named.entries.entry(&key, Some(Duration::ZERO), |_, slot| {
            if let Entry::Response(held) = &slot.entry {
                if Arc::ptr_eq(held, entry) && entry.prepared_weight() > 0 {
                    slot.counts_prepared = true;
                    entry.mark_prepared_counted();
                }
            }
            EntryAction::Retain(())
        });
    }
}

impl Walk for MemoryStore {
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
    use std::time::Duration;

    fn store(max_bytes: u64, clock: &MockClock) -> MemoryStore {
        let caches = BTreeMap::from([(
            "c".to_owned(),
            CacheSpec {
                max_bytes,
                ttl: Duration::from_secs(60),
            },
        )]);
        MemoryStore::new(&caches, Arc::new(clock.clone()))
    }

    fn entry(clock: &MockClock, body: usize, ttl: u64) -> Entry {
        Entry::from(CachedResponse::new(
            StatusCode::OK,
            &HeaderMap::new(),
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
    async fn a_prepared_form_counts_from_when_it_is_made_while_its_entry_is_held() {
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let response = |body: &'static [u8]| {
            Arc::new(
                CachedResponse::new(
                    StatusCode::OK,
                    &headers,
                    Bytes::from_static(body),
                    crate::clock::Clock::now(&clock),
                    Duration::from_secs(60),
                )
                .with_prepared_room(true),
            )
        };
        let held = response(b"one");
        let bare = crate::weight::key(key("/a").as_str().len()) + held.weight();
        store
            .insert("c", &key("/a"), Entry::Response(Arc::clone(&held)))
            .await
            .unwrap();
        let bytes = || store.usage("c").unwrap().bytes;
        store.count_prepared("c", &key("/a"), &held);
        assert_eq!(bytes(), bare, "no form made yet: nothing to count");
        assert!(held.prepared_uncounted());
        assert!(held.prepared(|| 7_u8).is_some());
        store.count_prepared("c", &key("/a"), &held);
        assert!(!held.prepared_uncounted());
        let form = held.prepared_weight();
        assert!(form > 0);
        assert_eq!(bytes(), bare + form);
        store.count_prepared("c", &key("/a"), &held);
        assert_eq!(bytes(), bare + form, "counted once");
        // A form made on an entry the key no longer holds is not counted
        // against its successor; the successor's weight is its own.
        let successor = response(b"two");
        store
            .insert("c", &key("/a"), Entry::Response(Arc::clone(&successor)))
            .await
            .unwrap();
        assert_eq!(bytes(), bare);
        store.count_prepared("c", &key("/a"), &held);
        assert_eq!(bytes(), bare);
        // Nor against a key that holds nothing.
        let stray = response(b"three");
        assert!(stray.prepared(|| 7_u8).is_some());
        store.count_prepared("c", &key("/b"), &stray);
        assert_eq!(store.usage("c").unwrap().entries, 1);
        // What the store added for a form, it takes away with the entry.
        assert!(successor.prepared(|| 7_u8).is_some());
        store.count_prepared("c", &key("/a"), &successor);
        assert_eq!(bytes(), bare + form);
        assert!(store.remove("c", &key("/a")).await.unwrap());
        assert_eq!(bytes(), 0);
    }

    /// First hits counting forms race inserts, replacements and removals of
    /// the same keys: whatever the interleaving, the store takes away the
    /// weight it added (a mismatch would underflow quick_cache's totals,
    /// which overflow-checks in this build) and ends at zero.
    #[test]
    fn counting_forms_while_keys_are_replaced_and_removed_keeps_the_weights_exact() {
        let clock = MockClock::new();
        let store = store(1 << 30, &clock);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let now = crate::clock::Clock::now(&clock);
        std::thread::scope(|threads| {
            for thread in 0..4_u64 {
                let (store, headers) = (&store, &headers);
                threads.spawn(move || {
                    for n in 0..2_000_u64 {
                        let key = key(&format!("/k{}", (n * 7 + thread) % 8));
                        let response = Arc::new(
                            CachedResponse::new(
                                StatusCode::OK,
                                headers,
                                Bytes::from(vec![b'x'; (n % 5) as usize]),
                                now,
                                Duration::from_secs(60),
                            )
                            .with_prepared_room(true),
                        );
                        store
                            .put("c", &key, Entry::Response(Arc::clone(&response)))
                            .unwrap();
                        if n % 3 != 0 {
                            assert!(response.prepared(|| [0_u8; 64]).is_some());
                            store.count_prepared("c", &key, &response);
                        }
                        if n % 4 == 0 {
                            store.named("c").unwrap().remove(key.as_str());
                        }
                    }
                });
            }
        });
        for n in 0..8 {
            store
                .named("c")
                .unwrap()
                .remove(key(&format!("/k{n}")).as_str());
        }
        let usage = store.usage("c").unwrap();
        assert_eq!((usage.entries, usage.bytes), (0, 0));
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
            &HeaderMap::new(),
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
    async fn a_small_cache_is_one_shard_and_admits_an_entry_near_its_budget() {
        assert_eq!(shards(1 << 20), 1);
        assert_eq!(shards(MIN_SHARD_BYTES * 2), 2);
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        let large = entry(&clock, 900 * 1024, 60);
        store.insert("c", &key("/large"), large).await.unwrap();
        let now = crate::clock::Clock::now(&clock);
        assert!(store.get("c", &key("/large"), now).await.unwrap().is_some());
        // Larger than the budget: refused, and counted as an eviction.
        let huge = entry(&clock, 2 << 20, 60);
        store.insert("c", &key("/huge"), huge).await.unwrap();
        assert!(store.get("c", &key("/huge"), now).await.unwrap().is_none());
        let usage = store.usage("c").unwrap();
        assert_eq!((usage.entries, usage.evictions), (1, 1), "{usage:?}");
        assert!(store.keys("c").await.unwrap() == vec![key("/large")]);
    }

    #[tokio::test]
    async fn entries_nobody_reads_are_swept_when_usage_is_read() {
        let clock = MockClock::new();
        let store = store(1 << 20, &clock);
        for path in ["/a", "/b"] {
            store
                .insert("c", &key(path), entry(&clock, 10, 60))
                .await
                .unwrap();
        }
        clock.advance(Duration::from_secs(61));
        let usage = store.usage("c").unwrap();
        assert_eq!((usage.entries, usage.bytes, usage.expirations), (0, 0, 2));
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
