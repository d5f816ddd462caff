//! The framework-free engine of cachet, a server-side HTTP response cache.
//!
//! This crate holds everything that does not depend on a web framework: URL
//! [rules](rules) compiled from TOML or a builder, cache [keys](key), the
//! storage [policy], the [`Store`](store::Store) trait and its in-memory
//! [moka](store::MokaStore) implementation, named caches with byte budgets,
//! [statistics](stats) and the key-tracking operations. Adapters
//! (`cachet-tower`, and an actix-web one) call the request-path steps of
//! [`Cache`]: [`plan`](Cache::plan), [`lookup`](Cache::lookup),
//! [`check_storable`](Cache::check_storable) and [`store`](Cache::store).
//!
//! Requests are read through the [`RequestHead`] view, so an adapter never
//! copies a header map to consult the cache. Responses are `http` 1.x types.
//! Time is read from an injectable [`Clock`].
//!
//! # Example
//!
//! ```
//! use cachet_core::{Cache, MockClock};
//! use std::time::Duration;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let clock = MockClock::new();
//! let cache = cachet_core::CacheBuilder::from_toml(r#"
//!     [[rules]]
//!     path = '^/api/'
//!     ttl = "1m"
//!     vary_by_user = true
//! "#)?
//! .clock(clock.clone())
//! .build()?;
//!
//! let alice = http::Request::get("/api/me").header("authorization", "Bearer alice").body(())?;
//! let bob = http::Request::get("/api/me").header("authorization", "Bearer bob").body(())?;
//! let plan = cache.plan(&alice).unwrap();
//! cache.store(&plan, http::StatusCode::OK, http::HeaderMap::new(), "alice's page".into()).await;
//!
//! // Bob's key differs from Alice's, so he never sees her page.
//! assert!(cache.lookup(&cache.plan(&bob).unwrap()).await.is_none());
//! assert!(cache.lookup(&plan).await.is_some());
//! assert_eq!(cache.stats().caches["default"].hits, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # Security: a shared cache
//!
//! Entries of rules without `vary_by_user` are served to everyone. For them
//! cachet never stores a response that has `Set-Cookie`, `Cache-Control:
//! private`, `no-store` or `no-cache`, nor a response to a request with
//! `Authorization` unless the response says `public`, `s-maxage` or
//! `must-revalidate` (RFC 9111 §3.5). With `vary_by_user`, identities are
//! hashed with a keyed BLAKE3 hash; a request without an identity gets the
//! shared (anonymous) entry and the shared-cache rules.

pub mod cache_control;
pub mod clock;
pub mod config;
pub mod entry;
pub mod identity;
pub mod key;
pub mod outcome;
pub mod policy;
pub mod request;
pub mod rules;
pub mod stats;
pub mod store;

mod cache;
mod error;
mod units;

pub use crate::cache::{Cache, CacheBuilder, Hit, Plan, StoredKey};
pub use crate::cache_control::CacheControl;
pub use crate::clock::{Clock, MockClock, SharedClock, SystemClock};
pub use crate::entry::CachedResponse;
pub use crate::error::{ConfigError, StoreError};
pub use crate::identity::{Identity, IdentityHash};
pub use crate::key::{CacheKey, KeyBuilder};
pub use crate::outcome::Outcome;
pub use crate::policy::NotStorable;
pub use crate::request::{RequestHead, UserId};
pub use crate::rules::{CacheSpec, CompiledRule, Rule, RuleSet};
pub use crate::stats::{CacheStats, StatsSnapshot};
