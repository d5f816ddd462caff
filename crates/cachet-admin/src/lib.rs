//! The management API: stats, health, Prometheus metrics, keys, purges,
//! clears and a live dashboard, over HTTP, for every framework alike.
//!
//! [`Admin::handle`] answers one request whose path is relative to where
//! the API is mounted; the adapters mount it (`cachet_tower::AdminService`
//! under `Router::nest_service`, `cachet_actix::admin::scope`, the proxy's
//! `[admin] listen`). Every endpoint but the dashboard page (`GET /`) needs
//! `Authorization: Bearer <token>` unless the configuration says
//! otherwise ([`AdminConfig`]); a read-only configuration answers
//! mutations 403. Every answer says `Cache-Control: no-store`.
//!
//! | method path | what |
//! |---|---|
//! | `GET /` | the dashboard page (no data in it; it asks for the token) |
//! | `GET /stats` | per cache and overall figures, uptime, memory |
//! | `GET /health` | `ok`, `degraded` (a remote tier fails), 503 when the local store fails |
//! | `GET /metrics` | Prometheus (OpenMetrics text) |
//! | `GET /keys?cache=&pattern=&limit=&cursor=` | keys, a page at a time |
//! | `GET /keys/stats?pattern=` | count and bytes of matching keys per cache |
//! | `DELETE /keys/{key}` · `PUT /keys/{key}?ttl=5m` | delete one key · give it a new TTL |
//! | `DELETE /keys?pattern=` · `PUT /keys?pattern=&ttl=` | the same for every match |
//! | `POST /purge` | `{"tags":[…],"uris":[…],"patterns":[…]}` |
//! | `DELETE /caches` · `DELETE /caches/{name}` | clear every cache · one |
//! | `POST /dump` | dump to the configured file now |
//! | `GET /auto-dump` · `POST`/`PUT /auto-dump?interval=5m` · `DELETE /auto-dump` | the auto-dump's status · start it or change its interval · stop it |
//!
//! The API is a layer above the cache: it uses only the [`Cache`]'s public
//! operations, and the [`Persistence`] handle, when given one, for `/dump`
//! and `/auto-dump`.
//!
//! ```
//! use cachet_admin::{Admin, AdminConfig};
//! use cachet_core::Cache;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cache = Cache::builder().build()?;
//! let admin = Admin::new(cache, AdminConfig::new().token("s3cret"));
//! let stats = http::Request::get("/stats")
//!     .header("authorization", "Bearer s3cret")
//!     .body(bytes::Bytes::new())?;
//! let response = admin.handle(stats).await;
//! assert_eq!(response.status(), 200);
//! let anonymous = http::Request::get("/stats").body(bytes::Bytes::new())?;
//! assert_eq!(admin.handle(anonymous).await.status(), 401);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
mod endpoints;
mod metrics;
mod system;

pub use self::config::AdminConfig;

use bytes::Bytes;
use cachet_core::persistence::Persistence;
use cachet_core::Cache;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use std::fmt;
use std::sync::Arc;

/// Where adapters mount the API unless told otherwise.
pub const DEFAULT_PATH: &str = "/_cachet";

/// The largest request body the API reads (a `POST /purge` list); adapters
/// refuse longer ones with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The dashboard: one page, its script and style inline, no data in it.
const DASHBOARD: &str = include_str!("dashboard.html");

/// The management API of one [`Cache`]. Clone it freely.
#[derive(Clone)]
pub struct Admin {
    cache: Cache,
    config: Arc<AdminConfig>,
    persistence: Option<Persistence>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The API of `cache`, authenticating and allowing what `config` says
    /// (from `[admin]`: [`AdminConfig::from_config`]).
    pub fn new(cache: Cache, config: AdminConfig) -> Self {
        Self {
            cache,
            config: Arc::new(config),
            persistence: None,
        }
    }

    /// Also answers `POST /dump` and `/auto-dump` with `persistence`
    /// (without it they answer 409: nothing to dump to).
    #[must_use]
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = Some(persistence);
        self
    }

    /// The cache it manages.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The configuration in force.
    pub fn config(&self) -> &AdminConfig {
        &self.config
    }

    /// Answers one request; its path is relative to the mount point (`/`,
    /// `/stats`, `/keys/…`).
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().trim_start_matches('/');
        let query = parts.uri.query().unwrap_or("");
        let mut response = if path.is_empty() {
            match parts.method {
                Method::GET | Method::HEAD => page(),
                _ => not_allowed("GET"),
            }
        } else if !self.admits(path, &parts.headers) {
            unauthorized()
        } else if self.config.is_read_only() && !is_read(&parts.method) {
            endpoints::error(StatusCode::FORBIDDEN, "the admin API is read-only")
        } else {
            let request = endpoints::Call {
                cache: &self.cache,
                config: &self.config,
                persistence: self.persistence.as_ref(),
                method: &parts.method,
                path,
                query,
                body: &body,
            };
            request.answer().await
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if parts.method == Method::HEAD {
            *response.body_mut() = Bytes::new();
        }
        response
    }

    /// Whether the request may reach `path`.
    fn admits(&self, path: &str, headers: &http::HeaderMap) -> bool {
        if path == "metrics" && self.config.is_metrics_public() {
            return true;
        }
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        self.config.admits(authorization)
    }
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

fn page() -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(DASHBOARD.as_bytes()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page's script talks to this API only.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ),
    );
    response
}

/// 401 that says nothing about what was wrong with the credentials.
fn unauthorized() -> Response<Bytes> {
    let mut response = endpoints::error(StatusCode::UNAUTHORIZED, "unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"cachet\""),
    );
    response
}

fn not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut response = endpoints::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
