//! The step API for adapter authors: what a framework integration calls to
//! put a [`Cache`] in front of its handlers.
//!
//! `cachet-tower` and `cachet-actix` are built on it, and so is any other
//! adapter. Per request:
//!
//! 1. [`route`] the request ([`RequestHead`] is the view of a request the
//!    cache reads; it is implemented for `http::Request`). On
//!    [`Route::Pass`] call the application untouched; on [`Route::Bypass`]
//!    call it and label the response with [`bypassed`]; on
//!    [`Route::Cache`] go on with the [`Plan`] (forward what
//!    [`Plan::retarget`] sets, or bypass when [`Plan::changes_path`] and the
//!    application routes before you).
//! 2. [`begin`] it: a [`Begun::Hit`] is answered from memory at once, with
//!    no future allocated (and, when it asks, a [`Refresh`] to spawn with
//!    [`refresh`]).
//! 3. Otherwise hand the [`Miss`], the request and the application (a
//!    function that sends one request) to [`serve`]: coalescing, the
//!    conditional request upstream, storing, `stale-if-error` and the
//!    labels all happen there, for every adapter alike.
//!
//! Mutations: [`invalidation`] before calling the application,
//! [`invalidate`] with its response's status and headers after. Responses
//! the cache touches have their tags taken with [`take_tags`].
//!
//! ```
//! use cachet_core::adapter::{self, Begun, Route};
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
//!     let Route::Cache(plan) = adapter::route(&cache, &req) else { unreachable!() };
//!     let response = match adapter::begin(&cache, plan, &req) {
//!         Begun::Hit(answer, _refresh) => adapter::answer(answer),
//!         Begun::Miss(miss) => adapter::serve(cache.clone(), miss, app, req).await?.0,
//!     };
//!     assert_eq!(response.headers()["cache-status"], expected);
//!     assert_eq!(response.into_body().collect().await?.to_bytes(), "hello");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#[doc(no_inline)]
pub use crate::cache::Cache;
pub use crate::engine::exchange::{
    answer, begin, content_length, refresh, serve, Begun, Miss, Refresh, ResponseBody, Served,
};
pub use crate::engine::invalidate::Invalidation;
pub use crate::engine::{Answer, Plan, Route};
pub use crate::protocol::cache_status::{ForwardReason, CACHE_STATUS, STATUS_HEADERS, X_CACHE};
pub use crate::protocol::hop_by_hop::{is_hop_by_hop, strip_hop_by_hop, HOP_BY_HOP};
pub use crate::protocol::host::{request_host, BadHost};
pub use crate::request::RequestHead;

use crate::config::rules::{CompiledRule, Rule};
use crate::config::ConfigError;
use crate::protocol::tags::CacheTags;
use crate::store::StoreError;
use http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// Tells `cache` that this adapter uses [`Answer::prepared`]: each entry
/// stored from now on has room (counted in its weight) for a form of its
/// headers in the adapter's own types, made on its first hit, and a hit's
/// answer carries only the values of the status headers it sets
/// ([`Answer::status_headers`]), without a header map of its own. Call it
/// once, when the adapter is built, before requests arrive.
pub fn prepare_answers(cache: &Cache) {
    cache
        .inner
        .prepares_answers
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What `cache` does with `req`: pass it, bypass it (counted), or cache it
/// under a [`Plan`].
pub fn route(cache: &Cache, req: &dyn RequestHead) -> Route {
    cache.route(req)
}

/// Labels a bypassed response's `headers` (`Cache-Status`, `X-Cache`) for
/// `reason`.
pub fn bypassed(cache: &Cache, reason: ForwardReason, headers: &mut HeaderMap) {
    cache.bypassed(reason, headers);
}

/// A [`Rule`] attached to one handler instead of matched by path: the
/// router in front already chose the requests (`cachet::route` for axum,
/// `HandlerCache` for actix-web). Same engine, semantics and stats as a
/// configured rule: its entries are counted under its cache, and a
/// mutation through it clears them. Made once at start-up; clones share it.
///
/// ```
/// use cachet_core::adapter::{self, HandlerRule, Route};
/// use cachet_core::{Cache, Rule};
/// use std::time::Duration;
///
/// let cache = Cache::builder().build()?;
/// let rule = HandlerRule::new(&cache, &Rule::handler().ttl(Duration::from_secs(600)))?;
/// let req = http::Request::get("/api/me").body(())?;
/// assert!(matches!(adapter::route(&cache, &req), Route::Pass), "no configured rule");
/// assert!(matches!(adapter::route_handler(&cache, &rule, &req), Route::Cache(_)));
/// assert!(HandlerRule::new(&cache, &Rule::handler().cache("values")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct HandlerRule {
    rule: Arc<CompiledRule>,
}

impl HandlerRule {
    /// `rule` for one handler of `cache`. Its `path` is never matched. An
    /// error names the field when the rule is invalid, or when its named
    /// cache is unknown or holds values.
    pub fn new(cache: &Cache, rule: &Rule) -> Result<Self, ConfigError> {
        Ok(Self {
            rule: cache.handler_rule(rule)?,
        })
    }
}

/// [`route`] for a request a handler's router sent to `rule`.
pub fn route_handler(cache: &Cache, rule: &HandlerRule, req: &dyn RequestHead) -> Route {
    cache.route_handler(&rule.rule, req)
}

/// [`invalidation`] for a mutation a handler's router sent to `rule`
/// (whose `invalidates` regexes and scope apply).
pub fn invalidation_handler(
    cache: &Cache,
    rule: &HandlerRule,
    req: &dyn RequestHead,
) -> Option<Invalidation> {
    cache.invalidation_under(req, Some(Arc::clone(&rule.rule)))
}

/// The route for a request whose plan the adapter cannot carry out (it
/// cannot forward the canonical target, for one): a bypass, counted.
pub fn bypass_plan(cache: &Cache, plan: &Plan) -> Route {
    cache.bypass_plan(plan)
}

/// What a mutation (`req`, any method but GET, HEAD, OPTIONS, TRACE) may
/// clear, captured before it goes to the origin; `None` for a safe method.
pub fn invalidation(cache: &Cache, req: &dyn RequestHead) -> Option<Invalidation> {
    cache.invalidation(req)
}

/// Clears what `invalidation`'s mutation invalidates now that the origin
/// answered it with `status` and `headers` (and the response's `tags`):
/// nothing unless the status is 2xx or 3xx. How many entries went.
pub async fn invalidate(
    cache: &Cache,
    invalidation: &Invalidation,
    status: StatusCode,
    headers: &HeaderMap,
    tags: &[Arc<str>],
) -> Result<usize, StoreError> {
    cache.invalidate(invalidation, status, headers, tags).await
}

/// Takes a response's tags — its tag header (removed when configured) and
/// its [`CacheTags`] extension — bounded as the cache's limits say.
pub fn take_tags(
    cache: &Cache,
    headers: &mut HeaderMap,
    extension: Option<&CacheTags>,
) -> Vec<Arc<str>> {
    cache.take_tags(headers, extension)
}
