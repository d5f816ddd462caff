//! Where entries live: the [`Store`] trait and the in-memory [`MemoryStore`].
//!
//! A store holds several named caches, each with its own byte budget. It
//! drops entries once they expire by the cache's [`Clock`](crate::clock::Clock) and
//! reports its usage, evictions and expirations for the stats.
//!
//! # Capabilities
//!
//! [`Store`] is the data and its indexes: seven required methods (`get`,
//! `insert`, `remove`, `clear`, `tagged`, `keys`, `usage`), two batched
//! ones with defaults (`get_many`, `insert_many`) and `describe`. What only
//! some stores have is a trait of its own, returned by a `Store` method
//! that is `None` by default:
//!
//! | capability | `Store` method | what it gives |
//! |---|---|---|
//! | [`Immediate`] | `immediate()` | answers and restores without awaiting (in-memory stores): hits allocate no future |
//! | [`Walk`] | `walker()` | walks entries in place, in parts on several threads: dumps |
//! | [`Health`] | `health()` | tiers that fail on their own (a remote one): `/health` says `degraded` |
//! | [`Shared`] | `shared()` | other instances read it: identity secrets must match; an optional fetch lock across instances |
//! | [`Swap`] | `swap()` | other instances write it: replace an entry only if unchanged, so counters stay exact across instances |

mod capabilities;
pub(crate) mod entry;
mod error;
mod key_index;
mod memory;
mod spec;
pub mod tier;
pub(crate) mod wire;

pub use self::capabilities::{Health, Immediate, Shared, Swap, Version, Walk, WalkPart};
pub use self::entry::{CachedResponse, Entry, Tags, ValueEntry, VariantIndex};
pub use self::error::StoreError;
pub use self::memory::MemoryStore;
pub use self::spec::CacheSpec;
pub use crate::key::CacheKey;

use std::fmt;
use std::time::SystemTime;

/// Storage for cached responses, organised in named caches: the data and
/// its indexes. What only some stores have — answering without awaiting,
/// walking entries in place for dumps, tiers whose health can fail, being
/// shared with other instances — are separate [capabilities](self#capabilities),
/// each reached through a method that returns `None` unless the store has
/// it: a store implements the seven required methods and the capabilities
/// it has.
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
    /// Stores `value` under `key` in `cache`, replacing any previous one.
    async fn insert(&self, cache: &str, key: &CacheKey, value: Entry) -> Result<(), StoreError>;
    /// Removes `key` from `cache`; whether it was there.
    async fn remove(&self, cache: &str, key: &CacheKey) -> Result<bool, StoreError>;
    /// Removes every entry of `cache`.
    async fn clear(&self, cache: &str) -> Result<(), StoreError>;
    /// The keys of the values in `cache` indexed under `tag` (see
    /// [`Entry::tags`]). Stores keep an index so that this touches only
    /// tagged values, and drop a key from it when its value goes.
    async fn tagged(&self, cache: &str, tag: &str) -> Result<Vec<CacheKey>, StoreError>;
    /// The keys of the values still kept in `cache`.
    async fn keys(&self, cache: &str) -> Result<Vec<CacheKey>, StoreError>;
    /// Current usage of `cache`, or `None` for an unknown cache.
    fn usage(&self, cache: &str) -> Option<StoreUsage>;

    /// The values under `keys` in `cache` still kept at `now`, in the
    /// order of `keys` (`None` where there is none). A remote store
    /// answers in one round trip; the default asks [`get`](Self::get) for each.
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
    /// What this store is and where it keeps entries, for operators
    /// (`"memory"`, `"memory, then Redis at redis://10.0.0.5:6379/0"`).
    fn describe(&self) -> String {
        "a custom store".into()
    }

    /// Answering (and restoring) without awaiting, if the store can.
    fn immediate(&self) -> Option<&dyn Immediate> {
        None
    }
    /// Walking its entries in place, for dumps, if the store can.
    fn walker(&self) -> Option<&dyn Walk> {
        None
    }
    /// Tiers whose health the store reports, if it has any that can fail
    /// on their own; without, `/health` reads a key never stored.
    fn health(&self) -> Option<&dyn Health> {
        None
    }
    /// Being read by other instances (a shared tier), if it is.
    fn shared(&self) -> Option<&dyn Shared> {
        None
    }
    /// Replacing an entry only if it is unchanged, if the store is written
    /// by other instances too (a shared tier) and can.
    fn swap(&self) -> Option<&dyn Swap> {
        None
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

/// How `cache` is, as `/health` checks it ([`Health::check`]); a store
/// without tiers of its own is checked with a read of a key never stored.
pub(crate) async fn check_health(
    store: &dyn Store,
    cache: &str,
    now: SystemTime,
) -> Result<Option<String>, StoreError> {
    match store.health() {
        Some(health) => health.check(cache, now).await,
        None => {
            let key = CacheKey::from_raw("cachet health probe");
            store.get(cache, &key, now).await.map(|_| None)
        }
    }
}

/// The error for a cache name the store does not know.
pub(crate) fn unknown_cache(name: &str) -> StoreError {
    StoreError::new(format!("unknown cache `{name}`"))
}
