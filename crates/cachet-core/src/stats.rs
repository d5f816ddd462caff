//! Hit/miss statistics per named cache, as one serializable snapshot.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the request path moves for one named cache.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) inserts: AtomicU64,
    pub(crate) not_stored: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) refreshes: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The state of every named cache at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Seconds since the cache was built.
    pub uptime_secs: u64,
    /// Each named cache's figures, by name.
    pub caches: BTreeMap<String, CacheStats>,
    /// Heap the cache holds outside the named caches' budgets, estimated:
    /// fetches in flight and hit-for-miss marks (the coalescer, bounded by
    /// count) and computations in flight (`get_or_compute`). Entries, their
    /// keys and the tag index all count inside the budgets.
    pub bookkeeping_bytes: u64,
}

/// The figures of one named cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to the origin.
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 when there were no lookups.
    pub hit_rate: f64,
    /// Responses stored.
    pub inserts: u64,
    /// Responses the policy did not allow to be stored.
    pub not_stored: u64,
    /// Store failures (each fell back to the origin).
    pub store_errors: u64,
    /// Misses answered from another request's fetch (coalesced), each
    /// also counted in `misses`.
    pub coalesced: u64,
    /// Responses served stale by `stale-while-revalidate` or
    /// `stale-if-error`.
    pub stale: u64,
    /// Background refreshes started (`stale-while-revalidate`, early refresh).
    pub refreshes: u64,
    /// Entries dropped to stay within `max_bytes`.
    pub evictions: u64,
    /// Entries dropped because their TTL ran out.
    pub expirations: u64,
    /// Entries deleted on purpose (a purge, an invalidation, a delete).
    pub removals: u64,
    /// Entries replaced by a newer response for their key.
    pub replacements: u64,
    /// Live entries.
    pub entries: u64,
    /// Bytes held, as counted against `max_bytes`: what the entries keep
    /// alive on the heap, keys and index shares included.
    pub bytes: u64,
    /// The byte budget.
    pub max_bytes: u64,
    /// (tag, key) pairs in the tag index (each response is indexed under
    /// its URI and its tags).
    pub tagged: u64,
}

impl CacheStats {
    pub(crate) fn new(
        counters: &Counters,
        usage: crate::store::StoreUsage,
        max_bytes: u64,
    ) -> Self {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (hits, misses) = (load(&counters.hits), load(&counters.misses));
        let lookups = hits + misses;
        Self {
            hits,
            misses,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                hits as f64 / lookups as f64
            },
            inserts: load(&counters.inserts),
            not_stored: load(&counters.not_stored),
            store_errors: load(&counters.store_errors),
            coalesced: load(&counters.coalesced),
            stale: load(&counters.stale),
            refreshes: load(&counters.refreshes),
            evictions: usage.evictions,
            expirations: usage.expirations,
            removals: usage.removals,
            replacements: usage.replacements,
            entries: usage.entries,
            bytes: usage.bytes,
            max_bytes,
            tagged: usage.tagged,
        }
    }
}
