//! Tower middleware for cachet: caches the responses of an axum or hyper
//! service according to regex URL rules.
//!
//! [`CacheLayer`] wraps a service with [`CacheService`]. For each request it
//! asks the [`Cache`](cachet_core::Cache) for a plan:
//!
//! - no rule matches: the request goes straight to the inner service, and its
//!   future is polled without any allocation;
//! - a rule matches but the request cannot use the cache (a method the rule
//!   does not cache, a range request, a body on a GET, a bypass header such
//!   as `X-HTTP-Method-Override`, a path origins read differently): it goes
//!   to the inner service and the response says so in `Cache-Status`;
//! - a fresh entry exists that the request's directives accept: the response
//!   comes from memory (304 when the client's `If-None-Match` or
//!   `If-Modified-Since` shows its copy is current) with `Age` and
//!   `Cache-Status: cachet; hit; ttl=N`, and the inner service is not called;
//! - a stale entry within its `stale-while-revalidate` window is served at
//!   once, and one background request per key refreshes it (spawned on the
//!   current Tokio runtime);
//! - otherwise one request per key goes to the inner service while the
//!   others for that key wait for it (coalescing); its response
//!   (`Cache-Status: cachet; fwd=uri-miss; fwd-status=200; stored`) is
//!   stored if RFC 9111 and the rule allow it and its body fits the rule's
//!   `max_body`, and the waiters are answered from it. Bodies without a
//!   length are streamed to the client while recorded; larger bodies pass on
//!   as they are. When the inner service fails or answers 5xx for an entry
//!   within its `stale-if-error` window, the entry answers.
//!   `only-if-cached` misses get a 504 without reaching the inner service.
//!
//! Rules match, and keys hold, the request's canonical path (`/api/m%65` is
//! `/api/me`). Inside a router (`Router::layer`) routing has already
//! happened on the request's own path, so a request whose path is not
//! canonical bypasses the cache. Wrapped around the whole application
//! (`CacheLayer::new(cache).rewrite_paths(true).layer(router)`), the layer
//! hands the inner service the canonical target instead and caches it.
//!
//! A store failure never fails a request: it reads as a miss. The service
//! keeps the inner service's error type. It needs a Tokio runtime with its
//! timer enabled (for the lock timeout), as `#[tokio::main]` provides.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use cachet_core::Cache;
//! use cachet_tower::CacheLayer;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::from_toml(r#"
//!     [[rules]]
//!     path = '^/products$'
//!     ttl = "30s"
//! "#)?;
//! let app = Router::new()
//!     .route("/products", get(|| async { "[\"tea\", \"cake\"]" }))
//!     .layer(CacheLayer::new(cache));
//!
//! let first = app.clone().oneshot(http::Request::get("/products").body(axum::body::Body::empty())?).await?;
//! assert_eq!(first.headers()["cache-status"], "cachet; fwd=uri-miss; fwd-status=200; stored");
//! let second = app.oneshot(http::Request::get("/products").body(axum::body::Body::empty())?).await?;
//! assert!(second.headers()["cache-status"].to_str()?.starts_with("cachet; hit; ttl="));
//! assert_eq!(second.headers()["age"], "0");
//! # Ok(())
//! # }
//! ```
//!
//! # Invalidation
//!
//! [`InvalidationLayer`] clears entries after a successful mutation: the
//! target URI, same-origin `Location`/`Content-Location`, the rule's
//! `invalidates` regexes and the response's tags. Put it in the same stack
//! as the cache layer; either order works (the cache layer passes unsafe
//! methods through untouched), and outermost is simplest to reason about:
//!
//! ```
//! use axum::{routing::get, Router};
//! use cachet_core::Cache;
//! use cachet_tower::{CacheLayer, InvalidationLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::from_toml("[[rules]]\npath = '^/materials/'\nttl = \"5m\"\n")?;
//! let app = Router::new()
//!     .route("/materials/{id}", get(|| async { "steel" }).put(|| async {
//!         // A handler can also name what it changed: `Cache-Tag: material:42`.
//!         "saved"
//!     }))
//!     .layer(
//!         ServiceBuilder::new()
//!             .layer(InvalidationLayer::new(cache.clone()))
//!             .layer(CacheLayer::new(cache.clone())),
//!     );
//! let get = || http::Request::get("/materials/42").body(axum::body::Body::empty());
//! app.clone().oneshot(get()?).await?;
//! assert_eq!(cache.keys().await?.len(), 1);
//! app.clone()
//!     .oneshot(http::Request::put("/materials/42").body(axum::body::Body::empty())?)
//!     .await?;
//! assert!(cache.keys().await?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Placement
//!
//! With axum, a layer added later wraps the ones added before it. Add
//! `CacheLayer` *before* the layer that sets the user's identity, so that the
//! [`UserId`](cachet_core::UserId) extension is there when the cache runs, and
//! before compression, so the cache keeps one uncompressed body instead of
//! one variant per `Accept-Encoding` value (`Vary: Accept-Encoding`):
//!
//! ```text
//! Router::new().route(..)
//!     .layer(CacheLayer::new(cache))   // inner
//!     .layer(auth_layer)               // sets UserId
//!     .layer(CompressionLayer::new())  // outer
//! ```

mod admin;
mod cache;
mod handler;
mod invalidation;

#[doc(inline)]
pub use cachet_core::adapter::ResponseBody;

pub use self::admin::AdminService;
pub use self::cache::{CacheLayer, CacheService, ResponseFuture};
pub use self::handler::HandlerLayer;
pub use self::invalidation::{InvalidationFuture, InvalidationLayer, InvalidationService};
