//! The process-wide handle: installed once at start-up, where `#[cached]`
//! and `#[cache_evict]` find the cache unless told otherwise (Django's
//! `from django.core.cache import cache`).

use super::Cache;
use std::sync::OnceLock;

static INSTALLED: OnceLock<Cache> = OnceLock::new();

/// Installs `cache` as the process-wide handle that `#[cached]` and
/// `#[cache_evict]` use when they name no `values`. Once per process: a
/// second call gives its cache back as `Err` and changes nothing.
///
/// Tests, and processes with several `Cache`s, are better served by an
/// explicit handle (`#[cached(values = self.cache.values(), …)]`): each
/// test then has a cache of its own.
///
/// ```
/// let cache = cachet_core::Cache::builder().build()?;
/// assert!(cachet_core::install(cache.clone()).is_ok());
/// assert!(cachet_core::install(cache).is_err(), "once per process");
/// assert!(cachet_core::installed().is_some());
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
pub fn install(cache: Cache) -> Result<(), Cache> {
    INSTALLED.set(cache)
}

/// The handle [`install`] installed, if any.
pub fn installed() -> Option<&'static Cache> {
    INSTALLED.get()
}
