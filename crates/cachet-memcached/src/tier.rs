//! What Memcached cannot do alone, built on it: each named cache's anchor,
//! its key registry and tag index, and the caches whose shared state must
//! be dropped because a purge could not reach it.
//!
//! All of it lives on the home server (the prefix's server by the same
//! rendezvous hash as keys), so that one round trip reads a cache's anchor
//! with its index segments.
//!
//! **Why anchors.** Memcached may evict any item, the registry's and the
//! tag index's too, and a registry that silently lost keys would let a
//! pattern purge miss entries. So every segment starts with the anchor it
//! was made under, and every entry carries the anchor it was written
//! under: a segment found missing or from another anchor means records
//! were lost, and the cache's anchor changes ("rotates") — which turns
//! every entry written before into a miss on every instance, and empties
//! every instance's memory of the cache at its next poll. The same
//! rotation clears a cache in one command (no scan, and never
//! `flush_all` on a server others share).

use crate::layout::{self, Layout};
use crate::servers::{ServerId, Servers};
use cachet_core::store::StoreError;
use memcache::exp::{Get, Meta, MutationStatus, Op, OpResult, Set};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How long Memcached keeps index segments and anchors when nothing
/// touches them: they are rewritten long before (exptime is only garbage
/// collection here).
pub(crate) const META_TTL_SECS: u32 = 30 * 24 * 3600;

/// How long a segment found full refuses stores before it is compacted
/// again.
const FULL_RECHECK: Duration = Duration::from_secs(1);

/// What happened to the records of one store.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Every key is in the registry (and its tags in the tag index).
    Yes,
    /// A segment is full even after compaction: store nothing, since
    /// another instance's pattern purge could not find it.
    Full,
    /// The home server did not answer, or a segment was lost (the anchor
    /// rotated): keep it in this instance's memory only, which is emptied
    /// when the log is readable again (or the new anchor is seen).
    NotShared,
}

/// Losses the tier detected and what it did, for tests and operators.
#[derive(Debug, Default)]
pub(crate) struct Losses {
    /// Index segments found missing or from another anchor.
    pub(crate) segments: AtomicU64,
    /// Anchors rotated (clears and losses).
    pub(crate) rotations: AtomicU64,
    /// Stores refused because an index was full.
    pub(crate) full: AtomicU64,
    /// Memory emptied because the log could not be followed.
    pub(crate) flushes: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Tier {
    pub(crate) servers: Servers,
    pub(crate) layout: Layout,
    pub(crate) home: ServerId,
    segments: u32,
    item_size_max: u64,
    /// Each cache's anchor as last read (none before the first poll).
    anchors: RwLock<HashMap<String, u64>>,
    /// Caches whose shared state may hold what a purge could not remove:
    /// rotated as soon as the home server answers.
    dirty: Mutex<BTreeSet<String>>,
    pub(crate) losses: Losses,
    /// Segments found full, and since when.
    full: Mutex<HashMap<(String, Index, u32), Instant>>,
    /// Whether this instance reads the invalidation log (and why not).
    pub(crate) following: AtomicBool,
    pub(crate) log_error: Mutex<String>,
}

/// Which anchor a rotation replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotate {
    /// None yet: create one, unless another instance just did.
    Create,
    /// This one, unless another instance replaced it already.
    Replace(u64),
    /// Whichever is there (a cache cleared, or a purge that failed).
    Any,
}

/// Which index of a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Index {
    Registry,
    Tags,
}

impl Tier {
    pub(crate) fn new(servers: Servers, layout: Layout, segments: u32, item_size_max: u64) -> Self {
        let home = servers.route(layout.home());
        Self {
            servers,
            layout,
            home,
            segments,
            item_size_max,
            anchors: RwLock::default(),
            dirty: Mutex::default(),
            losses: Losses::default(),
            full: Mutex::default(),
            following: AtomicBool::new(false),
            log_error: Mutex::new("not read yet".into()),
        }
    }

    /// The anchor entries of `cache` are read and written under, if known.
    pub(crate) fn anchor(&self, cache: &str) -> Option<u64> {
        self.anchors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(cache)
            .copied()
    }

    /// Records `anchor` as `cache`'s; the one it replaces.
    pub(crate) fn learn(&self, cache: &str, anchor: u64) -> Option<u64> {
        self.anchors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cache.to_owned(), anchor)
    }

    /// Marks `cache` for a rotation, and stops reading its shared entries
    /// here until then.
    pub(crate) fn mark_dirty(&self, cache: &str, why: &str) {
        self.anchors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cache);
        let new = self
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cache.to_owned());
        if new {
            self.servers.warn(&format!(
                "memcached: a purge of cache `{cache}` could not reach every server ({why}); \
                 its shared entries are dropped as soon as the log's server answers"
            ));
        }
    }

    /// Whether `cache` waits for a rotation.
    pub(crate) fn is_dirty(&self, cache: &str) -> bool {
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(cache)
    }

    /// The caches waiting for a rotation.
    pub(crate) fn dirty(&self) -> Vec<String> {
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Gives `cache` a new anchor — every entry written before reads as a
    /// miss, on every instance — and empty indexes, unless another
    /// instance rotated first. The new anchor, or `None` when another
    /// instance's is kept (it is read at the next poll).
    pub(crate) async fn rotate(
        &self,
        cache: &str,
        from: Rotate,
    ) -> Result<Option<u64>, StoreError> {
        let key = self.layout.anchor(cache);
        let current = match from {
            Rotate::Create => None,
            Rotate::Replace(_) | Rotate::Any => {
                let answer = self
                    .servers
                    .run(
                        self.home,
                        "mg anchor",
                        Get::new(&key).meta(Meta::NONE.cas()),
                    )
                    .await?;
                answer
                    .value
                    .as_deref()
                    .and_then(read_anchor)
                    .zip(answer.item.cas)
            }
        };
        if let Rotate::Replace(old) = from {
            if current.map(|(anchor, _)| anchor) != Some(old) {
                // Someone rotated already (or the anchor went): take theirs.
                return Ok(None);
            }
        }
        let fresh = loop {
            let candidate = random_anchor();
            if Some(candidate) != current.map(|(anchor, _)| anchor) {
                break candidate;
            }
        };
        let set = Set::new(&key, fresh.to_le_bytes()).ttl_raw(META_TTL_SECS);
        let set = match current {
            Some((_, cas)) => set.compare_cas(cas),
            None => set.add(),
        };
        let answer = self.servers.run(self.home, "ms anchor", set).await?;
        if answer.status != MutationStatus::Applied {
            return Ok(None);
        }
        let header = layout::segment_header(fresh);
        let segments: Vec<Set> = (0..self.segments)
            .flat_map(|n| [self.layout.registry(cache, n), self.layout.tags(cache, n)])
            .map(|segment| Set::new(segment, header.as_bytes()).ttl_raw(META_TTL_SECS))
            .collect();
        self.servers
            .run_many(self.home, "ms segments", segments)
            .await?;
        self.losses.rotations.fetch_add(1, Ordering::Relaxed);
        self.learn(cache, fresh);
        self.dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(cache);
        Ok(Some(fresh))
    }

    /// Records each `(keep_until, key, tags)` of `cache` under `anchor` in
    /// the registry and the tag index, one append per segment.
    pub(crate) async fn record(
        &self,
        cache: &str,
        anchor: u64,
        items: &[(u64, &str, Vec<&str>)],
        now_ms: u64,
    ) -> Recorded {
        let mut appends: Vec<(Index, u32, String)> = Vec::new();
        let mut add = |index: Index, segment: u32, line: String| match appends
            .iter_mut()
            .find(|(i, s, _)| (*i, *s) == (index, segment))
        {
            Some((_, _, lines)) => lines.push_str(&line),
            None => appends.push((index, segment, line)),
        };
        for (keep_until, key, tags) in items {
            let Some(line) = layout::record(*keep_until, key) else {
                return Recorded::Full;
            };
            add(Index::Registry, self.segment_of(key), line);
            for tag in tags {
                let name = layout::tagged_name(tag, key);
                let Some(line) = layout::record(*keep_until, &name) else {
                    return Recorded::Full;
                };
                add(Index::Tags, self.segment_of(tag), line);
            }
        }
        if appends.iter().any(|(index, segment, lines)| {
            lines.len() as u64 > self.budget() / 4 || self.is_full(cache, *index, *segment)
        }) {
            self.losses.full.fetch_add(1, Ordering::Relaxed);
            return Recorded::Full;
        }
        // Each append with the segment's size before it, in one round trip:
        // Memcached drops an item an append takes past its limit, so a
        // segment past its budget is compacted long before.
        let mut operations: Vec<Op> = Vec::with_capacity(appends.len() * 2);
        for (index, segment, lines) in &appends {
            let key = self.segment_key(cache, *index, *segment);
            operations.push(
                Get::new(&key)
                    .without_value()
                    .meta(Meta::NONE.size())
                    .into(),
            );
            operations.push(Set::new(&key, lines.as_bytes()).append().into());
        }
        let Ok(answers) = self
            .servers
            .run_many(self.home, "ms append", operations)
            .await
        else {
            return Recorded::NotShared;
        };
        let mut recorded = Recorded::Yes;
        for ((index, segment, lines), answer) in appends.iter().zip(answers.chunks(2)) {
            let [OpResult::Get(size), OpResult::Mutation(append)] = answer else {
                return Recorded::NotShared;
            };
            if append.status != MutationStatus::Applied {
                // Missing: evicted, or the server restarted.
                self.lost(cache, anchor).await;
                return Recorded::NotShared;
            }
            let size = size.item.size.unwrap_or(0) + lines.len() as u64;
            if size > self.budget() {
                let outcome = self
                    .compact(cache, anchor, (*index, *segment), now_ms)
                    .await;
                if outcome != Recorded::Yes {
                    recorded = outcome;
                }
            }
        }
        recorded
    }

    /// How large a segment may grow before it is compacted: half of
    /// Memcached's item limit, so that appends from every instance between
    /// two checks stay far below it.
    fn budget(&self) -> u64 {
        self.item_size_max / 2
    }

    /// Whether a segment was found full (after compaction) less than a
    /// second ago: stores are refused without appending meanwhile.
    fn is_full(&self, cache: &str, index: Index, segment: u32) -> bool {
        let mut full = self.full.lock().unwrap_or_else(PoisonError::into_inner);
        full.retain(|_, since| since.elapsed() < FULL_RECHECK);
        full.contains_key(&(cache.to_owned(), index, segment))
    }

    /// Drops the expired, superseded and removed records of a segment past
    /// its budget; `Full` if it stays past it.
    async fn compact(
        &self,
        cache: &str,
        anchor: u64,
        (index, segment): (Index, u32),
        now_ms: u64,
    ) -> Recorded {
        let key = self.segment_key(cache, index, segment);
        let Ok(current) = self
            .servers
            .run(
                self.home,
                "mg segment",
                Get::new(&key).meta(Meta::NONE.cas()),
            )
            .await
        else {
            return Recorded::NotShared;
        };
        let parsed = current.value.as_deref().and_then(layout::parse_segment);
        let (Some((found, records)), Some(cas)) = (parsed, current.item.cas) else {
            self.lost(cache, anchor).await;
            return Recorded::NotShared;
        };
        if found != anchor {
            self.lost(cache, anchor).await;
            return Recorded::NotShared;
        }
        let latest = latest_records(&records, now_ms);
        let keys: Vec<&str> = latest
            .iter()
            .map(|(_, name)| match index {
                Index::Registry => *name,
                Index::Tags => layout::split_tagged(name).map_or(*name, |(_, key)| key),
            })
            .collect();
        let alive = self.alive(cache, &keys).await;
        let mut compacted = layout::segment_header(anchor);
        for ((keep_until, name), alive) in latest.iter().zip(alive) {
            if alive {
                compacted.push_str(&layout::record(*keep_until, name).unwrap_or_default());
            }
        }
        if compacted.len() as u64 > self.budget() {
            self.losses.full.fetch_add(1, Ordering::Relaxed);
            self.full
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert((cache.to_owned(), index, segment), Instant::now());
            self.servers.warn(&format!(
                "memcached: an index segment of cache `{cache}` is full; raise `index_bytes` \
                 (new entries are not stored meanwhile)"
            ));
            return Recorded::Full;
        }
        let write = Set::new(&key, compacted.as_bytes())
            .ttl_raw(META_TTL_SECS)
            .compare_cas(cas);
        // Lost to an append meanwhile: the next store past the budget
        // compacts again.
        let _ = self.servers.run(self.home, "ms segment", write).await;
        Recorded::Yes
    }

    /// Which of `keys` of `cache` Memcached still holds an entry for (a
    /// server that does not answer holds all of them, as far as we know).
    pub(crate) async fn alive(&self, cache: &str, keys: &[&str]) -> Vec<bool> {
        let mut alive = vec![true; keys.len()];
        let mut by_server: HashMap<ServerId, Vec<usize>> = HashMap::new();
        let entries: Vec<String> = keys
            .iter()
            .map(|key| self.layout.entry(cache, key))
            .collect();
        for (i, entry) in entries.iter().enumerate() {
            by_server
                .entry(self.servers.route(entry))
                .or_default()
                .push(i);
        }
        let lookups = by_server.into_iter().map(|(server, indices)| {
            let gets = indices
                .iter()
                .map(|&i| Get::new(&entries[i]).without_value())
                .collect();
            async move {
                (
                    indices,
                    self.servers.run_many(server, "mg exists", gets).await,
                )
            }
        });
        for (indices, answers) in futures_util::future::join_all(lookups).await {
            if let Ok(answers) = answers {
                for (i, answer) in indices.into_iter().zip(answers) {
                    alive[i] = answer.hit();
                }
            }
        }
        alive
    }

    /// The keys the registry of `cache` lists as kept at `now_ms`.
    pub(crate) async fn registered(
        &self,
        cache: &str,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let segments: Vec<u32> = (0..self.segments).collect();
        let records = self.read(cache, Index::Registry, &segments).await?;
        Ok(latest_records(&records, now_ms)
            .into_iter()
            .map(|(_, name)| name.to_owned())
            .collect())
    }

    /// The keys the tag index of `cache` lists under `tag` as kept at `now_ms`.
    pub(crate) async fn tagged(
        &self,
        cache: &str,
        tag: &str,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let records = self
            .read(cache, Index::Tags, &[self.segment_of(tag)])
            .await?;
        Ok(latest_records(&records, now_ms)
            .into_iter()
            .filter_map(|(_, name)| layout::split_tagged(name))
            .filter(|(found, _)| *found == tag)
            .map(|(_, key)| key.to_owned())
            .collect())
    }

    /// The records of `segments` of one index of `cache`, read with its
    /// anchor in one round trip. A segment missing or from another anchor
    /// rotates the anchor (its entries are misses from now on).
    async fn read(
        &self,
        cache: &str,
        index: Index,
        segments: &[u32],
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let mut gets = vec![Get::new(self.layout.anchor(cache))];
        gets.extend(
            segments
                .iter()
                .map(|&n| Get::new(self.segment_key(cache, index, n))),
        );
        let answers = self.servers.run_many(self.home, "mg index", gets).await?;
        let Some(anchor) = answers[0].value.as_deref().and_then(read_anchor) else {
            // No anchor: nothing was stored under one (or it went, which the
            // poller sees and answers by emptying memory).
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        for answer in &answers[1..] {
            match answer.value.as_deref().and_then(layout::parse_segment) {
                Some((found, lines)) if found == anchor => {
                    records.extend(
                        lines
                            .into_iter()
                            .map(|(keep_until, name)| (keep_until, name.to_owned())),
                    );
                }
                _ => {
                    self.lost(cache, anchor).await;
                    return Ok(Vec::new());
                }
            }
        }
        Ok(records)
    }

    /// A segment of `cache` under `anchor` was lost: rotate.
    async fn lost(&self, cache: &str, anchor: u64) {
        self.losses.segments.fetch_add(1, Ordering::Relaxed);
        self.servers.warn(&format!(
            "memcached: an index segment of cache `{cache}` was lost (evicted, or the server restarted); \
             its shared entries are dropped"
        ));
        if self.rotate(cache, Rotate::Replace(anchor)).await.is_err() {
            self.mark_dirty(cache, "its index was lost");
        }
    }

    fn segment_of(&self, name: &str) -> u32 {
        u32::try_from(layout::stable_hash(name.as_bytes()) % u64::from(self.segments)).unwrap_or(0)
    }

    fn segment_key(&self, cache: &str, index: Index, segment: u32) -> String {
        match index {
            Index::Registry => self.layout.registry(cache, segment),
            Index::Tags => self.layout.tags(cache, segment),
        }
    }
}

/// The last record of each name (appends are in order, so the last one is
/// the latest store), of those kept at `now_ms`.
fn latest_records<N: AsRef<str>>(records: &[(u64, N)], now_ms: u64) -> Vec<(u64, &str)> {
    let mut seen = HashSet::new();
    let mut latest: Vec<(u64, &str)> = records
        .iter()
        .rev()
        .filter(|(_, name)| seen.insert(name.as_ref()))
        .filter(|(keep_until, _)| *keep_until > now_ms)
        .map(|(keep_until, name)| (*keep_until, name.as_ref()))
        .collect();
    latest.reverse();
    latest
}

/// The anchor an anchor item holds.
pub(crate) fn read_anchor(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.try_into().ok()?))
}

fn random_anchor() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_record_of_a_name_wins() {
        let records = vec![(10, "a"), (20, "b"), (5, "a"), (30, "c"), (40, "b")];
        assert_eq!(
            latest_records(&records, 0),
            [(5, "a"), (30, "c"), (40, "b")]
        );
        assert_eq!(latest_records(&records, 6), [(30, "c"), (40, "b")]);
    }
}
