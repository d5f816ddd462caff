//! [`MemcachedStore`]: the [`Store`] that puts Memcached behind (or
//! instead of) the in-memory tier.

use crate::config::{MemcachedConfig, Mode};
use crate::layout::{self, Layout, Stored};
use crate::log::{self, Follower};
use crate::servers::{ServerId, Servers};
use crate::tier::{Recorded, Rotate, Tier};
use cachet_core::clock::Clock;
use cachet_core::store::tier::{instance_id, unix_millis, Purge};
use cachet_core::store::{
    CachedResponse, Entry, Health, Immediate, MemoryStore, Shared, Store, StoreError, StoreUsage,
    Swap, Version, Walk,
};
use cachet_core::{CacheKey, CacheSpec, ConfigError};
use futures_util::future::join_all;
use memcache::exp::{Delete, Get, Meta, MutationStatus, Set};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How often an instance waiting for another's fetch looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Memcached reads an exptime above 30 days as a date: longer-kept entries
/// leave Memcached after 30 days (and are fetched again).
const MAX_EXPTIME_SECS: u64 = 30 * 24 * 3600;

/// A [`Store`] on Memcached: in [`Mode::Tiered`], each instance's memory (a
/// [`MemoryStore`]) in front of the Memcached servers all instances share; in
/// [`Mode::Shared`], Memcached alone.
///
/// Memcached cannot list keys, find them by tag, or tell other instances of
/// a purge; this store adds each on top of it (see the crate docs): a key
/// registry and a tag index per cache, bounded in bytes, and an
/// invalidation log every instance reads every `poll_interval`.
///
/// A failing server never fails a request: a lookup it cannot answer is a
/// miss, a store it cannot take stays in memory, and `/health` says
/// degraded. Entries carry their own absolute times, checked against the
/// cache's clock on every read; Memcached's exptime only collects them.
///
/// Build one through [`install`](crate::install) (from the configuration's
/// `[memcached]` section) or [`MemcachedStore::maker`].
#[derive(Debug)]
pub struct MemcachedStore {
    local: Option<MemoryStore>,
    tier: Arc<Tier>,
    caches: Arc<Vec<String>>,
    clock: Arc<dyn Clock>,
    max_shared_body: u64,
    instance: u64,
    /// With `distributed_lock`: the tokens of the locks this instance holds.
    locks: Option<Mutex<HashMap<(String, String), u64>>>,
    tokens: AtomicU64,
    /// The runtime the servers' connections and the log's follower run on,
    /// whatever runtime (if any) the application serves from.
    runtime: Option<tokio::runtime::Runtime>,
}

impl MemcachedStore {
    /// A store for `caches`, reading time from `clock`. Connecting starts in
    /// the background at once; the store works (from memory) before it
    /// succeeds.
    pub fn new(
        config: &MemcachedConfig,
        caches: &BTreeMap<String, CacheSpec>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cachet-memcached")
            .enable_all()
            .build()
            .map_err(|error| ConfigError::Section {
                section: "memcached".into(),
                field: "servers".into(),
                reason: format!("cannot start the Memcached tier's runtime: {error}"),
            })?;
        let tier = Arc::new(Tier::new(
            Servers::new(config),
            Layout::new(&config.prefix),
            config.index_segments(),
            config.item_size_max,
        ));
        let names: Arc<Vec<String>> = Arc::new(caches.keys().cloned().collect());
        let local = match config.mode {
            Mode::Tiered => Some(MemoryStore::new(caches, Arc::clone(&clock))),
            Mode::Shared => None,
        };
        let instance = instance_id();
        let servers = Arc::clone(&tier);
        runtime.spawn(async move { servers.servers.keep_up().await });
        let follower = Follower {
            tier: Arc::clone(&tier),
            local: local.clone(),
            caches: Arc::clone(&names),
            instance,
            every: config.poll_interval,
        };
        runtime.spawn(follower.run());
        Ok(Self {
            local,
            tier,
            caches: names,
            clock,
            max_shared_body: config.max_shared_body,
            instance,
            locks: config.distributed_lock.then(Mutex::default),
            tokens: AtomicU64::new(0),
            runtime: Some(runtime),
        })
    }

    /// `config` as a step of [`CacheBuilder::store_with`](cachet_core::CacheBuilder::store_with).
    pub fn maker(
        config: MemcachedConfig,
    ) -> impl FnOnce(&Caches, &Arc<dyn Clock>) -> Made + Send + 'static {
        move |caches, clock| {
            Self::new(&config, caches, Arc::clone(clock))
                .map(|store| Arc::new(store) as Arc<dyn Store>)
        }
    }

    /// Each server's own `stats` (Memcached's counters: `curr_items`,
    /// `evictions`, `get_hits`, ...), or why they could not be read.
    pub async fn server_stats(&self) -> Vec<(String, Result<BTreeMap<String, String>, String>)> {
        let tier = Arc::clone(&self.tier);
        self.on_runtime(async move { tier.servers.stats().await })
            .await
            .unwrap_or_default()
    }

    /// What the tier detected and did: index segments found lost, anchors
    /// rotated, stores refused for a full index, memory emptied because
    /// the log could not be followed, commands failed and timed out.
    pub fn counts(&self) -> TierCounts {
        let losses = &self.tier.losses;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TierCounts {
            lost_segments: load(&losses.segments),
            rotations: load(&losses.rotations),
            full: load(&losses.full),
            flushes: load(&losses.flushes),
            errors: load(&self.tier.servers.counts.errors),
            timeouts: load(&self.tier.servers.counts.timeouts),
        }
    }

    /// Runs `work` on the tier's runtime (the client's connections belong
    /// to it), whatever runtime the caller is on.
    async fn on_runtime<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        runtime.spawn(work).await.ok()
    }

    fn now_millis(&self) -> u64 {
        unix_millis(self.clock.now())
    }

    fn known(&self, cache: &str) -> Result<(), StoreError> {
        if self.caches.iter().any(|name| name == cache) {
            Ok(())
        } else {
            Err(StoreError::new(format!("unknown cache `{cache}`")))
        }
    }

    /// Tells the other instances to drop `purge` from their memory; if it
    /// cannot, the cache's shared state is dropped once it can.
    async fn publish(&self, cache: &str, purge: Purge) {
        if self.local.is_none() {
            return;
        }
        let tier = Arc::clone(&self.tier);
        let instance = self.instance;
        let published = self
            .on_runtime(async move { log::publish(&tier, instance, &purge).await })
            .await;
        if !matches!(published, Some(Ok(()))) {
            self.tier
                .mark_dirty(cache, "the invalidation log did not answer");
        }
    }

    /// The entries Memcached holds for `keys` of `cache`, kept at `now`;
    /// an error when a server did not answer and no key was found (the
    /// engine counts it in `store_errors` and treats it as a miss).
    async fn shared_get_many(
        &self,
        cache: &str,
        keys: Vec<CacheKey>,
        now: SystemTime,
    ) -> Result<Vec<Option<Entry>>, StoreError> {
        let Some(anchor) = self.tier.anchor(cache) else {
            // Not following the log yet: nothing shared is read.
            return Ok(vec![None; keys.len()]);
        };
        let tier = Arc::clone(&self.tier);
        let items: Vec<String> = keys
            .iter()
            .map(|key| tier.layout.entry(cache, key.as_str()))
            .collect();
        let mut by_server: HashMap<ServerId, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            by_server
                .entry(tier.servers.route(item))
                .or_default()
                .push(i);
        }
        // Every server asked is down: fail here, as their commands would,
        // without the hop to the tier's runtime.
        let mut down = by_server
            .keys()
            .filter_map(|&server| tier.servers.check(server, "mg").err());
        if let Some(error) = down.next() {
            if down.count() + 1 == by_server.len() {
                return Err(error);
            }
        }
        let read = async move {
            let mut values: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
            let mut failed = None;
            let lookups = by_server.into_iter().map(|(server, indices)| {
                let gets = indices.iter().map(|&i| Get::new(&items[i])).collect();
                let tier = &tier;
                async move { (indices, tier.servers.run_many(server, "mg", gets).await) }
            });
            for (indices, answers) in join_all(lookups).await {
                match answers {
                    Ok(answers) => {
                        for (i, answer) in indices.into_iter().zip(answers) {
                            values[i] = answer.value;
                        }
                    }
                    Err(error) => failed = Some(error),
                }
            }
            (keys, values, failed)
        };
        let Some((keys, values, failed)) = self.on_runtime(read).await else {
            return Err(StoreError::new("memcached: the tier stopped"));
        };
        let found: Vec<Option<Entry>> = keys
            .iter()
            .zip(values)
            .map(|(key, value)| self.read(&value?, anchor, key.as_str(), now))
            .collect();
        match failed {
            Some(error) if found.iter().all(Option::is_none) => Err(error),
            _ => Ok(found),
        }
    }

    /// The entry a stored value holds, if it is one kept at `now`.
    fn read(&self, value: &[u8], anchor: u64, key: &str, now: SystemTime) -> Option<Entry> {
        let Stored::Entry(bytes) = layout::decode_entry(value, anchor, key) else {
            return None;
        };
        // Read for memory when this instance keeps one: hits then share
        // the entry's prepared headers.
        let entry = if self.local.is_some() {
            Entry::from_bytes_for_memory(bytes)
        } else {
            Entry::from_bytes(bytes)
        };
        match entry {
            Ok(entry) => entry.is_kept(now).then_some(entry),
            Err(error) => {
                self.tier
                    .servers
                    .warn(&format!("a shared entry does not read: {error}"));
                None
            }
        }
    }

    /// Records `items` in the cache's indexes, then writes them to their
    /// servers; whether memory may keep them.
    async fn shared_insert(&self, cache: &str, items: &[(CacheKey, Entry)]) -> bool {
        let now = self.now_millis();
        let Some(anchor) = self.tier.anchor(cache) else {
            // The log's server has not answered: memory only, emptied
            // when it does.
            return true;
        };
        let mut records = Vec::new();
        let mut writes = Vec::new();
        for (key, value) in items {
            let keep_until = unix_millis(value.keep_until());
            let ttl_ms = keep_until.saturating_sub(now);
            if ttl_ms == 0 {
                continue;
            }
            let shared = match value.response() {
                Some(response) if response.body().len() as u64 > self.max_shared_body => None,
                _ => Some(value.to_bytes()),
            };
            let tags: Vec<String> = value.tags().iter().map(|tag| tag.to_string()).collect();
            records.push((keep_until, key.as_str().to_owned(), tags));
            let exptime = ttl_ms.div_ceil(1000).min(MAX_EXPTIME_SECS);
            writes.push((
                self.tier.layout.entry(cache, key.as_str()),
                layout::encode_entry(anchor, key.as_str(), shared.as_deref()),
                u32::try_from(exptime).unwrap_or(u32::MAX),
            ));
        }
        if records.is_empty() {
            return true;
        }
        if self
            .tier
            .servers
            .check(self.tier.home, "ms append")
            .is_err()
        {
            // The indexes' server is down: nothing can be recorded (what
            // the work below would find), so memory only, as there.
            return true;
        }
        let tier = Arc::clone(&self.tier);
        let cache_name = cache.to_owned();
        let work = async move {
            let borrowed: Vec<(u64, &str, Vec<&str>)> = records
                .iter()
                .map(|(keep_until, key, tags)| {
                    (
                        *keep_until,
                        key.as_str(),
                        tags.iter().map(String::as_str).collect(),
                    )
                })
                .collect();
            let recorded = tier.record(&cache_name, anchor, &borrowed, now).await;

            if recorded == Recorded::Yes {
                let mut by_server: HashMap<ServerId, Vec<Set>> = HashMap::new();
                for (item, value, exptime) in &writes {
                    by_server
                        .entry(tier.servers.route(item))
                        .or_default()
                        .push(Set::new(item, value).ttl_raw(*exptime));
                }
                let tier = &tier;
                // A server that refuses keeps nothing: others fetch it.
                join_all(by_server.into_iter().map(|(server, sets)| async move {
                    tier.servers.run_many_raw(server, "ms", sets).await
                }))
                .await;
            }
            recorded
        };
        !matches!(self.on_runtime(work).await, Some(Recorded::Full))
    }
}

impl Drop for MemcachedStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so dropping the store is fine inside async code.
            runtime.shutdown_background();
        }
    }
}

/// What the Memcached tier detected and did ([`MemcachedStore::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TierCounts {
    /// Index segments found missing or from another anchor (evicted, or a
    /// server restarted): each rotated its cache's anchor.
    pub lost_segments: u64,
    /// Anchors rotated: clears, losses, and purges that could not reach
    /// every server.
    pub rotations: u64,
    /// Stores refused because an index segment was full.
    pub full: u64,
    /// Times this instance emptied its memory because it could not follow
    /// the invalidation log.
    pub flushes: u64,
    /// Commands that failed.
    pub errors: u64,
    /// Commands that took longer than `command_timeout`.
    pub timeouts: u64,
}

/// The named caches a store is made for.
type Caches = BTreeMap<String, CacheSpec>;
/// A made store, or why not.
type Made = Result<Arc<dyn Store>, ConfigError>;

#[async_trait::async_trait]
impl Store for MemcachedStore {
    async fn get(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<Option<Entry>, StoreError> {
        Ok(self
            .get_many(cache, std::slice::from_ref(key), now)
            .await?
            .pop()
            .flatten())
    }

    async fn get_many(
        &self,
        cache: &str,
        keys: &[CacheKey],
        now: SystemTime,
    ) -> Result<Vec<Option<Entry>>, StoreError> {
        self.known(cache)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(match &self.local {
                Some(local) => local.get(cache, key, now).await?,
                None => None,
            });
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let wanted = missing.iter().map(|&i| keys[i].clone()).collect();
        let shared = match self.shared_get_many(cache, wanted, now).await {
            Ok(shared) => shared,
            // What memory found still answers; a miss everywhere is an error.
            Err(_) if missing.len() < keys.len() => return Ok(found),
            Err(error) => return Err(error),
        };
        for (&i, entry) in missing.iter().zip(shared) {
            let Some(entry) = entry else { continue };
            if let Some(local) = &self.local {
                local.insert(cache, &keys[i], entry.clone()).await?;
            }
            found[i] = Some(entry);
        }
        Ok(found)
    }

    async fn insert(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError> {
        self.insert_many(cache, vec![(key.clone(), value)]).await
    }

    async fn insert_many(
        &self,
        cache: &str,
        items: Vec<(CacheKey, Entry)>,
    ) -> Result<(), StoreError> {
        self.known(cache)?;
        if !self.shared_insert(cache, &items).await {
            // Not findable by other instances' purges: kept nowhere.
            return Ok(());
        }
        if let Some(local) = &self.local {
            for (key, value) in items {
                local.insert(cache, &key, value).await?;
            }
        }
        Ok(())
    }

    async fn remove(&self, cache: &str, key: &CacheKey) -> Result<bool, StoreError> {
        self.known(cache)?;
        let mut found = match &self.local {
            Some(local) => local.remove(cache, key).await?,
            None => false,
        };
        let tier = Arc::clone(&self.tier);
        let item = tier.layout.entry(cache, key.as_str());
        let deleted = self
            .on_runtime(async move {
                let server = tier.servers.route(&item);
                tier.servers.run(server, "md", Delete::new(&item)).await
            })
            .await;
        match deleted {
            Some(Ok(answer)) => found |= answer.status == MutationStatus::Applied,
            // It may come back with the server: drop the cache's shared state.
            _ => self
                .tier
                .mark_dirty(cache, "a server did not answer a delete"),
        }
        self.publish(
            cache,
            Purge::Key {
                cache: cache.to_owned(),
                key: key.as_str().to_owned(),
            },
        )
        .await;
        Ok(found)
    }

    async fn tagged(&self, cache: &str, tag: &str) -> Result<Vec<CacheKey>, StoreError> {
        self.known(cache)?;
        let mut keys: BTreeSet<CacheKey> = match &self.local {
            Some(local) => local.tagged(cache, tag).await?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        let tier = Arc::clone(&self.tier);
        let (cache_name, tag_name, now) = (cache.to_owned(), tag.to_owned(), self.now_millis());
        let shared = self
            .on_runtime(async move { tier.tagged(&cache_name, &tag_name, now).await })
            .await
            .unwrap_or_else(|| Err(StoreError::new("memcached: the tier stopped")));
        match shared {
            Ok(shared) => keys.extend(shared.into_iter().map(CacheKey::from_raw)),
            Err(error) if self.local.is_none() => return Err(error),
            // A purge by this tag would miss what Memcached holds.
            Err(_) => self.tier.mark_dirty(cache, "the tag index did not answer"),
        }
        Ok(keys.into_iter().collect())
    }

    async fn keys(&self, cache: &str) -> Result<Vec<CacheKey>, StoreError> {
        self.known(cache)?;
        let mut keys: BTreeSet<CacheKey> = match &self.local {
            Some(local) => local.keys(cache).await?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        let tier = Arc::clone(&self.tier);
        let (cache_name, now) = (cache.to_owned(), self.now_millis());
        let shared = self
            .on_runtime(async move {
                let registered = tier.registered(&cache_name, now).await?;
                let names: Vec<&str> = registered.iter().map(String::as_str).collect();
                let alive = tier.alive(&cache_name, &names).await;
                Ok::<_, StoreError>(
                    registered
                        .into_iter()
                        .zip(alive)
                        .filter_map(|(key, alive)| alive.then_some(key))
                        .collect::<Vec<_>>(),
                )
            })
            .await
            .unwrap_or_else(|| Err(StoreError::new("memcached: the tier stopped")));
        match shared {
            Ok(shared) => keys.extend(shared.into_iter().map(CacheKey::from_raw)),
            Err(error) if self.local.is_none() => return Err(error),
            // A pattern purge would miss what Memcached holds.
            Err(_) => self
                .tier
                .mark_dirty(cache, "the key registry did not answer"),
        }
        Ok(keys.into_iter().collect())
    }

    async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        self.known(cache)?;
        if let Some(local) = &self.local {
            local.clear(cache).await?;
        }
        let tier = Arc::clone(&self.tier);
        let cache_name = cache.to_owned();
        let rotated = self
            .on_runtime(async move { tier.rotate(&cache_name, Rotate::Any).await })
            .await;
        let result = match rotated {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(error),
            None => Err(StoreError::new("memcached: the tier stopped")),
        };
        if result.is_err() {
            self.tier
                .mark_dirty(cache, "the anchor could not be replaced");
        }
        self.publish(
            cache,
            Purge::Clear {
                cache: cache.to_owned(),
            },
        )
        .await;
        match result {
            Err(error) if self.local.is_none() => Err(error),
            _ => Ok(()),
        }
    }

    fn usage(&self, cache: &str) -> Option<StoreUsage> {
        match &self.local {
            Some(local) => local.usage(cache),
            None => self
                .caches
                .iter()
                .any(|name| name == cache)
                .then(StoreUsage::default),
        }
    }

    fn describe(&self) -> String {
        let servers: Vec<&str> = self.tier.servers.addresses().collect();
        match self.local {
            Some(_) => format!("memory, then Memcached at {}", servers.join(", ")),
            None => format!("Memcached at {}", servers.join(", ")),
        }
    }

    fn immediate(&self) -> Option<&dyn Immediate> {
        // Memory answers hits, and restores, at once.
        self.local.is_some().then_some(self as &dyn Immediate)
    }

    fn walker(&self) -> Option<&dyn Walk> {
        // A dump holds this instance's memory; Memcached keeps its own.
        self.local.as_ref().map(|local| local as &dyn Walk)
    }

    fn health(&self) -> Option<&dyn Health> {
        Some(self)
    }

    fn shared(&self) -> Option<&dyn Shared> {
        Some(self)
    }

    fn swap(&self) -> Option<&dyn Swap> {
        Some(self)
    }
}

impl Immediate for MemcachedStore {
    fn get_now(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Option<Result<Option<Entry>, StoreError>> {
        // Memory answers a hit at once; anything else asks Memcached.
        match self.local.as_ref()?.get_now(cache, key, now)? {
            Ok(Some(entry)) => Some(Ok(Some(entry))),
            Ok(None) | Err(_) => None,
        }
    }

    fn insert_now(
        &self,
        cache: &str,
        key: &CacheKey,
        value: Entry,
    ) -> Option<Result<(), StoreError>> {
        // A restored dump fills this instance's memory only.
        self.local.as_ref()?.insert_now(cache, key, value)
    }

    fn count_prepared(&self, cache: &str, key: &CacheKey, entry: &Arc<CachedResponse>) {
        // Hits are answered from memory, which holds the weights.
        if let Some(local) = &self.local {
            local.count_prepared(cache, key, entry);
        }
    }
}

#[async_trait::async_trait]
impl Health for MemcachedStore {
    async fn check(&self, cache: &str, now: SystemTime) -> Result<Option<String>, StoreError> {
        self.known(cache)?;
        // Memory serves (or, in shared mode, the origin does): Memcached's
        // state is `degraded`, not a failing instance.
        if let Some(local) = &self.local {
            local
                .get(cache, &CacheKey::from_raw("cachet health probe"), now)
                .await?;
        }
        let mut problems: Vec<String> = self.tier.servers.degraded().into_iter().collect();
        if !self.tier.following.load(Ordering::Acquire) {
            let why = self
                .tier
                .log_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            problems.push(format!(
                "memcached: the invalidation log is not followed: {why}"
            ));
        }
        if !problems.is_empty() {
            return Ok(Some(problems.join("; ")));
        }
        let tier = Arc::clone(&self.tier);
        let pinged = self
            .on_runtime(async move { tier.servers.ping().await })
            .await;
        Ok(match pinged {
            Some(Ok(())) => None,
            Some(Err(error)) => Some(error.to_string()),
            None => Some("memcached: the tier stopped".into()),
        })
    }
}

#[async_trait::async_trait]
impl Swap for MemcachedStore {
    async fn latest(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<(Option<Entry>, Version), StoreError> {
        self.known(cache)?;
        let anchor = self
            .tier
            .anchor(cache)
            .ok_or_else(|| StoreError::new("memcached: the log's server has not answered yet"))?;
        let tier = Arc::clone(&self.tier);
        let item = tier.layout.entry(cache, key.as_str());
        let answer = self
            .on_runtime(async move {
                let server = tier.servers.route(&item);
                tier.servers
                    .run(server, "mg", Get::new(&item).meta(Meta::NONE.cas()))
                    .await
            })
            .await
            .unwrap_or_else(|| Err(StoreError::new("memcached: the tier stopped")))?;
        let entry = answer
            .value
            .as_deref()
            .and_then(|value| self.read(value, anchor, key.as_str(), now));
        // The CAS of what is there, whatever it holds; empty: nothing.
        let version = match (answer.value, answer.item.cas) {
            (Some(_), Some(cas)) => cas.to_le_bytes().to_vec(),
            _ => Vec::new(),
        };
        Ok((entry, Version(version)))
    }

    async fn swap(
        &self,
        cache: &str,
        key: &CacheKey,
        version: &Version,
        value: Entry,
    ) -> Result<bool, StoreError> {
        self.known(cache)?;
        let now = self.now_millis();
        let keep_until = unix_millis(value.keep_until());
        if keep_until <= now {
            // Already past its time: there is nothing to store.
            return Ok(true);
        }
        let anchor = self
            .tier
            .anchor(cache)
            .ok_or_else(|| StoreError::new("memcached: the log's server has not answered yet"))?;
        let tier = Arc::clone(&self.tier);
        let (cache_name, key_name) = (cache.to_owned(), key.as_str().to_owned());
        let bytes = layout::encode_entry(anchor, key.as_str(), Some(&value.to_bytes()));
        let tags: Vec<String> = value.tags().iter().map(|tag| tag.to_string()).collect();
        let exptime = u32::try_from((keep_until - now).div_ceil(1000).min(MAX_EXPTIME_SECS))
            .unwrap_or(u32::MAX);
        let cas = <[u8; 8]>::try_from(version.0.as_slice())
            .ok()
            .map(u64::from_le_bytes);
        let swapped = self
            .on_runtime(async move {
                let tag_names = tags.iter().map(String::as_str).collect();
                match tier
                    .record(
                        &cache_name,
                        anchor,
                        &[(keep_until, &key_name, tag_names)],
                        now,
                    )
                    .await
                {
                    Recorded::Yes => {}
                    _ => {
                        return Err(StoreError::new(
                            "memcached: the key registry did not take the key",
                        ))
                    }
                }
                let item = tier.layout.entry(&cache_name, &key_name);
                let set = Set::new(&item, bytes).ttl_raw(exptime);
                let set = match cas {
                    Some(cas) => set.compare_cas(cas),
                    None => set.add(),
                };
                let server = tier.servers.route(&item);
                Ok(
                    tier.servers.run(server, "ms cas", set).await?.status
                        == MutationStatus::Applied,
                )
            })
            .await
            .unwrap_or_else(|| Err(StoreError::new("memcached: the tier stopped")))?;
        if !swapped {
            return Ok(false);
        }
        if let Some(local) = &self.local {
            local.insert(cache, key, value).await?;
        }
        // Other instances' memory holds the value before this one.
        self.publish(
            cache,
            Purge::Key {
                cache: cache.to_owned(),
                key: key.as_str().to_owned(),
            },
        )
        .await;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl Shared for MemcachedStore {
    async fn before_fetch(&self, cache: &str, key: &CacheKey, timeout: Duration) -> bool {
        let Some(locks) = &self.locks else {
            return false;
        };
        let token = (self.instance << 20) ^ self.tokens.fetch_add(1, Ordering::Relaxed);
        let tier = Arc::clone(&self.tier);
        let (lock, entry) = (
            tier.layout.lock(cache, key.as_str()),
            tier.layout.entry(cache, key.as_str()),
        );
        let exptime = u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX);
        let waited = self
            .on_runtime(async move {
                let deadline = tokio::time::Instant::now() + timeout;
                loop {
                    // Has it landed? If not, take the lock, unless another holds it.
                    let landed = tier.servers.run(
                        tier.servers.route(&entry),
                        "mg",
                        Get::new(&entry).without_value(),
                    );
                    let take = tier.servers.run(
                        tier.servers.route(&lock),
                        "ms lock",
                        Set::new(&lock, token.to_le_bytes()).ttl_raw(exptime).add(),
                    );
                    match futures_util::join!(landed, take) {
                        (Ok(landed), taken) if landed.hit() => {
                            if taken.is_ok_and(|taken| taken.status == MutationStatus::Applied) {
                                release(&tier, &lock, token).await;
                            }
                            return Some(true);
                        }
                        (Ok(_), Ok(taken)) if taken.status == MutationStatus::Applied => {
                            return Some(false)
                        }
                        (Ok(_), Ok(_)) => {}
                        // Memcached failing: each instance fetches for itself.
                        _ => return None,
                    }
                    if tokio::time::Instant::now() + LOCK_POLL >= deadline {
                        return None;
                    }
                    tokio::time::sleep(LOCK_POLL).await;
                }
            })
            .await
            .flatten();
        match waited {
            Some(true) => true,
            Some(false) => {
                locks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((cache.to_owned(), key.as_str().to_owned()), token);
                false
            }
            None => false,
        }
    }

    async fn fetch_done(&self, cache: &str, key: &CacheKey) {
        let Some(locks) = &self.locks else { return };
        let token = locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(cache.to_owned(), key.as_str().to_owned()));
        if let Some(token) = token {
            let tier = Arc::clone(&self.tier);
            let lock = tier.layout.lock(cache, key.as_str());
            self.on_runtime(async move { release(&tier, &lock, token).await })
                .await;
        }
    }
}

/// Deletes `lock` if it still holds `token` (a lock that expired and was
/// taken by another instance is not ours); failing, it expires on its own.
async fn release(tier: &Tier, lock: &str, token: u64) {
    let server = tier.servers.route(lock);
    let Ok(current) = tier
        .servers
        .run(server, "mg lock", Get::new(lock).meta(Meta::NONE.cas()))
        .await
    else {
        return;
    };
    if current.value.as_deref() == Some(&token.to_le_bytes()[..]) {
        if let Some(cas) = current.item.cas {
            let _ = tier
                .servers
                .run(server, "md lock", Delete::new(lock).compare_cas(cas))
                .await;
        }
    }
}
