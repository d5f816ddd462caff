//! The in-memory store's index of its keys: key → the entry stored under
//! it, and tag → keys. Purging a tag touches only the values that carry
//! it, and a dump walks the index instead of the cache's iterator (which
//! clones every key and value).

use crate::store::entry::Entry;
use crate::store::WalkPart;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Shards, so that concurrent stores (a restore's workers, the request
/// path) rarely wait for one another.
const SHARDS: usize = 64;

/// Key → (the entry, whose tags it was indexed under), and tag → keys,
/// split into shards by key: everything about one key lives in one shard,
/// so each operation on a key is atomic.
///
/// The store calls [`add`](Self::add) before a value goes in (which
/// unindexes the value it replaces) and [`removed`](Self::removed) when one
/// goes out (evicted, expired, deleted). The index holds the entry it
/// indexed, so its address tells a replaced value from the one that
/// replaced it (no other value can reuse the address meanwhile): the late
/// notice of an old value never unindexes the new one.
#[derive(Debug)]
pub(crate) struct KeyIndex {
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    entries: Map<Arc<str>, Entry>,
    keys_by_tag: Map<Arc<str>, Keys>,
    pairs: u64,
}

/// The shards' maps and sets hash with aHash under random keys, as the
/// store's own table does for the same keys: as hard for a client to aim
/// collisions at, and cheaper than SipHash (a stored miss under eviction
/// hashes seven keys here).
type Hasher = ahash::RandomState;
type Map<K, V> = HashMap<K, V, Hasher>;
type Set<K> = HashSet<K, Hasher>;

/// The keys under one tag. Most tags are a URI's term, carried by one key:
/// those keep it inline rather than in a set of their own. The set is boxed
/// so that the map's slots, most of which hold one key, stay small.
#[derive(Debug)]
#[allow(clippy::box_collection)] // 8 bytes where the set is 64: the map's slots stay 32.
enum Keys {
    One(Arc<str>),
    Many(Box<Set<Arc<str>>>),
}

impl Default for KeyIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl KeyIndex {
    /// The shard of `key`, chosen by FNV-1a: cheap, and keys an attacker
    /// crowds into one shard only share a lock (each shard's maps hash
    /// with a random key).
    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        let index = usize::try_from(hash % SHARDS as u64).unwrap_or(0);
        lock(&self.shards[index])
    }

    /// Indexes `value` under `key`, replacing what `key` was indexed for;
    /// whether it was indexed for a value.
    pub(crate) fn add(&self, key: &Arc<str>, value: &Entry) -> bool {
        let mut shard = self.shard(key);
        let replaced = shard.entries.insert(Arc::clone(key), value.clone());
        if let Some(replaced) = &replaced {
            shard.unindex_tags(key, replaced);
        }
        for tag in value.tags() {
            shard.index_tag(tag, key);
        }
        shard.pairs += value.tags().len() as u64;
        replaced.is_some()
    }

    /// Unindexes `key` if `value` is what it is indexed for; whether it was.
    pub(crate) fn removed(&self, key: &str, value: &Entry) -> bool {
        let mut shard = self.shard(key);
        let indexed = shard
            .entries
            .get(key)
            .is_some_and(|indexed| indexed.address() == value.address());
        if indexed {
            shard.unindex(key);
        }
        indexed
    }

    /// The keys indexed under `tag`.
    pub(crate) fn keys(&self, tag: &str) -> Vec<Arc<str>> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            match lock(shard).keys_by_tag.get(tag) {
                Some(Keys::One(key)) => keys.push(Arc::clone(key)),
                Some(Keys::Many(set)) => keys.extend(set.iter().cloned()),
                None => {}
            }
        }
        keys
    }

    /// Visits every indexed (key, entry) until `visit` returns `false`. A
    /// shard's pairs are copied out (pointers only: a 64th of the keys at a
    /// time) so that no shard is held while visiting; a value stored or
    /// removed during the walk may or may not be visited.
    pub(crate) fn walk(&self, part: WalkPart, visit: &mut dyn FnMut(&str, &Entry) -> bool) {
        let mut batch: Vec<(Arc<str>, Entry)> = Vec::new();
        let shards = self.shards.iter().enumerate();
        for (_, shard) in shards.filter(|(n, _)| part.holds(*n)) {
            batch.extend(
                lock(shard)
                    .entries
                    .iter()
                    .map(|(key, entry)| (Arc::clone(key), entry.clone())),
            );
            for (key, entry) in batch.drain(..) {
                if !visit(&key, &entry) {
                    return;
                }
            }
        }
    }

    /// How many (tag, key) pairs the index holds.
    pub(crate) fn pairs(&self) -> u64 {
        self.shards.iter().map(|shard| lock(shard).pairs).sum()
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            *lock(shard) = Shard::default();
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A shard holds no invariant a panic could break halfway that a later
    // call cannot live with: keep using it.
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shard {
    fn index_tag(&mut self, tag: &Arc<str>, key: &Arc<str>) {
        match self.keys_by_tag.get_mut(tag) {
            None => {
                self.keys_by_tag
                    .insert(Arc::clone(tag), Keys::One(Arc::clone(key)));
            }
            Some(Keys::One(only)) if *only == *key => {}
            Some(keys @ Keys::One(_)) => {
                let Keys::One(only) = std::mem::replace(keys, Keys::Many(Box::default())) else {
                    unreachable!("matched as one key just above");
                };
                if let Keys::Many(set) = keys {
                    set.insert(only);
                    set.insert(Arc::clone(key));
                }
            }
            Some(Keys::Many(set)) => {
                set.insert(Arc::clone(key));
            }
        }
    }

    fn unindex(&mut self, key: &str) {
        if let Some(indexed) = self.entries.remove(key) {
            self.unindex_tags(key, &indexed);
        }
        if sparse(self.entries.len(), self.entries.capacity()) {
            self.entries.shrink_to(2 * self.entries.len());
        }
    }

    /// Takes `key` out of the key sets of the tags `indexed` carries.
    fn unindex_tags(&mut self, key: &str, indexed: &Entry) {
        let tags = indexed.tags();
        self.pairs -= tags.len() as u64;
        for tag in tags {
            if self
                .keys_by_tag
                .get_mut(tag)
                .is_some_and(|keys| keys.remove(key))
            {
                self.keys_by_tag.remove(tag);
            }
        }
        // Evictions churn through the maps: once they have shrunk, give
        // back what they no longer need.
        if sparse(self.keys_by_tag.len(), self.keys_by_tag.capacity()) {
            self.keys_by_tag.shrink_to(2 * self.keys_by_tag.len());
        }
    }
}

impl Keys {
    /// Takes `key` out; whether no key is left. A set left with one key is
    /// that key again, and a sparse one gives back its room.
    fn remove(&mut self, key: &str) -> bool {
        match self {
            Self::One(only) => &**only == key,
            Self::Many(set) => {
                set.remove(key);
                if sparse(set.len(), set.capacity()) {
                    set.shrink_to(2 * set.len());
                }
                let only = match set.len() {
                    0 => return true,
                    1 => set.drain().next(),
                    _ => None,
                };
                if let Some(only) = only {
                    *self = Self::One(only);
                }
                false
            }
        }
    }
}

/// Whether a hash table of `len` keys in room for `capacity` should give
/// room back: once it holds a quarter of it. Halving it then leaves it at
/// most four times its live slots (its weight counts them at the usual
/// load), and a key coming and going cannot make it resize back and forth.
fn sparse(len: usize, capacity: usize) -> bool {
    capacity > 16 && len <= capacity / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entry::CachedResponse;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use std::time::{Duration, SystemTime};

    fn tagged(tags: &[&str]) -> Entry {
        let tags: Vec<Arc<str>> = tags.iter().map(|tag| Arc::from(*tag)).collect();
        Entry::from(
            CachedResponse::new(
                StatusCode::OK,
                &HeaderMap::new(),
                Bytes::new(),
                SystemTime::UNIX_EPOCH,
                Duration::from_secs(1),
            )
            .with_tags(Arc::from(tags)),
        )
    }

    fn sorted(mut keys: Vec<Arc<str>>) -> Vec<Arc<str>> {
        keys.sort();
        keys
    }

    #[test]
    fn replacing_a_value_reindexes_its_key_and_late_notices_are_ignored() {
        let index = KeyIndex::default();
        let key: Arc<str> = Arc::from("/a GET");
        let old = tagged(&["x", "y"]);
        index.add(&key, &old);
        let new = tagged(&["y", "z"]);
        index.add(&key, &new);
        assert!(index.keys("x").is_empty());
        assert_eq!(index.keys("z"), vec![Arc::clone(&key)]);
        // A late notice for the replaced value changes nothing.
        index.removed(&key, &old);
        assert_eq!(index.keys("y"), vec![Arc::clone(&key)]);
        assert_eq!(index.pairs(), 2);
        index.removed(&key, &new);
        assert!(index.keys("y").is_empty());
        assert_eq!(index.pairs(), 0);
    }

    #[test]
    fn a_tag_grows_from_one_key_to_many_and_back() {
        let index = KeyIndex::default();
        let keys: Vec<Arc<str>> = (0..200).map(|n| Arc::from(format!("/k{n} GET"))).collect();
        let entries: Vec<Entry> = keys.iter().map(|_| tagged(&["shared"])).collect();
        for (key, entry) in keys.iter().zip(&entries) {
            index.add(key, entry);
        }
        assert_eq!(sorted(index.keys("shared")), sorted(keys.clone()));
        assert_eq!(index.pairs(), 200);
        for (key, entry) in keys.iter().zip(&entries).skip(1) {
            index.removed(key, entry);
        }
        assert_eq!(index.keys("shared"), vec![Arc::clone(&keys[0])]);
        index.removed(&keys[0], &entries[0]);
        assert!(index.keys("shared").is_empty());
        assert_eq!(index.pairs(), 0);
    }

    #[test]
    fn tables_give_back_room_as_keys_go() {
        let index = KeyIndex::default();
        let keys: Vec<Arc<str>> = (0..64 * 200)
            .map(|n| Arc::from(format!("/k{n} GET")))
            .collect();
        let entries: Vec<Entry> = keys.iter().map(|_| tagged(&["shared"])).collect();
        for (key, entry) in keys.iter().zip(&entries) {
            index.add(key, entry);
        }
        let room = |index: &KeyIndex| -> (usize, usize) {
            let shards = index.shards.iter().map(|shard| lock(shard));
            shards.fold((0, 0), |(entries, set), shard| {
                let set_room = match shard.keys_by_tag.get("shared") {
                    Some(Keys::Many(keys)) => keys.capacity(),
                    _ => 0,
                };
                (entries + shard.entries.capacity(), set + set_room)
            })
        };
        let (full_entries, full_set) = room(&index);
        // Leave one key in a hundred.
        for (n, (key, entry)) in keys.iter().zip(&entries).enumerate() {
            if n % 100 != 0 {
                index.removed(key, entry);
            }
        }
        let (entries_room, set_room) = room(&index);
        assert!(
            entries_room * 8 < full_entries,
            "{entries_room} of {full_entries}"
        );
        assert!(set_room * 8 < full_set, "{set_room} of {full_set}");
        assert_eq!(index.keys("shared").len(), keys.len() / 100);
        // A set down to one key holds it inline again.
        for (n, (key, entry)) in keys.iter().zip(&entries).enumerate() {
            if n % 100 == 0 && n > 0 {
                index.removed(key, entry);
            }
        }
        let held: Vec<bool> = index
            .shards
            .iter()
            .filter_map(|shard| {
                let shard = lock(shard);
                shard
                    .keys_by_tag
                    .get("shared")
                    .map(|keys| matches!(keys, Keys::One(_)))
            })
            .collect();
        assert_eq!(held, vec![true], "one shard holds the last key, inline");
        assert_eq!(index.keys("shared"), vec![Arc::clone(&keys[0])]);
    }

    #[test]
    fn a_walk_visits_every_key_once_and_can_stop() {
        let index = KeyIndex::default();
        let count = 3 * SHARDS + 17;
        for n in 0..count {
            let tags: &[&str] = if n % 2 == 0 { &["even"] } else { &[] };
            index.add(&Arc::from(format!("/k{n} GET")), &tagged(tags));
        }
        let mut seen = HashSet::new();
        index.walk(WalkPart::WHOLE, &mut |key, _| {
            assert!(seen.insert(key.to_owned()), "{key} visited twice");
            true
        });
        assert_eq!(seen.len(), count);
        // Split any number of ways, the parts hold every key once.
        for ways in [1, 2, 7, SHARDS, SHARDS + 5] {
            let mut parted = HashSet::new();
            for part in WalkPart::split(ways) {
                index.walk(part, &mut |key, _| {
                    assert!(parted.insert(key.to_owned()), "{key} in two parts");
                    true
                });
            }
            assert_eq!(parted, seen, "split {ways} ways");
        }
        let mut visited = 0;
        index.walk(WalkPart::WHOLE, &mut |_, _| {
            visited += 1;
            visited < 10
        });
        assert_eq!(visited, 10);
        index.clear();
        index.walk(WalkPart::WHOLE, &mut |key, _| {
            panic!("{key} outlived clear")
        });
    }
}
