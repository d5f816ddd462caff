//! [`HandlerLayer`]: caching for one handler, with a rule written in code.

use crate::{CacheService, InvalidationService};
use cachet_core::adapter::HandlerRule;
use cachet_core::{Cache, ConfigError, Rule};
use tower_layer::Layer;

/// Caches one handler's responses under a [`Rule`] written in code
/// (Django's `cache_page` on a view, a FastAPI `@cache_response`): the
/// same engine, semantics, invalidation and stats as a rule in TOML, with
/// no path to match — the router already chose the requests. Its entries
/// are counted under the rule's cache in `/stats`.
///
/// GET and HEAD are answered from the cache and stored; a mutation through
/// the layer (`get(me).post(update_me).layer(…)`) clears the target URI's
/// entries, and what the rule's `invalidates` names, once it succeeds.
///
/// ```
/// use axum::{routing::get, Router};
/// use cachet_core::{Cache, Rule};
/// use cachet_tower::HandlerLayer;
/// use std::time::Duration;
///
/// let cache = Cache::builder().build()?;
/// let per_user = Rule::handler().ttl(Duration::from_secs(600)).vary_by_user(true);
/// let app: Router = Router::new()
///     .route("/api/me", get(|| async { "me" }).layer(HandlerLayer::new(&cache, &per_user)?))
///     .route("/api/time", get(|| async { "never cached" }));
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HandlerLayer {
    cache: Cache,
    rule: HandlerRule,
}

impl HandlerLayer {
    /// A layer caching in `cache` under `rule` (from
    /// [`Rule::handler`]; its path is never matched). An error names the
    /// field of an invalid rule, or a cache that is unknown or holds values.
    pub fn new(cache: &Cache, rule: &Rule) -> Result<Self, ConfigError> {
        Ok(Self {
            rule: HandlerRule::new(cache, rule)?,
            cache: cache.clone(),
        })
    }
}

impl<S> Layer<S> for HandlerLayer {
    type Service = InvalidationService<CacheService<S>>;

    fn layer(&self, inner: S) -> Self::Service {
        let cached = CacheService::new(inner, self.cache.clone()).for_handler(self.rule.clone());
        InvalidationService::new(cached, self.cache.clone()).for_handler(self.rule.clone())
    }
}
