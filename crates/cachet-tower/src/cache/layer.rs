//! [`CacheLayer`]: applies [`CacheService`] to a service.

use super::service::CacheService;
use cachet_core::Cache;
use tower_layer::Layer;

/// Layer that caches responses according to a [`Cache`]'s rules.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    cache: Cache,
    rewrite_paths: bool,
}

impl CacheLayer {
    /// A layer serving from and storing into `cache`.
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            rewrite_paths: false,
        }
    }

    /// Whether a request whose path is not canonical (`/api/m%65`,
    /// `/a/../b`) is cached under its canonical path, which the inner
    /// service then receives in place of its own (default `false`: such a
    /// request bypasses the cache).
    ///
    /// Turn it on only when the layer wraps the whole application, before
    /// its routing — `layer.layer(router)`, `ServiceBuilder` around the
    /// router, a reverse proxy — so that the application routes on the
    /// path that was keyed. Inside a router (`Router::layer`), routing has
    /// already happened on the request's own path, and keying it by
    /// another would let one resource be stored as another.
    pub fn rewrite_paths(mut self, on: bool) -> Self {
        self.rewrite_paths = on;
        self
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, self.cache.clone()).rewrite_paths(self.rewrite_paths)
    }
}
