//! The capabilities a [`Store`](super::Store) may have besides its data:
//! each a trait of its own, returned by the store's `immediate()`,
//! `walker()`, `health()`, `shared()` or `swap()` when it has it.

use super::entry::CachedResponse;
use super::{CacheKey, Entry, StoreError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A store that can answer without waiting (an in-memory one, or the
/// in-memory tier of a tiered one). Adapters use it to answer a hit without
/// allocating a future; restoring a dump uses it to insert.
pub trait Immediate: Send + Sync {
    /// The value under `key` in `cache` still kept at `now`, or `None` to
    /// say "call [`Store::get`](super::Store::get)" (a tiered store whose
    /// memory does not have it).
    fn get_now(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Option<Result<Option<Entry>, StoreError>>;
    /// Stores `value` under `key` in `cache` now, or `None` when only
    /// [`Store::insert`](super::Store::insert) can.
    fn insert_now(
        &self,
        cache: &str,
        key: &CacheKey,
        value: Entry,
    ) -> Option<Result<(), StoreError>>;
    /// `entry`, which a hit found under `key` in `cache` (in this store's
    /// memory), has made its prepared form (see `Answer::prepared`): a
    /// store that weighs what it holds counts the form from now on, if the
    /// key still holds `entry`. The default counts nothing, for a store
    /// that keeps no weights of its own.
    fn count_prepared(&self, cache: &str, key: &CacheKey, entry: &Arc<CachedResponse>) {
        let _ = (cache, key, entry);
    }
}

/// A store that can walk its values in place, without collecting them:
/// dumps use it, walking the parts of a cache on several threads at once.
pub trait Walk: Send + Sync {
    /// Calls `visit` with each value still kept in `cache` that falls in
    /// `part` (values stored or removed meanwhile may or may not be seen),
    /// until it returns `false`.
    fn walk(
        &self,
        cache: &str,
        part: WalkPart,
        visit: &mut dyn FnMut(&str, &Entry) -> bool,
    ) -> Result<(), StoreError>;
}

/// A store with tiers that can fail on their own (a remote tier behind an
/// in-memory one).
#[async_trait::async_trait]
pub trait Health: Send + Sync {
    /// Checks `cache` as `/health` does: `Err` when the tier it is served
    /// from fails (requests then go to the origin: 503), `Ok(Some(why))`
    /// when it is served while another tier fails (`degraded`), `Ok(None)`
    /// when every tier answers.
    async fn check(&self, cache: &str, now: SystemTime) -> Result<Option<String>, StoreError>;
}

/// A store other instances read too (a shared Redis tier): keys that hash
/// users then need the same identity secret on every instance, which
/// [`CacheBuilder::build`](crate::CacheBuilder::build) checks. It may also
/// coordinate fetches between instances; by default it does not.
#[async_trait::async_trait]
pub trait Shared: Send + Sync {
    /// Called before this instance asks the origin for `key` on a cold miss
    /// (its own requests for the key already wait behind this one). The
    /// store may wait, at most `timeout`, while another instance fetches the
    /// same key: `true` when an entry for it was stored meanwhile (the cache
    /// then looks again), `false` to fetch. The default fetches at once.
    /// Every call is followed by [`fetch_done`](Self::fetch_done).
    async fn before_fetch(&self, _cache: &str, _key: &CacheKey, _timeout: Duration) -> bool {
        false
    }
    /// This instance's fetch of `key`, announced by
    /// [`before_fetch`](Self::before_fetch), is over (stored or not).
    async fn fetch_done(&self, _cache: &str, _key: &CacheKey) {}
}

/// A store other instances write too that can replace an entry only if it
/// is still the one read (a compare-and-swap): counters
/// ([`ValueCache::incr`](crate::values::ValueCache::incr)) are exact across
/// instances with it. An in-memory store needs none: its counters are
/// exact under the value cache's per-key lock.
#[async_trait::async_trait]
pub trait Swap: Send + Sync {
    /// The entry under `key` in `cache` as every instance sees it (the
    /// shared tier's, never a local copy), if one is kept at `now`, and the
    /// version [`swap`](Self::swap) compares against (an absent entry has
    /// one too).
    async fn latest(
        &self,
        cache: &str,
        key: &CacheKey,
        now: SystemTime,
    ) -> Result<(Option<Entry>, Version), StoreError>;
    /// Stores `value` under `key` if what is there is still `version`;
    /// whether it did. Other instances' copies of the key are dropped.
    async fn swap(
        &self,
        cache: &str,
        key: &CacheKey,
        version: &Version,
        value: Entry,
    ) -> Result<bool, StoreError>;
}

/// What a [`Swap`] store read, to compare against when it writes: opaque to
/// the cache (the stored bytes, for a Redis tier).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Version(pub Vec<u8>);

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
