//! The framework-free engine of cachet, a server-side HTTP response cache.
//!
//! This crate holds everything that does not depend on a web framework: URL
//! [rules](rules) compiled from TOML or a builder, cache [keys](key), the
//! storage [policy] and [freshness] of RFC 9111, [conditional] requests, the
//! [`Store`](store::Store) trait and its in-memory [moka](store::MokaStore)
//! implementation, named caches with byte budgets, [statistics](stats), the
//! key-tracking operations, and [header helpers](response_headers) for
//! handlers. Adapters (`cachet-tower`, `cachet-actix`) call the
//! [request-path](request_path) steps of [`Cache`] for routing and hits, and
//! hand everything else to the shared [`exchange`] with the origin.
//!
//! Requests are read through the [`RequestHead`] view, so an adapter never
//! copies a header map to consult the cache. Responses are `http` 1.x types.
//! Time is read from an injectable [`Clock`].
//!
//! # Example
//!
//! ```
//! use cachet_core::{Lookup, MockClock, Route};
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
//! let Route::Cache(plan) = cache.route(&alice) else { unreachable!() };
//! let mut headers = http::HeaderMap::new();
//! let storable = cache.check_storable(&plan, http::StatusCode::OK, &headers).unwrap();
//! cache.store(&plan, storable, &alice, http::StatusCode::OK, &mut headers, "alice's page".into()).await;
//!
//! // Bob's key differs from Alice's, so he never sees her page.
//! let Route::Cache(bobs) = cache.route(&bob) else { unreachable!() };
//! assert!(matches!(cache.lookup(&bobs, &bob).await, Lookup::Miss(_)));
//! assert!(matches!(cache.lookup(&plan, &alice).await, Lookup::Hit(_)));
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
//! `Authorization` or `Cookie` unless the response says `public` or
//! `s-maxage`, nor an error a client can provoke (4xx but 404/410, 5xx)
//! unless the rule lists it. Rules match, and keys hold, the canonical
//! target ([`Plan::target`], which the adapter forwards); paths origins
//! read differently, GETs with a body, method-override headers and
//! `Connection`-named headers bypass the cache. With `vary_by_user`,
//! identities are hashed with a keyed BLAKE3 hash; a request without one
//! gets the shared (anonymous) entry, and a request with a credential but
//! no clear identity bypasses. See `docs/security.md`.

pub mod cache_control;
pub mod clock;
pub mod coalesce;
pub mod conditional;
pub mod config;
pub mod directives;
pub mod entry;
pub mod exchange;
pub mod freshness;
pub mod identity;
pub mod invalidation;
pub mod key;
pub mod outcome;
pub mod policy;
pub mod request;
pub mod request_path;
pub mod response_headers;
pub mod rules;
pub mod stats;
pub mod store;
pub mod tags;
mod target;
pub mod values;
mod variants;

mod cache;
mod error;
#[cfg(test)]
mod test_support;
mod units;
mod weight;

pub use crate::cache::{Cache, CacheBuilder, StoredKey, DEFAULT_BYPASS_HEADERS};
pub use crate::cache_control::CacheControl;
pub use crate::clock::{Clock, MockClock, SharedClock, SystemClock};
pub use crate::coalesce::{Fetch, Landing, Landmark, Turn, Wait};
pub use crate::conditional::{answers_not_modified, Validators, CLIENT_PRECONDITIONS};
pub use crate::directives::RequestDirectives;
pub use crate::entry::{CachedResponse, Stored, StoredValue, VariantIndex};
pub use crate::error::{ConfigError, StoreError};
pub use crate::freshness::Freshness;
pub use crate::identity::{Identity, IdentityHash};
pub use crate::invalidation::Invalidation;
pub use crate::key::{CacheKey, KeyBuilder};
pub use crate::outcome::Outcome;
pub use crate::outcome::{Forward, StatusHeaders};
pub use crate::policy::NotStorable;
pub use crate::request::{RequestHead, UserId};
pub use crate::request_path::{Answer, Hit, Lookup, Plan, Revalidation, Route, Storable, Storage};
pub use crate::response_headers::{cache_headers, never_cache, CacheHeaders, Visibility};
pub use crate::rules::{CacheSpec, CompiledRule, InvalidateScope, Rule, RuleSet};
pub use crate::stats::{CacheStats, StatsSnapshot};
pub use crate::tags::{CacheTags, CACHE_TAG};
pub use crate::values::{Codec, Evict, ValueError, ValueKey};
