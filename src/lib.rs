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
//! | — | always | [`cachet-core`](cachet_core): the [`Cache`] handle, rules, named caches, stats, the [`ValueCache`], [`store`]s and the [`adapter`] step API |
//! | `tower` | yes | [`CacheLayer`]/[`CacheService`] and [`InvalidationLayer`]/[`InvalidationService`] for tower/axum/hyper |
//! | `actix` | no | `cachet::actix`: the [`cachet-actix`](https://docs.rs/cachet-actix) middleware (`ResponseCache`, `CacheInvalidation`) for actix-web 4 |
//! | `redis` | no | `cachet::redis`: the [`cachet-redis`](https://docs.rs/cachet-redis) tier — one Redis shared by every instance, purges that reach them all |
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

pub use cachet_core::{adapter, store};

mod config;

pub use crate::config::{Built, Config};

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
pub use cachet_core::{
    cache_headers, config::ConfigFile, never_cache, parse_header_name, AutoDumpStatus, Cache,
    CacheBuilder, CacheHeaders, CacheKey, CacheSpec, CacheStats, CacheTags, Clock, Codec,
    CompiledRule, ConfigError, DumpError, DumpReport, DurationValue, Evict, Health, Identity,
    InvalidateScope, KeyStats, ListedKey, MockClock, OriginStats, Persistence, PersistenceConfig,
    RestoreReport, Rule, RuleSet, SharedClock, SizeValue, StatsSnapshot, StoreError, SystemClock,
    UserId, Validators, ValueCache, ValueError, ValueKey, ValuesInfo, Visibility, CACHE_TAG,
    DEFAULT_BYPASS_HEADERS,
};

#[cfg(feature = "tower")]
#[doc(inline)]
pub use cachet_tower::{
    CacheLayer, CacheService, InvalidationFuture, InvalidationLayer, InvalidationService,
    ResponseBody, ResponseFuture,
};

/// The actix-web 4 middleware: `cachet::actix::ResponseCache` and
/// `cachet::actix::CacheInvalidation` (feature `actix`).
#[cfg(feature = "actix")]
pub use cachet_actix as actix;

/// The shared Redis tier (feature `redis`): `cachet::redis::install`
/// puts it under a [`CacheBuilder`] whose configuration has a `[redis]`
/// section (or when `CACHET_REDIS_URL` / `REDIS_URL` is set).
#[cfg(feature = "redis")]
pub use cachet_redis as redis;

// The README's examples use both frameworks: they run with `actix` on
// (the README's test command), so that a plain `cargo test` passes too.
#[cfg(all(doctest, feature = "actix"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
