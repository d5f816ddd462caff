//! Where entries live: the [`Store`] trait and the in-memory [`MokaStore`].
//!
//! A store holds several named caches, each with its own byte budget. It
//! drops entries once they expire by the cache's [`Clock`](crate::Clock) and
//! reports its usage, evictions and expirations for the stats.

pub(crate) mod entry;
mod error;
pub(crate) mod key;
mod key_index;
mod moka;
pub(crate) mod wire;

pub use self::entry::{CachedResponse, Entry, Tags, ValueEntry, VariantIndex};
pub use self::error::StoreError;
pub use self::key::CacheKey;
pub use self::moka::MokaStore;

use std::fmt;
use std::time::{Duration, SystemTime};

/// Storage for cached responses, organised in named caches.
///
/// Implementations must be cheap to share (`Arc<dyn Store>`) and must never
/// return a value past its [`Entry::keep_until`] (at the `now` given to
/// `get`, or by their clock for `keys`); stale responses within it are
/// returned, and the cache decides what to do with them. Errors are
/// reported, not panicked: the cache turns them into a pass-through to the
/// origin.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The value under `key` in `cache`, if there is one still kept at `now`.
    async fn get(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<Option<Entry>, StoreError>;
    /// The same as [`get`](Self::get) for a store that can answer without
    /// waiting (an in-memory one), or `None` to say "call `get`". Adapters
    /// use it to answer a hit without allocating a future.
    fn get_now(
        &self,
        _cache: &str,
        _key: &CacheKey,
        _now: SystemTime,
    ) -> Option<Result<Option<Entry>, StoreError>> {
        None
    }
    /// The values under `keys` in `cache` still kept at `now`, in the
    /// order of `keys` (`None` where there is none). A remote store answers
    /// in one round trip; the default asks [`get`](Self::get) for each.
    async fn get_many(
        &self,
        cache: &str,
        keys: &[CacheKey],
        now: SystemTime,
    ) -> Result<Vec<Option<Entry>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(self.get(cache, key, now).await?);
        }
        Ok(found)
    }
    /// Stores `value` under `key` in `cache`, replacing any previous one.
    async fn insert(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError>;
    /// Stores every `(key, value)` of `items` in `cache`. A remote store
    /// sends them in one round trip; the default inserts them one by one.
    async fn insert_many(
        &self,
        cache: &str,
        items: Vec<(CacheKey, Entry)>,
    ) -> Result<(), StoreError> {
        for (key, value) in items {
            self.insert(cache, &key, value).await?;
        }
        Ok(())
    }
    /// The same as [`insert`](Self::insert) for a store that can store
    /// without waiting, or `None`: restoring a dump uses it.
    fn insert_now(
        &self,
        _cache: &str,
        _key: &CacheKey,
        _value: Entry,
    ) -> Option<Result<(), StoreError>> {
        None
    }
    /// Calls `visit` with each value still kept in `cache` that falls in
    /// `part`, without collecting them (values stored or removed meanwhile
    /// may or may not be seen), until it returns `false`; `None` for a
    /// store that cannot walk its values in place. Dumps use it, walking
    /// the parts of a cache on several threads at once.
    fn walk(
        &self,
        _cache: &str,
        _part: WalkPart,
        _visit: &mut dyn FnMut(&str, &Entry) -> bool,
    ) -> Option<Result<(), StoreError>> {
        None
    }
    /// Removes `key` from `cache`; whether it was there.
    async fn remove(&self, cache: &str, key: &CacheKey) -> Result<bool, StoreError>;
    /// The keys of the values in `cache` indexed under `tag` (see
    /// [`Entry::tags`]). Stores keep an index so that this touches only
    /// tagged values, and drop a key from it when its value goes.
    async fn tagged(&self, cache: &str, tag: &str) -> Result<Vec<CacheKey>, StoreError>;
    /// The keys of the values still kept in `cache`.
    async fn keys(&self, cache: &str) -> Result<Vec<CacheKey>, StoreError>;
    /// Removes every entry of `cache`.
    async fn clear(&self, cache: &str) -> Result<(), StoreError>;
    /// Current usage of `cache`, or `None` for an unknown cache.
    fn usage(&self, cache: &str) -> Option<StoreUsage>;
    /// A remote tier this store is serving without (a lost connection to a
    /// shared store), and why: the health check reports it as degraded,
    /// since the instance still serves from its local tier. `None` (the
    /// default) when every tier works.
    fn degraded(&self) -> Option<String> {
        None
    }
    /// Called, for a store that [`is_shared`](Self::is_shared), before this
    /// instance asks the origin for `key` on a cold miss (its own requests
    /// for the key already wait behind this one). The store may wait, at most `timeout`, while another
    /// instance fetches the same key: `true` when an entry for it was stored
    /// meanwhile (the cache then looks again), `false` to fetch. The default
    /// fetches at once. Every call is followed by
    /// [`fetch_done`](Self::fetch_done) when the fetch is over.
    async fn before_fetch(&self, _cache: &str, _key: &CacheKey, _timeout: Duration) -> bool {
        false
    }
    /// This instance's fetch of `key`, announced by
    /// [`before_fetch`](Self::before_fetch), is over (stored or not).
    async fn fetch_done(&self, _cache: &str, _key: &CacheKey) {}
    /// Checks that `cache` answers, as `/health` does: an error there
    /// fails the check (503). The default reads a key never stored; a
    /// tiered store checks the tier it serves from, and reports a remote
    /// tier that fails through [`degraded`](Self::degraded) instead.
    async fn probe(&self, cache: &str, now: SystemTime) -> Result<(), StoreError> {
        let key = CacheKey::from_raw("cachet health probe");
        self.get(cache, &key, now).await.map(drop)
    }
    /// Checks, now and with a round trip to every tier, that `cache`
    /// answers (a Redis cache manager's `ping`): unlike
    /// [`probe`](Self::probe), a remote tier that fails is an error here.
    /// The default is [`probe`](Self::probe).
    async fn ping(&self, cache: &str, now: SystemTime) -> Result<(), StoreError> {
        self.probe(cache, now).await
    }
    /// What this store is and where it keeps entries, for operators
    /// (`"memory"`, `"memory, then Redis at redis://10.0.0.5:6379/0"`).
    fn describe(&self) -> String {
        "a custom store".into()
    }
    /// Whether other instances read what this store holds (a shared Redis
    /// tier): keys that hash users then need the same identity secret on
    /// every instance, which [`CacheBuilder::build`](crate::CacheBuilder::build)
    /// checks. `false` by default.
    fn is_shared(&self) -> bool {
        false
    }
}

/// One of `count` disjoint parts of a cache, so that several threads can
/// walk it at once: every value falls in exactly one part, as the store
/// splits them.
///
/// ```
/// use cachet_core::store::WalkPart;
///
/// let parts: Vec<WalkPart> = WalkPart::split(4).collect();
/// assert_eq!(parts.len(), 4);
/// assert!(parts[1].holds(5) && !parts[1].holds(6));
/// assert!(WalkPart::WHOLE.holds(6));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkPart {
    index: usize,
    count: usize,
}

impl WalkPart {
    /// The whole cache, in one part.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// The parts `0..count` of a walk split `count` ways (at least one).
    pub fn split(count: usize) -> impl Iterator<Item = Self> {
        let count = count.max(1);
        (0..count).map(move |index| Self { index, count })
    }

    /// Whether the store's `n`-th subdivision (a shard, a bucket) belongs
    /// to this part.
    pub fn holds(self, n: usize) -> bool {
        n % self.count == self.index
    }
}

/// What a named cache holds and has dropped. A store outside this crate
/// starts from `StoreUsage::default()` and sets the fields it tracks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreUsage {
    /// Live entries.
    pub entries: u64,
    /// Bytes held, as weighed against `max_bytes`.
    pub bytes: u64,
    /// Entries dropped to stay within `max_bytes`.
    pub evictions: u64,
    /// Entries dropped because their TTL ran out.
    pub expirations: u64,
    /// Entries deleted on purpose (a purge, an invalidation, a delete).
    pub removals: u64,
    /// Entries replaced by a newer response for their key.
    pub replacements: u64,
    /// (tag, key) pairs in the tag index.
    pub tagged: u64,
}

/// The error for a cache name the store does not know.
pub(crate) fn unknown_cache(name: &str) -> StoreError {
    StoreError::new(format!("unknown cache `{name}`"))
}
