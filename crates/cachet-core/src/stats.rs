//! What a cache reports: hit/miss statistics per named cache as one
//! serializable [`StatsSnapshot`], its [`Health`], and what operators list
//! ([`ListedKey`], [`KeyStats`]).

use crate::key::CacheKey;
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
    pub(crate) revalidated: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) origin: OriginCounters,
}

/// What the origin answered for one named cache, by status class, and how
/// long its response heads took.
#[derive(Debug, Default)]
pub(crate) struct OriginCounters {
    /// By [`ORIGIN_OUTCOMES`].
    pub(crate) outcomes: [AtomicU64; 6],
    pub(crate) duration: Histogram,
}

/// The `outcome` label of each origin counter: the status class, or
/// `error` when no response came (a connection error or a timeout).
pub(crate) const ORIGIN_OUTCOMES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

impl OriginStats {
    fn new(counters: &OriginCounters) -> Self {
        let (buckets, sum) = counters.duration.snapshot();
        Self {
            outcomes: ORIGIN_OUTCOMES
                .iter()
                .zip(&counters.outcomes)
                .map(|(outcome, counter)| (*outcome, counter.load(Ordering::Relaxed)))
                .collect(),
            duration_buckets: buckets.to_vec(),
            duration_sum_secs: sum,
        }
    }
}

impl OriginCounters {
    pub(crate) fn record(&self, status: Option<http::StatusCode>, took: std::time::Duration) {
        let class = status.map_or(5, |status| {
            usize::from(status.as_u16() / 100).clamp(1, 5) - 1
        });
        Counters::bump(&self.outcomes[class]);
        self.duration.observe(took);
    }
}

/// The upper bounds of the origin-duration buckets, in seconds.
pub(crate) const DURATION_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram of durations over [`DURATION_BOUNDS`] (and one bucket past
/// them), in atomics: recording costs three relaxed additions.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; 12],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let bucket = DURATION_BOUNDS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(DURATION_BOUNDS.len());
        Counters::bump(&self.buckets[bucket]);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The count per bucket (not cumulative; the last is past the bounds),
    /// and the sum in seconds.
    pub(crate) fn snapshot(&self) -> ([u64; 12], f64) {
        let counts = std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        (counts, self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }
}

/// How many purges of each kind ran, cache-wide.
#[derive(Debug, Default)]
pub(crate) struct Purges {
    /// By [`PURGE_KINDS`].
    pub(crate) kinds: [AtomicU64; 6],
    /// The soft ones among them (entries made stale, not removed).
    pub(crate) soft: [AtomicU64; 6],
}

/// The `kind` label of each purge counter.
pub(crate) const PURGE_KINDS: [&str; 6] = ["tag", "uri", "pattern", "key", "clear", "invalidation"];

/// A kind of purge, indexing [`PURGE_KINDS`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum PurgeKind {
    Tag,
    Uri,
    Pattern,
    Key,
    Clear,
    Invalidation,
}

impl Purges {
    pub(crate) fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        PURGE_KINDS
            .iter()
            .zip(&self.kinds)
            .map(|(kind, counter)| (*kind, counter.load(Ordering::Relaxed)))
            .collect()
    }

    pub(crate) fn count(&self, kind: PurgeKind) {
        Counters::bump(&self.kinds[kind as usize]);
    }

    /// Counts a purge of `kind`, and it among the soft ones when `soft`.
    pub(crate) fn count_as(&self, kind: PurgeKind, soft: bool) {
        self.count(kind);
        if soft {
            Counters::bump(&self.soft[kind as usize]);
        }
    }

    pub(crate) fn snapshot_soft(&self) -> BTreeMap<&'static str, u64> {
        PURGE_KINDS
            .iter()
            .zip(&self.soft)
            .map(|(kind, counter)| (*kind, counter.load(Ordering::Relaxed)))
            .collect()
    }
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
    /// Purge operations run, cache-wide, by kind: `tag`, `uri`, `pattern`,
    /// `key`, `clear`, `invalidation` (after a mutation).
    pub purges: BTreeMap<&'static str, u64>,
    /// The soft ones among `purges` (entries made stale, not removed), by
    /// the same kinds.
    pub soft_purges: BTreeMap<&'static str, u64>,
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
    /// Stored entries updated by a 304 from the origin (for a client's
    /// request or a background refresh).
    pub revalidated: u64,
    /// Requests a rule matched that skipped the cache (a method it does not
    /// cache, a body, a range, an unclear identity, ...).
    pub bypassed: u64,
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
    /// What the origin answered for this cache's rules.
    pub origin: OriginStats,
}

/// What the origin answered for one named cache, and how fast.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OriginStats {
    /// Responses by the class of their status (`1xx` … `5xx`), and `error`
    /// where none came (a connection error or a timeout).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// How many response heads took at most each of
    /// [`DURATION_BOUNDS`](Self::DURATION_BOUNDS) seconds (and more than
    /// the last, in the final bucket); not cumulative.
    pub duration_buckets: Vec<u64>,
    /// The sum of those durations, in seconds.
    pub duration_sum_secs: f64,
}

impl OriginStats {
    /// The upper bounds of the duration buckets, in seconds.
    pub const DURATION_BOUNDS: [f64; 11] = DURATION_BOUNDS;
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
            revalidated: load(&counters.revalidated),
            bypassed: load(&counters.bypassed),
            evictions: usage.evictions,
            expirations: usage.expirations,
            removals: usage.removals,
            replacements: usage.replacements,
            entries: usage.entries,
            bytes: usage.bytes,
            max_bytes,
            tagged: usage.tagged,
            origin: OriginStats::new(&counters.origin),
        }
    }
}

/// Whether the cache can serve, as `/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Health {
    /// Every tier answers.
    Ok,
    /// The cache serves from its local tier while a remote one fails.
    Degraded {
        /// Which tier, and why.
        degraded: String,
    },
    /// The store the cache serves from fails: requests go to the origin.
    Failing {
        /// Why.
        error: String,
    },
}

/// How many live entries match, and the bytes they hold, in one named cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeyStats {
    /// Matching live entries.
    pub count: u64,
    /// Their bytes, keys included, as weighed against `max_bytes`.
    pub bytes: u64,
}

/// A key and the named cache that holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub struct ListedKey {
    /// The named cache.
    pub cache: String,
    /// The key.
    pub key: CacheKey,
}
