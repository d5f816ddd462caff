//! Step 2, lookup: a fresh entry the request's own directives accept, one
//! to revalidate, or a miss and why; and the early-refresh draw (XFetch).

use super::revalidate::Revalidation;
use super::route::Plan;
use crate::cache::Cache;
use crate::key::variant_key;
use crate::key::CacheKey;
use crate::protocol::cache_status::ForwardReason;
use crate::request::RequestHead;
use crate::stats::Counters;
use crate::store::entry::{CachedResponse, Entry, VariantIndex};
use crate::store::StoreError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The result of a lookup.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// An entry the request accepts: fresh, or stale within its `max-stale`.
    Hit(Hit),
    /// An entry that must be revalidated before use (stale, or the request
    /// said `no-cache`): [`serve`](crate::adapter::serve) forwards it with
    /// [`Revalidation::conditions`] and merges a 304 into the entry.
    Revalidate(Revalidation),
    /// Go to the origin, for this reason.
    Miss(ForwardReason),
}

/// An entry found for a request.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(super) entry: Arc<CachedResponse>,
    pub(super) age: Duration,
    pub(super) ttl: Duration,
    pub(super) staleness: Option<Duration>,
    /// Boxed: rare, and kept out of the way of every hit's moves.
    pub(super) refresh: Option<Box<Revalidation>>,
    /// The key the entry lives under, while its store has not counted the
    /// room its prepared form takes: the answer tells the store once the
    /// form is made. Boxed, as `refresh`: an entry's first hits only.
    pub(super) uncounted: Option<Box<CacheKey>>,
}

impl Hit {
    /// What to fetch in the background once the hit has been answered, if
    /// anything: the entry is served stale while revalidated, or it is near
    /// its expiry and the rule refreshes early.
    pub(crate) fn into_refresh(self) -> Option<Revalidation> {
        self.refresh.map(|refresh| *refresh)
    }
}

/// What a store read found, and where.
enum Found {
    /// Under the primary key.
    Primary(Result<Option<Entry>, StoreError>),
    /// Under the variant key the primary key's index selected.
    Variant(Result<Option<Entry>, StoreError>, CacheKey),
}

impl Cache {
    /// Step 2: an entry for `plan` that the request accepts, one to
    /// revalidate, or why neither. `req` selects among the URL's variants.
    /// Counts a hit or a miss; a store failure is logged, counted, and reads
    /// as a miss.
    pub(crate) async fn lookup(&self, plan: &Plan, req: &(dyn RequestHead + Sync)) -> Lookup {
        self.lookup_counted(plan, req, true).await
    }

    /// Step 4, after waiting for another request's fetch of `plan`'s key:
    /// the lookup again, not counted as a second hit or miss (the request's
    /// miss was counted); a hit is counted as coalesced.
    pub(crate) async fn lookup_landed(
        &self,
        plan: &Plan,
        req: &(dyn RequestHead + Sync),
    ) -> Lookup {
        let found = self.lookup_counted(plan, req, false).await;
        if matches!(found, Lookup::Hit(_)) {
            Counters::bump(&self.counters(plan).coalesced);
        }
        found
    }

    async fn lookup_counted(
        &self,
        plan: &Plan,
        req: &(dyn RequestHead + Sync),
        count: bool,
    ) -> Lookup {
        if let Some(get) = head_from_get(plan) {
            let found = self.lookup_key(&get, req, false).await;
            if let Some(hit) = self.fresh_hit(plan, found, count) {
                return hit;
            }
        }
        self.lookup_key(plan, req, count).await
    }

    /// The lookup of `plan`'s own key.
    async fn lookup_key(&self, plan: &Plan, req: &(dyn RequestHead + Sync), count: bool) -> Lookup {
        if let Some(found) = self.lookup_now_key(plan, req, count) {
            return found;
        }
        let now = self.inner.clock.now();
        let store = &self.inner.store;
        let cache = plan.rule.cache();
        let found = match store.get(cache, &plan.key, now).await {
            Ok(Some(Entry::Variants(index))) => {
                let key = self.variant_key(plan, &index, req);
                let found = store.get(cache, &key, now).await;
                Found::Variant(found, key)
            }
            found => Found::Primary(found),
        };
        self.record_lookup(plan, found, now, count)
    }

    /// Step 2 without waiting, when the store can answer at once (the
    /// in-memory store always can): a fresh entry for `plan` that `req`
    /// accepts, one to revalidate, or why neither; `None` when the store
    /// cannot answer at once ([`serve`](crate::adapter::serve) then asks
    /// it). Counts a hit or a miss; a store failure reads as a miss.
    pub(crate) fn lookup_now(&self, plan: &Plan, req: &dyn RequestHead) -> Option<Lookup> {
        self.lookup_now_counted(plan, req, true)
    }

    fn lookup_now_counted(
        &self,
        plan: &Plan,
        req: &dyn RequestHead,
        count: bool,
    ) -> Option<Lookup> {
        if let Some(get) = head_from_get(plan) {
            let found = self.lookup_now_key(&get, req, false)?;
            if let Some(hit) = self.fresh_hit(plan, found, count) {
                return Some(hit);
            }
        }
        self.lookup_now_key(plan, req, count)
    }

    /// A HEAD's lookup of the GET entry, kept when it is a fresh hit that
    /// needs no refresh (anything else would revalidate the GET entry with
    /// a HEAD); counted as `plan`'s hit.
    fn fresh_hit(&self, plan: &Plan, found: Lookup, count: bool) -> Option<Lookup> {
        match found {
            Lookup::Hit(hit) if hit.staleness.is_none() && hit.refresh.is_none() => {
                if count {
                    Counters::bump(&self.counters(plan).hits);
                }
                Some(Lookup::Hit(hit))
            }
            _ => None,
        }
    }

    fn lookup_now_key(&self, plan: &Plan, req: &dyn RequestHead, count: bool) -> Option<Lookup> {
        let now = self.inner.clock.now();
        let store = self.inner.store.immediate()?;
        let cache = plan.rule.cache();
        let found = match store.get_now(cache, &plan.key, now)? {
            Ok(Some(Entry::Variants(index))) => {
                let key = self.variant_key(plan, &index, req);
                let found = store.get_now(cache, &key, now)?;
                Found::Variant(found, key)
            }
            found => Found::Primary(found),
        };
        Some(self.record_lookup(plan, found, now, count))
    }

    /// The key of the variant `req` selects under `index`: the lookup's and
    /// the store's one derivation, so both find the same entry.
    pub(super) fn variant_key(
        &self,
        plan: &Plan,
        index: &VariantIndex,
        req: &dyn RequestHead,
    ) -> CacheKey {
        variant_key(
            &plan.key,
            index.generation(),
            index.names(),
            req,
            &self.inner.identity,
        )
    }

    fn record_lookup(&self, plan: &Plan, found: Found, now: SystemTime, count: bool) -> Lookup {
        let counters = self.counters(plan);
        let bump = |counter| {
            if count {
                Counters::bump(counter);
            }
        };
        let miss = |reason| {
            bump(&counters.misses);
            Lookup::Miss(reason)
        };
        let (found, variant) = match found {
            Found::Primary(found) => (found, None),
            Found::Variant(found, key) => (found, Some(key)),
        };
        let entry = match found {
            Ok(Some(Entry::Response(entry))) => entry,
            // An index under a variant key (the generation collided) or an
            // application value under an HTTP key: neither answers; a miss.
            Ok(Some(Entry::Variants(_) | Entry::Value(_)) | None) => {
                return miss(if variant.is_some() {
                    ForwardReason::VaryMiss
                } else {
                    ForwardReason::UriMiss
                });
            }
            Err(error) => {
                self.inner.store_warnings.warn(&format!(
                    "cache lookup failed; forwarding to the origin: {error}"
                ));
                Counters::bump(&counters.store_errors);
                return miss(ForwardReason::UriMiss);
            }
        };
        let home = || variant.clone().unwrap_or_else(|| plan.key.clone());
        let revalidation = |entry: &Arc<CachedResponse>, reason| Revalidation {
            entry: Arc::clone(entry),
            key: home(),
            reason,
        };
        let uncounted =
            |entry: &CachedResponse| entry.prepared_uncounted().then(|| Box::new(home()));
        let age = entry.age(now);
        let directives = &plan.directives;
        let reason = if entry.is_fresh(now) {
            let ttl = entry.time_to_live(now);
            if directives.accepts(age, ttl) || validated_since_arrival(plan, &entry) {
                bump(&counters.hits);
                let refresh = self
                    .refreshes_early(plan, &entry, ttl)
                    .then(|| Box::new(revalidation(&entry, ForwardReason::Stale)));
                return Lookup::Hit(Hit {
                    uncounted: uncounted(&entry),
                    entry,
                    age,
                    ttl,
                    staleness: None,
                    refresh,
                });
            }
            ForwardReason::Request
        } else {
            let staleness = entry.staleness(now);
            let while_revalidating =
                entry.serves_while_revalidating(now) && directives.accepts_while_revalidating(age);
            if while_revalidating || directives.accepts_stale(age, staleness, entry.forbids_stale())
            {
                bump(&counters.hits);
                if while_revalidating {
                    bump(&counters.stale);
                }
                let refresh = while_revalidating
                    .then(|| Box::new(revalidation(&entry, ForwardReason::Stale)));
                return Lookup::Hit(Hit {
                    uncounted: uncounted(&entry),
                    entry,
                    age,
                    ttl: Duration::ZERO,
                    staleness: Some(staleness),
                    refresh,
                });
            }
            ForwardReason::Stale
        };
        // Kept past its freshness: revalidated when it has validators,
        // fetched anew otherwise — and served if the origin fails, within
        // its `stale-if-error` window.
        bump(&counters.misses);
        Lookup::Revalidate(revalidation(&entry, reason))
    }

    /// Whether a fresh hit with `ttl` left should also refresh the entry in
    /// the background: the rule's early refresh (XFetch) fires with a
    /// probability that grows as expiry nears and with the fetch time.
    fn refreshes_early(&self, plan: &Plan, entry: &CachedResponse, ttl: Duration) -> bool {
        let Some(beta) = plan.rule.early_refresh() else {
            return false;
        };
        let fetch_time = entry.fetch_time();
        !fetch_time.is_zero() && refresh_early(ttl, fetch_time, beta, unit_random())
    }
}

/// XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh an entry
/// with `ttl` left when `fetch_time · beta · −ln(u)` reaches it, for `u`
/// uniform in (0, 1]. Early refreshes spread out and grow likelier as
/// expiry nears, and slow fetches start sooner.
fn refresh_early(ttl: Duration, fetch_time: Duration, beta: f64, u: f64) -> bool {
    fetch_time.as_secs_f64() * beta * -u.ln() >= ttl.as_secs_f64()
}

/// A number uniform in (0, 1], from 53 random bits.
fn unit_random() -> f64 {
    let bits = getrandom::u64().unwrap_or(u64::MAX) >> 11;
    (bits as f64 + 1.0) / (1u64 << 53) as f64
}

/// Whether `entry` came from the origin after a request that must
/// revalidate (`no-cache`, RFC 9111 §5.2.1.4) arrived: then it is the
/// validated response that request asked for. This is how concurrent
/// revalidations of one entry share one origin request: those that wait
/// for another's fetch take what it stored.
fn validated_since_arrival(plan: &Plan, entry: &CachedResponse) -> bool {
    plan.directives.no_cache
        && plan
            .started
            .is_some_and(|arrived| entry.stored_at() > arrived)
}

/// With `vary_by_method`, a HEAD has its own entry, but a stored GET
/// answers it first (RFC 9111 §4): the plan of that GET entry.
fn head_from_get(plan: &Plan) -> Option<Plan> {
    if !(plan.head && plan.rule.vary_by_method()) {
        return None;
    }
    let key = plan.key.with_method(plan.target_len, "HEAD", "GET")?;
    Some(Plan {
        key,
        ..plan.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_refresh_grows_likelier_near_expiry_and_with_slow_fetches() {
        let secs = Duration::from_secs;
        // u = 1 never refreshes; a small u refreshes well before expiry.
        assert!(!refresh_early(secs(1), secs(1), 1.0, 1.0));
        assert!(refresh_early(secs(4), secs(1), 1.0, 0.01));
        assert!(!refresh_early(secs(5), secs(1), 1.0, 0.01));
        // The same draw fires sooner for a slower fetch or a larger beta.
        assert!(refresh_early(secs(20), secs(5), 1.0, 0.01));
        assert!(refresh_early(secs(20), secs(1), 5.0, 0.01));
        let draws = (0..10_000).map(|_| unit_random());
        assert!(draws.clone().all(|u| u > 0.0 && u <= 1.0));
        let mean = draws.sum::<f64>() / 10_000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
