//! The in-memory store's tag index: tag → keys, so that purging a tag
//! touches only the values that carry it.

use crate::store::entry::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Tag → keys, and key → (the indexed value, its tags) to undo it.
///
/// The store calls [`add`](Self::add) before a value goes in and
/// [`removed`](Self::removed) from moka's eviction listener when one goes
/// out (evicted, expired, deleted, replaced). The value's address tells a
/// replaced value from the one that replaced it, so the late notice of an
/// old value never unindexes the new one. Never call the moka cache while
/// holding the lock: its listener takes the lock too.
#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys_by_tag: HashMap<Arc<str>, HashSet<Arc<str>>>,
    by_key: HashMap<Arc<str>, Indexed>,
    pairs: u64,
}

#[derive(Debug)]
struct Indexed {
    address: usize,
    tags: Vec<Arc<str>>,
}

impl TagIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The index holds no invariant a panic could break halfway that a
        // later call cannot live with: keep using it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Indexes `value` under `key`, replacing what `key` was indexed under.
    pub(crate) fn add(&self, key: &Arc<str>, value: &Entry) {
        let tags = value.tags();
        let mut inner = self.lock();
        inner.unindex(key);
        if tags.is_empty() {
            return;
        }
        for tag in tags {
            inner
                .keys_by_tag
                .entry(Arc::clone(tag))
                .or_default()
                .insert(Arc::clone(key));
        }
        inner.pairs += tags.len() as u64;
        inner.by_key.insert(
            Arc::clone(key),
            Indexed {
                address: value.address(),
                tags: tags.to_vec(),
            },
        );
    }

    /// Unindexes `key` if `value` is what it is indexed for.
    pub(crate) fn removed(&self, key: &Arc<str>, value: &Entry) {
        let mut inner = self.lock();
        if inner
            .by_key
            .get(key)
            .is_some_and(|indexed| indexed.address == value.address())
        {
            inner.unindex(key);
        }
    }

    /// The keys indexed under `tag`.
    pub(crate) fn keys(&self, tag: &str) -> Vec<Arc<str>> {
        self.lock()
            .keys_by_tag
            .get(tag)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many (tag, key) pairs the index holds.
    pub(crate) fn pairs(&self) -> u64 {
        self.lock().pairs
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        *self.lock() = Inner::default();
    }
}

impl Inner {
    fn unindex(&mut self, key: &Arc<str>) {
        let Some(indexed) = self.by_key.remove(key) else {
            return;
        };
        self.pairs -= indexed.tags.len() as u64;
        for tag in &indexed.tags {
            if let Some(keys) = self.keys_by_tag.get_mut(tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.keys_by_tag.remove(tag);
                }
            }
        }
    }
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
                HeaderMap::new(),
                Bytes::new(),
                SystemTime::UNIX_EPOCH,
                Duration::from_secs(1),
            )
            .with_tags(Arc::from(tags)),
        )
    }

    #[test]
    fn replacing_a_value_reindexes_its_key_and_late_notices_are_ignored() {
        let index = TagIndex::default();
        let key: Arc<str> = Arc::from("/a GET");
        let old = tagged(&["x", "y"]);
        index.add(&key, &old);
        let new = tagged(&["y", "z"]);
        index.add(&key, &new);
        assert!(index.keys("x").is_empty());
        assert_eq!(index.keys("z"), vec![Arc::clone(&key)]);
        // moka reports the replaced value after the fact: nothing changes.
        index.removed(&key, &old);
        assert_eq!(index.keys("y"), vec![Arc::clone(&key)]);
        assert_eq!(index.pairs(), 2);
        index.removed(&key, &new);
        assert!(index.keys("y").is_empty());
        assert_eq!(index.pairs(), 0);
    }
}
