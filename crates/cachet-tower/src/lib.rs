//! Tower middleware for cachet: caches the responses of an axum or hyper
//! service according to regex URL rules.
//!
//! [`CacheLayer`] wraps a service with [`CacheService`]. For each request it
//! asks the [`Cache`](cachet_core::Cache) for a plan:
//!
//! - no rule matches (or the method is not cached): the request goes straight
//!   to the inner service, and its future is polled without any allocation;
//! - a fresh entry exists: the response comes from memory with `Age` and
//!   `X-Cache: HIT`, and the inner service is not called;
//! - otherwise the inner service answers (`X-Cache: MISS`) and the response is
//!   stored if the policy allows it and its body fits the rule's `max_body`;
//!   larger bodies are passed on as they are.
//!
//! A store failure never fails a request: it reads as a miss. The service
//! keeps the inner service's error type.
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
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! let second = app.oneshot(http::Request::get("/products").body(axum::body::Body::empty())?).await?;
//! assert_eq!(second.headers()["x-cache"], "HIT");
//! assert_eq!(second.headers()["age"], "0");
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
//! refusing responses that carry `Vary: Accept-Encoding`:
//!
//! ```text
//! Router::new().route(..)
//!     .layer(CacheLayer::new(cache))   // inner
//!     .layer(auth_layer)               // sets UserId
//!     .layer(CompressionLayer::new())  // outer
//! ```

mod body;
mod future;
mod layer;
mod service;

#[doc(inline)]
pub use self::{
    body::ResponseBody, future::ResponseFuture, layer::CacheLayer, service::CacheService,
};
