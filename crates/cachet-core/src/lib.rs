//! The framework-free engine of cachet, a server-side HTTP response cache.
//!
//! This crate holds everything that does not depend on a web framework: URL
//! [rules](Rule) compiled from TOML or a builder, the [`Cache`] handle with
//! its named caches, byte budgets and [statistics](stats::StatsSnapshot), the
//! operations that list, delete, touch and purge entries, the programmatic
//! [`ValueCache`](values::ValueCache), and [header helpers](cache_headers) for handlers.
//! Framework integrations (`cachet-tower`, `cachet-actix`) are built on the
//! [`adapter`] step API; other stores plug in through the [`store`] trait.
//!
//! Time is read from an injectable [`Clock`](clock::Clock); responses are `http` 1.x types.
//!
//! # Example
//!
//! ```
//! use cachet_core::Cache;
//! use cachet_core::clock::MockClock;
//! use cachet_core::adapter::{self, Route};
//!
//! let clock = MockClock::new();
//! let cache = cachet_core::CacheBuilder::from_toml(r#"
//!     [caches.api]
//!     max_bytes = "64MiB"
//!     ttl = "5m"
//!
//!     [[rules]]
//!     path = '^/api/'
//!     cache = "api"
//!     ttl = "1m"
//!     vary_by_user = true
//! "#)?
//! .clock(clock)
//! .build()?;
//!
//! let alice = http::Request::get("/api/me").header("authorization", "Bearer alice").body(())?;
//! let bob = http::Request::get("/api/me").header("authorization", "Bearer bob").body(())?;
//! let (Route::Cache(alices), Route::Cache(bobs)) = (adapter::route(&cache, &alice), adapter::route(&cache, &bob)) else {
//!     unreachable!("the rule matches")
//! };
//! // Bob's key differs from Alice's, so he never sees her page; neither
//! // key holds a credential.
//! assert_ne!(alices.key(), bobs.key());
//! assert!(!alices.key().as_str().contains("alice"));
//! assert_eq!(cache.stats().caches["api"].max_bytes, 64 * 1024 * 1024);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security: a shared cache
//!
//! Entries of rules without `vary_by_user` are served to everyone. For them
//! cachet never stores a response that has `Set-Cookie`, `Cache-Control:
//! private`, `no-store` or `no-cache`, nor a response to a request with
//! `Authorization` or `Cookie` unless the response says `public` or
//! `s-maxage`, nor an error a client can provoke (4xx but 404/410, 5xx)
//! unless the rule lists it. Rules match, and keys hold, the canonical
//! target ([`Plan::target`](adapter::Plan::target), which the adapter
//! forwards); paths origins read differently, GETs with a body,
//! method-override headers and `Connection`-named headers bypass the cache.
//! With `vary_by_user`, identities are hashed with a keyed BLAKE3 hash; a
//! request without one gets the shared (anonymous) entry, and a request
//! with a credential but no clear identity bypasses. See `docs/security.md`.

pub mod adapter;
mod cache;
pub mod clock;
pub mod config;
mod engine;
mod identity;
mod key;
#[doc(hidden)]
pub mod memo;
pub mod persistence;
mod protocol;
mod request;
pub mod stats;
pub mod store;
#[cfg(test)]
mod test_support;
mod units;
pub mod values;
mod weight;

pub use crate::cache::{install, installed, Cache, CacheBuilder, SoftPurge};
pub use crate::config::rules::Rule;
pub use crate::config::ConfigError;
pub use crate::identity::Identity;
pub use crate::key::CacheKey;
pub use crate::protocol::conditional::Validators;
pub use crate::protocol::response_headers::{cache_headers, never_cache, CacheHeaders, Visibility};
pub use crate::protocol::tags::{CacheTags, CACHE_TAG};
pub use crate::request::UserId;
pub use crate::store::CacheSpec;
