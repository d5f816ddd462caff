//! The step API for adapter authors: what a framework integration calls to
//! put a [`Cache`] in front of its handlers.
//!
//! `cachet-tower` and `cachet-actix` are built on it, and so is any other
//! adapter. Per request:
//!
//! 1. [`Cache::route`] the request ([`RequestHead`] is the view of a request
//!    the cache reads; it is implemented for `http::Request`). On
//!    [`Route::Pass`] call the application untouched; on
//!    [`Route::Bypass`] call it and label the response with
//!    [`Cache::bypassed`]; on [`Route::Cache`] go on with the [`Plan`]
//!    (forward [`Plan::target`] when it is set, or bypass when
//!    [`Plan::changes_path`] and the application routes before you).
//! 2. Take a [`Landmark`] with [`Cache::landmark`], then
//!    [`Cache::lookup_now`]: on [`Lookup::Hit`] answer with
//!    [`Cache::answer`] (and spawn [`refresh`] if
//!    [`Hit::into_refresh`] asks for one).
//! 3. Otherwise hand the request, the lookup and the application (a
//!    function that sends one request) to [`serve`]: coalescing, the
//!    conditional request upstream, storing, `stale-if-error` and the
//!    labels all happen there, for every adapter alike.
//!
//! Mutations: [`Cache::invalidation`] before calling the application,
//! [`Cache::invalidate`] with its response's status and headers after.
//! Responses the cache touches have their tags taken with
//! [`Cache::take_tags`].
//!
//! ```
//! use cachet_core::adapter::{self, Lookup, Route};
//! use cachet_core::CacheBuilder;
//! use cachet_core::clock::MockClock;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let cache = CacheBuilder::from_toml("[[rules]]\npath = '^/'\nttl = 60")?
//!     .clock(MockClock::new())
//!     .build()?;
//! let app = |_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from("hello"))))
//! };
//! for expected in ["cachet; fwd=uri-miss; fwd-status=200; stored", "cachet; hit; ttl=60"] {
//!     let req = Request::get("/page").body(())?;
//!     let Route::Cache(plan) = cache.route(&req) else { unreachable!() };
//!     let landmark = cache.landmark();
//!     let response = match cache.lookup_now(&plan, &req) {
//!         Some(Lookup::Hit(hit)) => adapter::answer(cache.answer(&plan, &hit, &req)),
//!         looked_up => {
//!             let looked_up = looked_up.map(|lookup| (lookup, landmark));
//!             adapter::serve(cache.clone(), plan, looked_up, app, req).await?.0
//!         }
//!     };
//!     assert_eq!(response.headers()["cache-status"], expected);
//!     assert_eq!(response.into_body().collect().await?.to_bytes(), "hello");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#[doc(no_inline)]
pub use crate::cache::Cache;
pub use crate::engine::coalesce::Landmark;
pub use crate::engine::exchange::{
    answer, content_length, refresh, serve, LookedUp, ResponseBody, Served,
};
pub use crate::engine::invalidate::Invalidation;
pub use crate::engine::{Answer, Hit, Lookup, Plan, Revalidation, Route};
pub use crate::protocol::cache_status::{ForwardReason, CACHE_STATUS, X_CACHE};
pub use crate::protocol::hop_by_hop::{is_hop_by_hop, strip_hop_by_hop, HOP_BY_HOP};
pub use crate::protocol::host::{request_host, BadHost};
pub use crate::request::RequestHead;
