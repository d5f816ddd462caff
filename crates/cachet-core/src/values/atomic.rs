//! Atomic read-modify-writes on a value cache: `incr` and `decr` (the
//! building block of a fixed-window rate limiter) and `add` (store only
//! if absent: a claim).

use super::{ValueCache, ValueError};
use crate::key::CacheKey;
use crate::store::{Entry, StoreError, ValueEntry};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// How often a counter is read again when another instance changed it
/// between the read and the write, before giving up.
const SWAP_ATTEMPTS: usize = 64;

impl ValueCache {
    /// Adds `delta` to the counter under `key` and returns its new value.
    ///
    /// With no live value under `key`, the counter starts from 0 and is
    /// kept for `ttl`; later additions keep the expiry it was created with
    /// (a fixed window). A counter is an ordinary `i64` value: `get::<i64>`,
    /// `ttl`, `delete` and patterns reach it. Exact under any concurrency:
    /// one process's additions to one key take turns, and on a shared Redis
    /// tier each one replaces the value only if no other instance changed
    /// it meanwhile. Overflowing `i64` is an error that changes nothing.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// /// At most `limit` requests per `window` for `client` (a fixed window).
    /// async fn allow(
    ///     values: &cachet_core::values::ValueCache,
    ///     client: &str,
    ///     limit: i64,
    ///     window: Duration,
    /// ) -> bool {
    ///     match values.incr(&format!("ratelimit:{client}"), 1, window).await {
    ///         Ok(seen) => seen <= limit,
    ///         Err(_) => true, // the cache failing never locks clients out
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let values = cachet_core::Cache::builder().build()?.values();
    /// let minute = Duration::from_secs(60);
    /// for _ in 0..3 {
    ///     assert!(allow(&values, "10.0.0.1", 3, minute).await);
    /// }
    /// assert!(!allow(&values, "10.0.0.1", 3, minute).await, "the fourth in a minute");
    /// assert!(allow(&values, "10.0.0.2", 3, minute).await, "another client");
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// # }).unwrap();
    /// ```
    pub async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, ValueError> {
        self.read_modify_write(key, |current, now| {
            let (value, entry) = self.added(key, current, delta, ttl, now)?;
            Ok((value, Some(entry)))
        })
        .await
    }

    /// Stores `value` under `key` for `ttl` only if no live value is there;
    /// whether it did (Django's `cache.add`). Of concurrent `add`s for one
    /// key — in one process, or on instances sharing a Redis tier — exactly
    /// one wins, which makes it a claim ("this instance runs the nightly
    /// job").
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let values = cachet_core::Cache::builder().build()?.values();
    /// let day = std::time::Duration::from_secs(86_400);
    /// assert!(values.add("job:daily", &"instance-a", day).await?);
    /// assert!(!values.add("job:daily", &"instance-b", day).await?, "already claimed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn add<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<bool, ValueError> {
        let bytes = self.shared.codec.encode(value)?;
        // A lost swap means another instance wrote the key meanwhile: the
        // next attempt finds it live.
        self.read_modify_write(key, |current, now| {
            if live(current, now).is_some() {
                return Ok((false, None));
            }
            let entry = ValueEntry::new(bytes.clone(), now, ttl);
            Ok((true, Some(Entry::Value(std::sync::Arc::new(entry)))))
        })
        .await
    }

    /// Runs `step` on the live value under `key` (or none) and stores the
    /// entry it returns, if any, under the key's lock: in this process
    /// with a plain read and write; on a store other instances write, by
    /// compare-and-swap, reading again when another instance wrote in
    /// between. Returns what `step` returned with the entry it stored.
    async fn read_modify_write<R>(
        &self,
        key: &str,
        mut step: impl FnMut(Option<&Entry>, SystemTime) -> Result<(R, Option<Entry>), ValueError>,
    ) -> Result<R, ValueError> {
        let flight = self.shared.flights.join(key);
        let _turn = flight.lock.lock().await;
        let cache_key = CacheKey::from_raw(key);
        let store = &self.shared.store;
        let cache = &*self.shared.cache;
        let Some(swap) = store.swap() else {
            let now = self.shared.clock.now();
            let current = store.get(cache, &cache_key, now).await?;
            let (result, entry) = step(current.as_ref(), now)?;
            if let Some(entry) = entry {
                store.insert(cache, &cache_key, entry).await?;
            }
            return Ok(result);
        };
        for _ in 0..SWAP_ATTEMPTS {
            let now = self.shared.clock.now();
            let (current, version) = swap.latest(cache, &cache_key, now).await?;
            let (result, entry) = step(current.as_ref(), now)?;
            let Some(entry) = entry else {
                return Ok(result);
            };
            if swap.swap(cache, &cache_key, &version, entry).await? {
                return Ok(result);
            }
        }
        Err(StoreError::new(format!(
            "`{key}` changed under {SWAP_ATTEMPTS} attempts in a row; nothing written"
        ))
        .into())
    }

    /// Subtracts `delta` from the counter under `key`; see [`incr`](Self::incr).
    pub async fn decr(&self, key: &str, delta: i64, ttl: Duration) -> Result<i64, ValueError> {
        let negated = delta.checked_neg().ok_or_else(|| {
            ValueError::Encode(format!("counter `{key}`: cannot subtract {delta}"))
        })?;
        self.incr(key, negated, ttl).await
    }

    /// The counter after adding `delta` to `current` (a live value, or
    /// none), and the entry that stores it.
    fn added(
        &self,
        key: &str,
        current: Option<&Entry>,
        delta: i64,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(i64, Entry), ValueError> {
        let (before, ttl) = match live(current, now) {
            Some(value) => {
                let before: i64 = self.shared.codec.decode(value.bytes()).map_err(|error| {
                    ValueError::Decode(format!("`{key}` holds no counter: {error}"))
                })?;
                let left = value.expires_at().duration_since(now).unwrap_or_default();
                (before, left)
            }
            None => (0, ttl),
        };
        let after = before.checked_add(delta).ok_or_else(|| {
            ValueError::Encode(format!("counter `{key}`: {before} + {delta} overflows i64"))
        })?;
        let bytes = self.shared.codec.encode(&after)?;
        let entry = Entry::Value(std::sync::Arc::new(ValueEntry::new(bytes, now, ttl)));
        Ok((after, entry))
    }
}

/// The value `current` holds, if it is one live at `now`.
fn live(current: Option<&Entry>, now: SystemTime) -> Option<&ValueEntry> {
    match current {
        Some(Entry::Value(value)) if value.expires_at() > now => Some(value),
        _ => None,
    }
}
