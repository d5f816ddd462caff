//! [`InvalidationLayer`]: applies [`InvalidationService`] to a service.

use super::service::InvalidationService;
use cachet_core::Cache;
use tower_layer::Layer;

/// Layer that invalidates cache entries after unsafe requests.
///
/// After a POST, PUT, PATCH, DELETE (or any method that is not GET, HEAD,
/// OPTIONS or TRACE) whose response is 2xx or 3xx, it deletes every entry
/// of the target URI (all methods, users and variants), of the same-origin
/// `Location` and `Content-Location` URIs, the keys the matching rule's
/// `invalidates` regexes select, and the entries carrying the response's
/// tags. A rule's `invalidate_scope = "user"` limits that to the requesting
/// user's (and shared) entries. The response is sent once the entries are
/// gone, so the client's next read sees its own write.
///
/// It works alone or with [`CacheLayer`](crate::CacheLayer), in either
/// order; see the [crate docs](crate#invalidation) for an example.
#[derive(Debug, Clone)]
pub struct InvalidationLayer {
    cache: Cache,
}

impl InvalidationLayer {
    /// A layer invalidating entries of `cache`.
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }
}

impl<S> Layer<S> for InvalidationLayer {
    type Service = InvalidationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvalidationService::new(inner, self.cache.clone())
    }
}
