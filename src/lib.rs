//! cachet: a server-side HTTP response cache for Rust web services.
//!
//! Add one layer to an axum or hyper app, write a few regex URL rules in
//! TOML, and hot GET endpoints are answered from memory — per user where the
//! data is private.
//!
//! This facade re-exports the crates of the workspace:
//!
//! | feature | default | what it brings |
//! |---|---|---|
//! | — | always | [`cachet-core`](cachet_core): the [`Cache`] handle, rules, named caches, and the modules [`config`], [`stats`], [`values`] (the programmatic cache), [`persistence`] (dumps), [`store`] and [`adapter`] (the step API); [`admin`], the management API; [`Config`], a whole file read once |
//! | `macros` | yes | [`cached`] and [`cache_evict`]: cache an `async fn`'s result, evict around it (with [`install`], the process-wide handle they use) |
//! | `tower` | yes | [`CacheLayer`] and [`InvalidationLayer`] for tower/axum/hyper; `cachet::tower` has their services, futures and bodies |
//! | `actix` | no | `cachet::actix`: the [`cachet-actix`](https://docs.rs/cachet-actix) middleware (`ResponseCache`, `CacheInvalidation`) for actix-web 4 |
//! | `redis` | no | `cachet::redis`: the [`cachet-redis`](https://docs.rs/cachet-redis) tier — one Redis shared by every instance, purges that reach them all |
//! | `memcached` | no | `cachet::memcached`: the [`cachet-memcached`](https://docs.rs/cachet-memcached) tier — Memcached servers shared by every instance, with key listing, tags and purges that reach them all |
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use cachet::{Cache, CacheLayer};
//!
//! let cache = Cache::from_toml(r#"
//!     [caches.url]
//!     max_bytes = "64MiB"
//!     ttl = "1h"
//!
//!     [[rules]]
//!     path = '^/api/urls/$'
//!     cache = "url"
//!     ttl = "5m"
//!     vary_by_user = true
//! "#).expect("valid rules");
//!
//! let app: Router = Router::new()
//!     .route("/api/urls/", get(|| async { "[]" }))
//!     .layer(CacheLayer::new(cache.clone()));
//! ```
//!
//! # Minimum supported Rust version
//!
//! Rust 1.85 (`rust-version` in `Cargo.toml`). Raising it is not a breaking
//! change.

pub use cachet_core::{adapter, clock, config, persistence, stats, store, values};
pub use cachet_core::{
    cache_headers, never_cache, Cache, CacheBuilder, CacheHeaders, CacheKey, CacheSpec, CacheTags,
    ConfigError, Identity, Rule, SoftPurge, UserId, Validators, Visibility, CACHE_TAG,
};

#[cfg(feature = "macros")]
mod function_cache;
mod setup;

#[cfg(feature = "macros")]
pub use crate::function_cache::{cache_evict, cached};
#[doc(hidden)]
pub use cachet_core::memo as __private;
pub use cachet_core::{install, installed};

pub use crate::setup::{Built, Config};

/// The management API (`cachet-admin`): the framework-free [`Admin`](admin::Admin)
/// handler and its [`AdminConfig`](admin::AdminConfig), and, with the
/// `tower` feature, [`AdminService`](admin::AdminService) to mount with
/// axum's `Router::nest_service`.
pub mod admin {
    pub use cachet_admin::*;
    #[cfg(feature = "tower")]
    #[doc(inline)]
    pub use cachet_tower::AdminService;
}

/// The Tower layers (feature `tower`, default): `cachet::tower::CacheLayer`
/// and `InvalidationLayer` (also at the crate root), `HandlerLayer` (see
/// [`route`]), their services, futures and bodies, and `AdminService`.
#[cfg(feature = "tower")]
pub use cachet_tower as tower;

/// Caching for one axum handler under a [`Rule`] written in code — no TOML,
/// no path to match (Django's `cache_page` on one view). The same engine,
/// semantics, invalidation and stats as a configured rule; mutations
/// through the layer clear its entries. actix-web's counterpart is
/// `cachet::actix::HandlerCache`.
///
/// ```
/// use axum::{routing::get, Router};
/// use cachet::{Cache, Rule};
/// use std::time::Duration;
///
/// let cache = Cache::builder().build()?;
/// let me = cachet::route(&cache, &Rule::handler().ttl(Duration::from_secs(600)).vary_by_user(true))?;
/// let app: Router = Router::new().route("/api/me", get(|| async { "me" }).layer(me));
/// # Ok::<(), cachet::ConfigError>(())
/// ```
#[cfg(feature = "tower")]
pub fn route(cache: &Cache, rule: &Rule) -> Result<cachet_tower::HandlerLayer, ConfigError> {
    cachet_tower::HandlerLayer::new(cache, rule)
}
#[cfg(feature = "tower")]
#[doc(inline)]
pub use cachet_tower::{CacheLayer, InvalidationLayer};

/// The actix-web 4 middleware: `cachet::actix::ResponseCache` and
/// `cachet::actix::CacheInvalidation` (feature `actix`).
#[cfg(feature = "actix")]
pub use cachet_actix as actix;

/// The shared Redis tier (feature `redis`): `cachet::redis::install`
/// puts it under a [`CacheBuilder`] whose configuration has a `[redis]`
/// section (or when `CACHET_REDIS_URL` / `REDIS_URL` is set).
#[cfg(feature = "redis")]
pub use cachet_redis as redis;

/// The shared Memcached tier (feature `memcached`):
/// `cachet::memcached::install` puts it under a [`CacheBuilder`] whose
/// configuration has a `[memcached]` section (or when
/// `CACHET_MEMCACHED_SERVERS` / `MEMCACHED_HOST` is set).
#[cfg(feature = "memcached")]
pub use cachet_memcached as memcached;

// The README's examples use both frameworks: they run with `actix` on
// (the README's test command), so that a plain `cargo test` passes too.
#[cfg(all(doctest, feature = "actix"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(all(doctest, feature = "actix", feature = "macros"))]
#[doc = include_str!("../docs/migrating-from-django.md")]
struct MigratingFromDjangoDoctests;
