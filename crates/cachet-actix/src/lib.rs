//! actix-web 4 middleware for cachet: the same rules, the same engine and
//! the same behaviour as the Tower layer, for actix-web apps.
//!
//! [`ResponseCache`] answers cacheable requests from a
//! [`Cache`](cachet_core::Cache) and stores the inner service's responses;
//! [`CacheInvalidation`] clears entries after successful mutations. Both
//! take the same `Cache` (built once, outside `HttpServer::new`, and cloned
//! into each worker) and work on an [`App`](actix_web::App) or a
//! [`Scope`](actix_web::Scope). Every step past routing and the hit path —
//! coalescing, forwarding, `stale-if-error`, storing, recording streamed
//! bodies, answering preconditions — is the core's
//! [`adapter::serve`](cachet_core::adapter::serve), shared with `cachet-tower`; a
//! conformance table runs both adapters through the same scenarios.
//!
//! actix-web 4 is on `http` 0.2, the core on `http` 1.x. Routing and hits
//! read the actix request in place ([`ActixRequest`]); a hit converts only
//! the answer's headers. A request that goes to the inner service is
//! converted once, and so is its response.
//!
//! # Example
//!
//! ```
//! use actix_web::{test, web, App, HttpResponse};
//! use cachet_actix::{CacheInvalidation, ResponseCache};
//! use cachet_core::Cache;
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Cache::from_toml(r#"
//!     [[rules]]
//!     path = '^/products$'
//!     ttl = "30s"
//! "#)?;
//! let app = test::init_service(
//!     App::new()
//!         .app_data(web::Data::new(cache.clone())) // the handle, for handlers
//!         .wrap(ResponseCache::new(cache.clone()))
//!         .wrap(CacheInvalidation::new(cache.clone()))
//!         .route("/products", web::get().to(|| async { HttpResponse::Ok().body("[\"tea\", \"cake\"]") }))
//!         .route("/products", web::post().to(|| async { HttpResponse::Created().finish() })),
//! )
//! .await;
//!
//! let first = test::call_service(&app, test::TestRequest::get().uri("/products").to_request()).await;
//! assert_eq!(first.headers().get("cache-status").unwrap(), "cachet; fwd=uri-miss; fwd-status=200; stored");
//! let second = test::call_service(&app, test::TestRequest::get().uri("/products").to_request()).await;
//! assert!(second.headers().get("cache-status").unwrap().to_str()?.starts_with("cachet; hit; ttl="));
//! assert_eq!(test::read_body(second).await, "[\"tea\", \"cake\"]");
//!
//! // A successful POST clears the entry.
//! test::call_service(&app, test::TestRequest::post().uri("/products").to_request()).await;
//! assert!(cache.keys().await?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Identity
//!
//! Rules with `vary_by_user` key on the `Authorization` header by default,
//! or on a [`UserId`](cachet_core::UserId) that the app's authentication
//! puts in the request's extensions
//! (`req.extensions_mut().insert(UserId::new(id))`, from a middleware
//! wrapped *outside* the cache).
//!
//! # Runtime
//!
//! The middleware runs on actix-web's runtime. A background refresh
//! (`stale-while-revalidate`) is spawned on the worker's local task set
//! and starts once the stale response has been sent: actix-web routes a
//! request by mutating it in place, so the refresh may not share it with a
//! response still in flight.
//!
//! An `Err` from the inner service carries no request; actix-web handlers
//! never return one (their errors become responses, which the cache sees
//! as 4xx/5xx). When one does and a stale entry may answer
//! (`stale-if-error`), the middleware returns the error with the stale
//! response as its response.
//!
//! # Security: a shared cache
//!
//! The rules are the core's: for rules without `vary_by_user`, a response
//! with `Set-Cookie`, `Cache-Control: private`, `no-store` or `no-cache`,
//! or one to a request with `Authorization` (unless `public`, `s-maxage`
//! or `must-revalidate`), is never stored; identities are hashed before
//! they enter a key.

pub mod admin;
mod body;
mod convert;
mod future;
mod handler;
mod invalidation;
mod middleware;
mod origin;
mod request;
mod response_builder;

pub use self::{
    body::{BodyError, CachedBody, FromActix, ResponseBody},
    future::ResponseFuture,
    handler::HandlerCache,
    invalidation::{CacheInvalidation, CacheInvalidationMiddleware},
    middleware::{ResponseCache, ResponseCacheMiddleware},
    request::ActixRequest,
    response_builder::{not_modified, ResponseBuilderExt},
};
