//! A caching reverse proxy on the cachet engine: the same TOML rules as the
//! Tower layer, in front of a service you cannot or will not change.
//!
//! ```sh
//! cachet-proxy --upstream http://127.0.0.1:8000            # RFC 9111 shared cache for every path
//! cachet-proxy --config cachet.toml --listen 127.0.0.1:8080
//! cachet-proxy --config cachet.toml --check                 # validate and exit
//! ```
//!
//! Each request goes through [`InvalidationLayer`](cachet_tower::InvalidationLayer)
//! and [`CacheLayer`](cachet_tower::CacheLayer) to a pooled hyper client.
//! Before the cache sees a request the proxy removes hop-by-hop headers
//! (RFC 9110 §7.6.1) and the unkeyed headers clients send
//! ([`DEFAULT_STRIP_HEADERS`]), so the key and the upstream see the same
//! request, and it forwards the canonical target it keyed. On the way up it
//! adds `Via` and `X-Forwarded-For`/`-Proto`/`-Host`, keeps the client's
//! `Host` (or sends the upstream's), and answers 502 when the upstream
//! cannot be reached and 504 when it is too slow — or the stale entry,
//! within its `stale_if_error` window. Keys include the host, so virtual
//! hosts never share entries. Bodies stream both ways. Connections are
//! bounded: a header-read timeout, closing silent and idle connections,
//! `max_connections`, and limits on request heads (see `docs/security.md`).
//!
//! # Example
//!
//! ```
//! use cachet_proxy::{Overrides, ProxyConfig};
//!
//! let config = ProxyConfig::from_toml(
//!     r#"
//!     [proxy]
//!     listen = "127.0.0.1:8080"
//!     upstream = "http://127.0.0.1:8000"
//!     timeout = "10s"
//!
//!     [[rules]]
//!     path = '^/api/products'
//!     ttl = "30s"
//!     stale_if_error = "10m"
//!     "#,
//!     &Overrides::default(),
//! )?;
//! assert_eq!(config.upstream, "http://127.0.0.1:8000");
//! assert_eq!(config.cache.rules().len(), 1);
//! // `Proxy::new(&config).serve(listener, shutdown)` runs it.
//! # Ok::<(), cachet_proxy::ProxyConfigError>(())
//! ```

mod access_log;
mod admin;
mod config;
mod connection;
mod inbound;
mod ip_text;
mod server;
mod upstream;

pub use crate::admin::serve_admin;
pub use crate::config::{
    Overrides, ProxyConfig, ProxyConfigError, DEFAULT_LISTEN, DEFAULT_STRIP_HEADERS,
};
pub use crate::server::Proxy;
pub use crate::upstream::{ClientAddr, ProxyBody, Upstream};
pub use cachet_core::adapter::strip_hop_by_hop;
