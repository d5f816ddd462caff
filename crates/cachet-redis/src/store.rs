//! [`RedisStore`]: the [`Store`] that puts Redis behind (or instead of) the
//! in-memory tier.

use crate::config::{Mode, RedisConfig};
use crate::layout::{self, Layout, Stored};
use crate::link::Link;
use crate::listen::Listener;
use cachet_core::clock::Clock;
use cachet_core::store::tier::{instance_id, unix_millis as millis, Purge};
use cachet_core::store::StoreError;
use cachet_core::store::{
    CachedResponse, Entry, Health, Immediate, MemoryStore, Shared, Store, StoreUsage, Swap,
    Version, Walk,
};
use cachet_core::{CacheKey, CacheSpec, ConfigError};
use redis::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// How many keys a `SCAN` step asks for.
const SCAN_COUNT: usize = 1000;

/// How often an instance waiting for another's fetch looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Deletes a lock only when it still holds the token it was taken with (a
/// lock that expired and was taken by another instance is not ours).
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Sets `KEYS[1]` to `ARGV[2]` for `ARGV[3]` ms if it still holds `ARGV[1]`
/// (empty: absent); 1 if it did.
const SWAP: &str = "local current = redis.call('get', KEYS[1]) \
    if current == false then current = '' end \
    if current ~= ARGV[1] then return 0 end \
    redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3]) \
    return 1";

/// A [`Store`] on Redis: in [`Mode::Tiered`], each instance's memory (a
/// [`MemoryStore`]) in front of one Redis all instances share; in
/// [`Mode::Shared`], Redis alone.
///
/// A failing Redis never fails a request: a lookup it cannot answer is a
/// miss, a store it cannot take stays in memory, and while it is down the
/// tier is skipped at once (the health check says degraded). Purges —
/// of a key, a tag, a pattern, a URI, a whole cache — reach every
/// instance's memory through a Redis channel, and an instance that lost the
/// channel empties its memory when it gets it back. Entries carry their own
/// absolute times, checked against the cache's clock on every read; Redis's
/// expiry only collects them.
///
/// Build one through [`install`](crate::install) (from the configuration's
/// `[redis]` section) or [`RedisStore::maker`].
#[derive(Debug)]
pub struct RedisStore {
    local: Option<MemoryStore>,
    link: Arc<Link>,
    layout: Layout,
    caches: Arc<Vec<String>>,
    clock: Arc<dyn Clock>,
    max_shared_body: u64,
    instance: u64,
    channel: String,
    /// With `distributed_lock`: the tokens of the locks this instance holds.
    locks: Option<Mutex<HashMap<(String, String), String>>>,
    tokens: AtomicU64,
    /// The runtime the connection and the channel run on, whatever runtime
    /// (if any) the application serves from.
    runtime: Option<tokio::runtime::Runtime>,
}

impl RedisStore {
    /// A store for `caches`, reading time from `clock`. Connecting starts
    /// in the background at once; the store works (from memory) before it
    /// succeeds.
    pub fn new(
        config: &RedisConfig,
        caches: &BTreeMap<String, CacheSpec>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        let link = Arc::new(Link::new(config).map_err(|error| ConfigError::Section {
            section: "redis".into(),
            field: "url".into(),
            reason: error.to_string(),
        })?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cachet-redis")
            .enable_all()
            .build()
            .map_err(|error| ConfigError::Section {
                section: "redis".into(),
                field: "url".into(),
                reason: format!("cannot start the Redis tier's runtime: {error}"),
            })?;
        let layout = Layout::new(&config.prefix);
        let names: Arc<Vec<String>> = Arc::new(caches.keys().cloned().collect());
        let local = match config.mode {
            Mode::Tiered => Some(MemoryStore::new(caches, Arc::clone(&clock))),
            Mode::Shared => None,
        };
        let instance = instance_id();
        let channel = layout.channel();
        runtime.spawn(Arc::clone(&link).keep_connected());
        if let Some(local) = &local {
            let listener = Listener {
                link: Arc::clone(&link),
                local: local.clone(),
                caches: Arc::clone(&names),
                channel: channel.clone(),
                instance,
            };
            runtime.spawn(listener.run());
        } else {
            // Nothing in memory to keep in step: the channel counts as up.
            link.listening.store(true, Ordering::Release);
        }
        Ok(Self {
            local,
            link,
            layout,
            caches: names,
            clock,
            max_shared_body: config.max_shared_body,
            instance,
            channel,
            locks: config.distributed_lock.then(Mutex::default),
            tokens: AtomicU64::new(0),
            runtime: Some(runtime),
        })
    }

    /// `config` as a step of [`CacheBuilder::store_with`](cachet_core::CacheBuilder::store_with).
    pub fn maker(
        config: RedisConfig,
    ) -> impl FnOnce(&Caches, &Arc<dyn Clock>) -> Made + Send + 'static {
        move |caches, clock| {
            Self::new(&config, caches, Arc::clone(clock))
                .map(|store| Arc::new(store) as Arc<dyn Store>)
        }
    }

    fn now_millis(&self) -> u64 {
        millis(self.clock.now())
    }

    fn known(&self, cache: &str) -> Result<(), StoreError> {
        if self.caches.iter().any(|name| name == cache) {
            Ok(())
        } else {
            Err(StoreError::new(format!("unknown cache `{cache}`")))
        }
    }

    /// Tells the other instances to drop `purge` from their memory.
    async fn publish(&self, purge: &Purge) {
        if self.local.is_none() {
            return;
        }
        let message = purge.encode(self.instance);
        let publish = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .clone();
        if let Err(error) = self.link.cmd::<i64>("PUBLISH", &publish).await {
            // The purge is done here; the others flush their memory when
            // their channel comes back, but one whose channel never broke
            // keeps what it has until it expires.
            self.link.warn(&format!(
                "a purge could not reach the other instances: {error}"
            ));
        }
    }

    /// What Redis holds for `key` of `cache`, if anything kept at `now`.
    async fn shared_get(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<Option<Entry>, StoreError> {
        let get = redis::cmd("GET")
            .arg(self.layout.entry(cache, key.as_str()))
            .clone();
        let value: Option<Vec<u8>> = self.link.cmd("GET", &get).await?;
        Ok(value.and_then(|value| self.read(&value, now)))
    }

    /// Releases `lock` if it still holds `token`.
    async fn release(&self, lock: &str, token: &str) {
        let release = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(lock)
            .arg(token)
            .clone();
        // Failing, the lock expires on its own.
        let _ = self.link.cmd::<i64>("EVAL", &release).await;
    }

    /// The entry a stored value holds, if it is one kept at `now`.
    fn read(&self, value: &[u8], now: SystemTime) -> Option<Entry> {
        let Stored::Entry(bytes) = layout::decode(value) else {
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
                self.link
                    .warn(&format!("a shared entry does not read: {error}"));
                None
            }
        }
    }

    /// The commands storing `value` under `key` (the entry, or a marker
    /// for a body too large to share, and its tags), added to `commands`;
    /// none for a value already past its time.
    fn insert_commands(
        &self,
        commands: &mut Vec<redis::Cmd>,
        cache: &str,
        key: &CacheKey,
        value: &Entry,
        now: u64,
    ) {
        let keep_until = millis(value.keep_until());
        let ttl = keep_until.saturating_sub(now);
        if ttl == 0 {
            return;
        }
        let stored = match value.response() {
            Some(response) if response.body().len() as u64 > self.max_shared_body => {
                layout::encode_local()
            }
            _ => layout::encode_entry(&value.to_bytes()),
        };
        let mut set = redis::cmd("SET");
        set.arg(self.layout.entry(cache, key.as_str()))
            .arg(stored)
            .arg("PX")
            .arg(ttl);
        commands.push(set);
        for tag in value.tags() {
            let tag_set = self.layout.tag(cache, tag);
            let mut add = redis::cmd("ZADD");
            add.arg(&tag_set).arg(keep_until).arg(key.as_str());
            commands.push(add);
            // The set lives as long as its longest-kept key (relative:
            // Redis's clock is not the cache's).
            for condition in ["NX", "GT"] {
                let mut expire = redis::cmd("PEXPIRE");
                expire.arg(&tag_set).arg(ttl).arg(condition);
                commands.push(expire);
            }
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so dropping the store is fine inside async code.
            runtime.shutdown_background();
        }
    }
}

/// The named caches a store is made for.
type Caches = BTreeMap<String, CacheSpec>;
/// A made store, or why not.
type Made = Result<Arc<dyn Store>, ConfigError>;

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<Option<Entry>, StoreError> {
        self.known(cache)?;
        if let Some(local) = &self.local {
            if let Some(entry) = local.get(cache, key, now).await? {
                return Ok(Some(entry));
            }
        }
        let entry = self.shared_get(cache, key, now).await?;
        if let (Some(local), Some(entry)) = (&self.local, &entry) {
            local.insert(cache, key, entry.clone()).await?;
        }
        Ok(entry)
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
        let mut mget = redis::cmd("MGET");
        for &i in &missing {
            mget.arg(self.layout.entry(cache, keys[i].as_str()));
        }
        let values: Vec<Option<Vec<u8>>> = self.link.cmd("MGET", &mget).await?;
        for (&i, value) in missing.iter().zip(values) {
            let Some(entry) = value.and_then(|value| self.read(&value, now)) else {
                continue;
            };
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
        let mut commands = Vec::new();
        let now = self.now_millis();
        for (key, value) in items {
            self.insert_commands(&mut commands, cache, &key, &value, now);
            if let Some(local) = &self.local {
                local.insert(cache, &key, value).await?;
            }
        }
        if commands.is_empty() {
            return Ok(());
        }
        match self.link.batch("SET", &commands).await {
            Ok(_) => Ok(()),
            // Memory holds them; the other instances fetch them themselves.
            Err(_) if self.local.is_some() => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn remove(&self, cache: &str, key: &CacheKey) -> Result<bool, StoreError> {
        self.known(cache)?;
        let mut found = match &self.local {
            Some(local) => local.remove(cache, key).await?,
            None => false,
        };
        let delete = redis::cmd("DEL")
            .arg(self.layout.entry(cache, key.as_str()))
            .clone();
        match self.link.cmd::<u64>("DEL", &delete).await {
            Ok(deleted) => found |= deleted > 0,
            Err(error) if self.local.is_none() => return Err(error),
            Err(_) => {}
        }
        self.publish(&Purge::Key {
            cache: cache.to_owned(),
            key: key.as_str().to_owned(),
        })
        .await;
        Ok(found)
    }

    async fn tagged(&self, cache: &str, tag: &str) -> Result<Vec<CacheKey>, StoreError> {
        self.known(cache)?;
        let mut keys: BTreeSet<CacheKey> = match &self.local {
            Some(local) => local.tagged(cache, tag).await?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        let now = self.now_millis();
        let set = self.layout.tag(cache, tag);
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&set)
            .arg("-inf")
            .arg(format!("({now}"))
            .ignore();
        pipe.cmd("ZRANGEBYSCORE").arg(&set).arg(now).arg("+inf");
        match self
            .link
            .pipe::<(Vec<String>,)>("ZRANGEBYSCORE", &pipe)
            .await
        {
            Ok((shared,)) => keys.extend(shared.into_iter().map(CacheKey::from_raw)),
            Err(error) if self.local.is_none() => return Err(error),
            Err(_) => {}
        }
        Ok(keys.into_iter().collect())
    }

    async fn keys(&self, cache: &str) -> Result<Vec<CacheKey>, StoreError> {
        self.known(cache)?;
        let mut keys: BTreeSet<CacheKey> = match &self.local {
            Some(local) => local.keys(cache).await?.into_iter().collect(),
            None => BTreeSet::new(),
        };
        match self
            .link
            .scan(&self.layout.entries_of(cache), SCAN_COUNT)
            .await
        {
            Ok(found) => keys.extend(
                found
                    .iter()
                    .filter_map(|redis_key| self.layout.key_of(cache, redis_key))
                    .map(CacheKey::from_raw),
            ),
            Err(error) if self.local.is_none() => return Err(error),
            Err(_) => {}
        }
        Ok(keys.into_iter().collect())
    }

    async fn clear(&self, cache: &str) -> Result<(), StoreError> {
        self.known(cache)?;
        if let Some(local) = &self.local {
            local.clear(cache).await?;
        }
        let cleared = async {
            for pattern in [self.layout.entries_of(cache), self.layout.tags_of(cache)] {
                for batch in self
                    .link
                    .scan(&pattern, SCAN_COUNT)
                    .await?
                    .chunks(SCAN_COUNT)
                {
                    let delete = redis::cmd("UNLINK").arg(batch).clone();
                    self.link.cmd::<u64>("UNLINK", &delete).await?;
                }
            }
            Ok::<(), StoreError>(())
        };
        let result = cleared.await;
        self.publish(&Purge::Clear {
            cache: cache.to_owned(),
        })
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
        match self.local {
            Some(_) => format!("memory, then Redis at {}", self.link.target()),
            None => format!("Redis at {}", self.link.target()),
        }
    }

    fn immediate(&self) -> Option<&dyn Immediate> {
        // Memory answers hits, and restores, at once.
        self.local.is_some().then_some(self as &dyn Immediate)
    }

    fn walker(&self) -> Option<&dyn Walk> {
        // A dump holds this instance's memory; Redis keeps its own.
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

#[async_trait::async_trait]
impl Swap for RedisStore {
    async fn latest(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<(Option<Entry>, Version), StoreError> {
        self.known(cache)?;
        let get = redis::cmd("GET")
            .arg(self.layout.entry(cache, key.as_str()))
            .clone();
        let value: Option<Vec<u8>> = self.link.cmd("GET", &get).await?;
        let entry = value.as_deref().and_then(|value| self.read(value, now));
        Ok((entry, Version(value.unwrap_or_default())))
    }

    async fn swap(
        &self,
        cache: &str,
        key: &CacheKey,
        version: &Version,
        value: Entry,
    ) -> Result<bool, StoreError> {
        self.known(cache)?;
        let ttl = millis(value.keep_until()).saturating_sub(self.now_millis());
        if ttl == 0 {
            // Already past its time: there is nothing to store.
            return Ok(true);
        }
        let swap = redis::cmd("EVAL")
            .arg(SWAP)
            .arg(1)
            .arg(self.layout.entry(cache, key.as_str()))
            .arg(&version.0)
            .arg(layout::encode_entry(&value.to_bytes()))
            .arg(ttl)
            .clone();
        if self.link.cmd::<i64>("EVAL", &swap).await? == 0 {
            return Ok(false);
        }
        if let Some(local) = &self.local {
            local.insert(cache, key, value).await?;
        }
        // Other instances' memory holds the value before this one.
        self.publish(&Purge::Key {
            cache: cache.to_owned(),
            key: key.as_str().to_owned(),
        })
        .await;
        Ok(true)
    }
}

impl Immediate for RedisStore {
    fn get_now(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Option<Result<Option<Entry>, StoreError>> {
        // Memory answers a hit at once; anything else asks Redis.
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
impl Health for RedisStore {
    async fn check(&self, cache: &str, now: SystemTime) -> Result<Option<String>, StoreError> {
        self.known(cache)?;
        // Memory serves (or, in shared mode, the origin does): Redis's
        // state is `degraded`, not a failing instance.
        if let Some(local) = &self.local {
            local
                .get(cache, &CacheKey::from_raw("cachet health probe"), now)
                .await?;
        }
        if let Some(why) = self.link.degraded() {
            return Ok(Some(why));
        }
        // Up as last seen: a round trip says whether it still is.
        Ok(self.link.ping().await.err().map(|error| error.to_string()))
    }
}

#[async_trait::async_trait]
impl Shared for RedisStore {
    async fn before_fetch(&self, cache: &str, key: &CacheKey, timeout: Duration) -> bool {
        let Some(locks) = &self.locks else {
            return false;
        };
        let lock = self.layout.lock(cache, key.as_str());
        let entry = self.layout.entry(cache, key.as_str());
        let token = format!(
            "{:016x}:{}",
            self.instance,
            self.tokens.fetch_add(1, Ordering::Relaxed)
        );
        let ttl = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Has it landed? If not, take the lock, unless another holds it.
            let mut exists = redis::cmd("EXISTS");
            exists.arg(&entry);
            let mut take = redis::cmd("SET");
            take.arg(&lock).arg(&token).arg("NX").arg("PX").arg(ttl);
            let replies = self.link.batch("SET NX", &[exists, take]).await;
            match replies.and_then(|replies| {
                redis::from_redis_value::<(bool, Option<String>)>(Value::Array(replies))
                    .map_err(|error| StoreError::new(format!("SET NX: {error}")))
            }) {
                Ok((true, taken)) => {
                    if taken.is_some() {
                        self.release(&lock, &token).await;
                    }
                    return true;
                }
                Ok((false, Some(_))) => {
                    locks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert((cache.to_owned(), key.as_str().to_owned()), token);
                    return false;
                }
                Ok((false, None)) => {}
                // Redis failing: each instance fetches for itself.
                Err(_) => return false,
            }
            if tokio::time::Instant::now() + LOCK_POLL >= deadline {
                return false;
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    async fn fetch_done(&self, cache: &str, key: &CacheKey) {
        let Some(locks) = &self.locks else { return };
        let token = locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(cache.to_owned(), key.as_str().to_owned()));
        if let Some(token) = token {
            self.release(&self.layout.lock(cache, key.as_str()), &token)
                .await;
        }
    }
}
