//! [`CacheLayer`]: applies [`CacheService`] to a service.

use crate::service::CacheService;
use cachet_core::Cache;
use tower_layer::Layer;

/// Layer that caches responses according to a [`Cache`]'s rules.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    cache: Cache,
}

impl CacheLayer {
    /// A layer serving from and storing into `cache`.
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::new(inner, self.cache.clone())
    }
}
