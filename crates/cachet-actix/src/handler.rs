//! [`HandlerCache`]: caching for one resource, with a rule written in code.

use crate::body::ResponseBody;
use crate::invalidation::CacheInvalidationMiddleware;
use crate::middleware::ResponseCacheMiddleware;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use cachet_core::adapter::HandlerRule;
use cachet_core::{Cache, ConfigError, Rule};
use std::future::{ready, Ready};

/// Caches one resource's responses under a [`Rule`] written in code
/// (Django's `cache_page` on a view): the actix-web counterpart of
/// `cachet_tower::HandlerLayer`, with the same engine, semantics,
/// invalidation and stats as a rule in TOML and no path to match. Wrap a
/// [`Resource`](actix_web::Resource) or a [`Scope`](actix_web::Scope) with it.
///
/// GET and HEAD are answered from the cache and stored; a mutation through
/// it clears the target URI's entries, and what the rule's `invalidates`
/// names, once it succeeds.
///
/// ```
/// use actix_web::{web, App, HttpResponse};
/// use cachet_actix::HandlerCache;
/// use cachet_core::{Cache, Rule};
/// use std::time::Duration;
///
/// let cache = Cache::builder().build()?;
/// let per_user = Rule::handler().ttl(Duration::from_secs(600)).vary_by_user(true);
/// let me = HandlerCache::new(&cache, &per_user)?;
/// let app = App::new().service(
///     web::resource("/api/me")
///         .wrap(me)
///         .route(web::get().to(|| async { HttpResponse::Ok().body("me") })),
/// );
/// # let _ = app;
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HandlerCache {
    cache: Cache,
    rule: HandlerRule,
}

impl HandlerCache {
    /// Middleware caching in `cache` under `rule` (from
    /// [`Rule::handler`]; its path is never matched). An error names the
    /// field of an invalid rule, or a cache that is unknown or holds values.
    pub fn new(cache: &Cache, rule: &Rule) -> Result<Self, ConfigError> {
        cachet_core::adapter::prepare_answers(cache);
        Ok(Self {
            rule: HandlerRule::new(cache, rule)?,
            cache: cache.clone(),
        })
    }
}

impl<S, B> Transform<S, ServiceRequest> for HandlerCache
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = Error;
    type Transform = CacheInvalidationMiddleware<ResponseCacheMiddleware<S>>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let rule = Some(self.rule.clone());
        let cached = ResponseCacheMiddleware::new(service, self.cache.clone(), rule.clone());
        ready(Ok(CacheInvalidationMiddleware::new(
            cached,
            self.cache.clone(),
            rule,
        )))
    }
}
