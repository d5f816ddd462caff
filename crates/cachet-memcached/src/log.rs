//! The invalidation log: Memcached has no channel, so purges are numbered
//! and written down, and every instance reads what it has not seen.
//!
//! A purge takes the next number from a counter (`incr`, atomic on the
//! server), then writes itself under that number. Every `poll_interval`
//! each instance reads the counter with every cache's anchor in one round
//! trip, then the purges numbered after the last it applied. It empties
//! its memory instead of applying them when it cannot follow: the log's
//! server did not answer (once it answers again), the counter went back
//! or vanished (evicted, or the server restarted), it fell more than
//! [`MAX_BEHIND`] behind, or a numbered purge stays missing past
//! [`GAP_GRACE`] (evicted, or its writer died between the two commands).

use crate::tier::{read_anchor, Rotate, Tier, META_TTL_SECS};
use cachet_core::store::tier::Purge;
use cachet_core::store::{MemoryStore, Store, StoreError};
use memcache::exp::{Arithmetic, Get, Set};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

/// How long Memcached keeps a purge: far longer than any instance takes to
/// read it; one that took longer finds it gone and empties its memory.
const RECORD_TTL_SECS: u32 = 60;

/// Purges behind after which an instance empties its memory rather than
/// read them all.
const MAX_BEHIND: u64 = 1000;

/// How long a numbered purge may stay unwritten (its writer between the
/// two commands) before it counts as lost.
const GAP_GRACE: Duration = Duration::from_secs(1);

/// Numbers `purge` and writes it down for the other instances.
pub(crate) async fn publish(tier: &Tier, instance: u64, purge: &Purge) -> Result<(), StoreError> {
    let counter = Arithmetic::new(tier.layout.log())
        .initial(1, META_TTL_SECS)
        .ttl(Duration::from_secs(META_TTL_SECS.into()));
    let number = tier
        .servers
        .run(tier.home, "ma log", counter)
        .await?
        .value
        .ok_or_else(|| StoreError::new("memcached: `ma` answered no number"))?;
    let record =
        Set::new(tier.layout.log_record(number), purge.encode(instance)).ttl_raw(RECORD_TTL_SECS);
    tier.servers.run(tier.home, "ms log", record).await?;
    Ok(())
}

/// Reads the log and the anchors, and keeps this instance's memory in step.
#[derive(Debug)]
pub(crate) struct Follower {
    pub(crate) tier: Arc<Tier>,
    /// This instance's memory (none in shared mode: only anchors to read).
    pub(crate) local: Option<MemoryStore>,
    pub(crate) caches: Arc<Vec<String>>,
    pub(crate) instance: u64,
    pub(crate) every: Duration,
}

/// Where a follower is in the log.
#[derive(Debug, Default)]
struct Position {
    /// The last purge applied (none before the first read).
    seen: Option<u64>,
    /// The log could not be read: empty memory once it can.
    lost: bool,
    /// Since when the purge after `seen` is numbered but missing.
    gap_since: Option<Instant>,
}

impl Follower {
    /// Follows the log until the tier is dropped.
    pub(crate) async fn run(self) {
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut position = Position::default();
        loop {
            ticker.tick().await;
            self.step(&mut position).await;
        }
    }

    async fn step(&self, position: &mut Position) {
        let tier = &*self.tier;
        for cache in tier.dirty() {
            if tier.rotate(&cache, Rotate::Any).await.is_ok() {
                self.flush(&cache).await;
            }
        }
        let mut gets = vec![Get::new(tier.layout.log())];
        gets.extend(
            self.caches
                .iter()
                .map(|cache| Get::new(tier.layout.anchor(cache))),
        );
        let answers = match tier.servers.run_many(tier.home, "mg log", gets).await {
            Ok(answers) => answers,
            Err(error) => {
                *tier
                    .log_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = error.to_string();
                tier.following.store(false, Ordering::Release);
                position.lost = true;
                return;
            }
        };
        if std::mem::take(&mut position.lost) {
            self.flush_all("the invalidation log is readable again")
                .await;
            position.seen = None;
        }
        let mut anchored = true;
        for (cache, answer) in self.caches.iter().zip(&answers[1..]) {
            if tier.is_dirty(cache) {
                continue;
            }
            let anchor = match answer.value.as_deref().and_then(read_anchor) {
                Some(anchor) => anchor,
                None => match tier.rotate(cache, Rotate::Create).await {
                    Ok(Some(anchor)) => anchor,
                    // Another instance created it: read at the next poll.
                    _ => {
                        anchored = false;
                        continue;
                    }
                },
            };
            if tier.learn(cache, anchor).is_some_and(|old| old != anchor) {
                // Cleared, or its indexes were lost, on another instance.
                self.flush(cache).await;
            }
        }
        // Followed once every cache's anchor is known: entries are shared.
        tier.following.store(anchored, Ordering::Release);
        if self.local.is_none() {
            return;
        }
        let counter = answers[0]
            .value
            .as_deref()
            .and_then(|value| std::str::from_utf8(value).ok()?.trim().parse::<u64>().ok());
        let Some(seen) = position.seen else {
            position.seen = Some(counter.unwrap_or(0));
            return;
        };
        let last = match counter {
            None if seen > 0 => {
                self.flush_all("the log's counter was lost").await;
                position.seen = Some(0);
                return;
            }
            None => return,
            Some(last) if last < seen => {
                self.flush_all("the log's counter went back").await;
                position.seen = Some(last);
                return;
            }
            Some(last) if last - seen > MAX_BEHIND => {
                self.flush_all("too far behind the log").await;
                position.seen = Some(last);
                return;
            }
            Some(last) => last,
        };
        if last == seen {
            return;
        }
        let gets = (seen + 1..=last)
            .map(|n| Get::new(tier.layout.log_record(n)))
            .collect();
        let Ok(records) = tier
            .servers
            .run_many(tier.home, "mg log records", gets)
            .await
        else {
            position.lost = true;
            return;
        };
        for (number, record) in (seen + 1..).zip(records) {
            let Some(value) = record.value else {
                let since = *position.gap_since.get_or_insert_with(Instant::now);
                if since.elapsed() < GAP_GRACE {
                    return;
                }
                self.flush_all("a purge in the log was lost").await;
                position.gap_since = None;
                position.seen = Some(last);
                return;
            };
            position.gap_since = None;
            position.seen = Some(number);
            let decoded = std::str::from_utf8(&value).ok().and_then(Purge::decode);
            if let (Some((from, purge)), Some(local)) = (decoded, &self.local) {
                if from != self.instance {
                    purge.apply(local).await;
                }
            }
        }
    }

    async fn flush(&self, cache: &str) {
        if let Some(local) = &self.local {
            let _ = local.clear(cache).await;
        }
    }

    async fn flush_all(&self, why: &str) {
        if self.local.is_none() {
            return;
        }
        for cache in self.caches.iter() {
            self.flush(cache).await;
        }
        self.tier.losses.flushes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(why, "emptied memory, which may have missed purges");
    }
}
