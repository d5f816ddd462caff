//! Soft purges (Varnish's `purge.soft`, xkey's soft purge): the entries a
//! purge reaches become stale instead of being removed.
//!
//! The next request for a soft-purged entry revalidates it with its stored
//! validators (`If-None-Match`/`If-Modified-Since`: a 304 keeps the body),
//! while concurrent requests are served the stale copy within its
//! `stale-while-revalidate` window, and every request within
//! `stale-if-error` when the origin fails. An entry that would not be kept
//! stale (no validators and no stale windows) is removed, as a hard purge
//! does. On a Redis or Memcached tier every instance's copy goes too: the
//! stale copy replaces the entry through a removal.

use super::Cache;
use crate::store::StoreError;
use regex::Regex;

/// The purges of a [`Cache`], soft: see [`Cache::soft`].
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct SoftPurge<'a> {
    cache: &'a Cache,
}

impl Cache {
    /// The purges of this cache made soft: each makes the entries it
    /// reaches stale (so they are revalidated, and may be served stale
    /// meanwhile) instead of removing them. Counted apart in
    /// [`stats`](Self::stats) (`soft_purges`).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache = cachet_core::Cache::from_toml("[[rules]]\npath = '^/api/'")?;
    /// let softened = cache.soft().purge_tag("prices").await?;
    /// assert_eq!(softened, 0);
    /// assert_eq!(cache.stats().soft_purges["tag"], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn soft(&self) -> SoftPurge<'_> {
        SoftPurge { cache: self }
    }
}

impl SoftPurge<'_> {
    /// [`Cache::purge_tag`], soft; how many entries it reached.
    pub async fn purge_tag(&self, tag: &str) -> Result<usize, StoreError> {
        self.cache.purge_tag_as(tag, true).await
    }

    /// [`Cache::purge_uri`], soft.
    pub async fn purge_uri(&self, path: &str, query: Option<&str>) -> Result<usize, StoreError> {
        self.cache.purge_uri_as(path, query, true).await
    }

    /// [`Cache::purge_uri_on`], soft.
    pub async fn purge_uri_on(
        &self,
        host: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<usize, StoreError> {
        self.cache.purge_uri_on_as(host, path, query, true).await
    }

    /// [`Cache::delete`], soft: whether the key was there.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.cache.delete_as(key, true).await
    }

    /// [`Cache::delete_matching`], soft.
    pub async fn delete_matching(&self, pattern: &Regex) -> Result<usize, StoreError> {
        self.cache.delete_matching_as(pattern, true).await
    }
}
