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
//! | — | always | [`cachet-core`](cachet_core): rules, keys, policy, stores, stats |
//! | `tower` | yes | [`CacheLayer`]/[`CacheService`] and [`InvalidationLayer`]/[`InvalidationService`] for tower/axum/hyper |
//! | `actix` | no | `cachet::actix`: the [`cachet-actix`](https://docs.rs/cachet-actix) middleware (`ResponseCache`, `CacheInvalidation`) for actix-web 4 |
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
//! The current stable release and the three before it. Raising it is not a
//! breaking change.

pub use cachet_core::*;

#[cfg(feature = "tower")]
#[doc(inline)]
pub use cachet_tower::{
    CacheLayer, CacheService, InvalidationFuture, InvalidationLayer, InvalidationService,
    ResponseBody, ResponseFuture,
};

/// The actix-web 4 middleware: [`ResponseCache`](cachet_actix::ResponseCache)
/// and [`CacheInvalidation`](cachet_actix::CacheInvalidation).
#[cfg(feature = "actix")]
pub use cachet_actix as actix;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
