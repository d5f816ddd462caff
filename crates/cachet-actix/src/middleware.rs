//! [`ResponseCache`]: the cache middleware.

use crate::body::{CachedBody, FromActix, ResponseBody};
use crate::convert::{answer_to_actix, headers_to_actix, request_head, response_to_actix};
use crate::future::ResponseFuture;
use crate::origin::{Handoff, Held, OriginFailed};
use crate::request::ActixRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::{ErrorInternalServerError, InternalError};
use actix_web::http::Method;
use actix_web::{Error, HttpResponse};
use cachet_core::adapter::{self, Begun, HandlerRule, Plan, Refresh, Route, Served};
use cachet_core::Cache;
use std::future::{ready, Future, Ready};
use std::rc::Rc;
use tokio::sync::oneshot;

/// Middleware that answers cacheable requests from a [`Cache`] and stores
/// the inner service's responses: the actix-web counterpart of
/// `cachet_tower::CacheLayer`, with the same rules and behaviour.
///
/// Use it with [`App::wrap`](actix_web::App::wrap) or
/// [`Scope::wrap`](actix_web::Scope::wrap). See the [crate docs](crate)
/// for an example.
#[derive(Debug, Clone)]
pub struct ResponseCache {
    cache: Cache,
}

impl ResponseCache {
    /// Middleware caching in `cache`. Hits convert each entry's headers to
    /// actix-web's types once, on its first hit (counted in its weight).
    pub fn new(cache: Cache) -> Self {
        cachet_core::adapter::prepare_answers(&cache);
        Self { cache }
    }
}

impl<S, B> Transform<S, ServiceRequest> for ResponseCache
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = Error;
    type Transform = ResponseCacheMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ResponseCacheMiddleware::new(
            service,
            self.cache.clone(),
            None,
        )))
    }
}

/// The service [`ResponseCache`] wraps around the inner service.
#[derive(Debug)]
pub struct ResponseCacheMiddleware<S> {
    service: Rc<S>,
    cache: Cache,
    /// The rule of the one handler this wraps, in place of the cache's.
    handler: Option<HandlerRule>,
}

impl<S> ResponseCacheMiddleware<S> {
    /// Wraps `service`, caching under `handler` when given.
    pub(crate) fn new(service: S, cache: Cache, handler: Option<HandlerRule>) -> Self {
        Self {
            service: Rc::new(service),
            cache,
            handler,
        }
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}

impl<S, B> Service<ServiceRequest> for ResponseCacheMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let head = ActixRequest(req.request());
        let route = match &self.handler {
            Some(rule) => adapter::route_handler(&self.cache, rule, &head),
            None => adapter::route(&self.cache, &head),
        };
        let route = match route {
            Route::Cache(plan) if !admits(&plan, &mut req) => {
                adapter::bypass_plan(&self.cache, &plan)
            }
            route => route,
        };
        let plan = match route {
            Route::Pass => return ResponseFuture::passthrough(self.service.call(req)),
            Route::Bypass(reason) => {
                let mut labels = http::HeaderMap::new();
                adapter::bypassed(&self.cache, reason, &mut labels);
                let labels = headers_to_actix(&labels);
                return ResponseFuture::labelled(self.service.call(req), labels);
            }
            Route::Cache(plan) => plan,
        };
        // An in-memory store answers at once: a hit needs no boxed future,
        // and converts nothing but the answer's headers.
        let miss = match adapter::begin(&self.cache, plan, &ActixRequest(req.request())) {
            Begun::Hit(answer, refresh) => {
                let response = answer_to_actix(answer, req.method());
                let response = match refresh {
                    None => Ok(req.into_response(response.map_into_right_body())),
                    Some(refresh) => self.refresh(refresh, req, response),
                };
                return ResponseFuture::ready(response);
            }
            Begun::Miss(miss) => miss,
        };
        let Some(head) = request_head(req.request()) else {
            // Not expressible in `http` 1.x: not cached.
            return ResponseFuture::passthrough(self.service.call(req));
        };
        let method = req.method().clone();
        let held = Held::new(req);
        let (to_origin, service) = (held.clone(), Rc::clone(&self.service));
        let origin = move |head| to_origin.send(service, head);
        let cache = self.cache.clone();
        ResponseFuture::cached(Box::pin(async move {
            let served = adapter::serve(cache, miss, origin, head).await;
            respond(held, served, &method)
        }))
    }
}

/// Whether a request the rules route to the cache may use it, once the
/// application gets the target and host the key was made from. actix-web
/// may have matched part of the path already (a `Scope`), so a path that
/// is not canonical is not cached; a normalized query is handed over, as
/// actix-web's own `NormalizePath` hands over a path, and so are the keyed
/// spelling of the host and keyed headers' lines combined.
fn admits(plan: &Plan, req: &mut ServiceRequest) -> bool {
    for (name, value) in plan.combined_headers() {
        let name = actix_web::http::header::HeaderName::from_bytes(name.as_str().as_bytes());
        let value = actix_web::http::header::HeaderValue::from_bytes(value.as_bytes());
        let (Ok(name), Ok(value)) = (name, value) else {
            return false;
        };
        req.headers_mut().insert(name, value);
    }
    if plan.target().is_none() && plan.host().is_none() {
        return true;
    }
    if plan.changes_path() {
        return false;
    }
    let head = req.head_mut();
    let mut parts = head.uri.clone().into_parts();
    if let Some(target) = plan.target() {
        let Ok(path_and_query) = target.as_str().parse() else {
            return false;
        };
        parts.path_and_query = Some(path_and_query);
    }
    let host = match plan.host() {
        Some(host) => match actix_web::http::header::HeaderValue::from_bytes(host.as_bytes()) {
            Ok(host) => Some(host),
            Err(_) => return false,
        },
        None => None,
    };
    if let (Some(host), Some(_)) = (&host, &parts.authority) {
        let Ok(authority) = host.as_bytes().try_into() else {
            return false;
        };
        parts.authority = Some(authority);
    }
    let Ok(uri) = actix_web::http::Uri::from_parts(parts) else {
        return false;
    };
    head.uri = uri;
    if let Some(host) = host {
        head.headers_mut()
            .insert(actix_web::http::header::HOST, host);
    }
    let uri = head.uri.clone();
    req.match_info_mut().get_mut().update(&uri);
    true
}

impl<S, B> ResponseCacheMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    /// Answers a stale hit and refreshes it in the background, unless a
    /// refresh of the key already runs.
    fn refresh(
        &self,
        refresh: Refresh,
        req: ServiceRequest,
        response: HttpResponse<CachedBody<B>>,
    ) -> Result<ServiceResponse<ResponseBody<B>>, Error> {
        let Some(head) = request_head(req.request()) else {
            return Ok(req.into_response(response.map_into_right_body()));
        };
        let held = Held::new(req);
        let (to_origin, service) = (held.clone(), Rc::clone(&self.service));
        let origin = move |head| to_origin.send(service, head);
        match adapter::refresh(self.cache.clone(), refresh, origin, head) {
            Some(refresh) => refreshing(&held, response, refresh),
            None => answer(held, response),
        }
    }
}

/// The client's response from the exchange's outcome.
fn respond<B: MessageBody + 'static>(
    held: Held,
    served: Result<Served<impl Future<Output = ()> + 'static, FromActix<B>>, OriginFailed>,
    method: &Method,
) -> Result<ServiceResponse<ResponseBody<B>>, Error> {
    let (response, refresh) = match served {
        Ok(served) => served,
        Err(OriginFailed) => {
            return Err(match held.finish() {
                Handoff::Failed(error) => error,
                _ => lost(),
            })
        }
    };
    let response = response_to_actix(response, method);
    match refresh {
        Some(refresh) => refreshing(&held, response, refresh),
        None => answer(held, response),
    }
}

/// Answers with `response` and the request, wherever it went.
fn answer<B: MessageBody + 'static>(
    held: Held,
    response: HttpResponse<CachedBody<B>>,
) -> Result<ServiceResponse<ResponseBody<B>>, Error> {
    let response = response.map_into_right_body();
    match held.finish() {
        Handoff::Unsent(req) => Ok(req.into_response(response)),
        Handoff::Answered(req) => Ok(ServiceResponse::new(req, response)),
        // The inner service failed and a stale entry answers instead
        // (`stale-if-error`); the failure took the request along, so the
        // answer travels as the error's response.
        Handoff::Failed(error) => {
            let response = response.map_into_boxed_body();
            Err(InternalError::from_response(error.to_string(), response).into())
        }
        Handoff::Lost => Err(lost()),
    }
}

/// Answers with `response` while the request waits in `held` for
/// `refresh`, which runs once that response is sent: actix-web routes a
/// request by mutating it, so the refresh must not start while the
/// response still holds a handle on it.
fn refreshing<B: MessageBody + 'static>(
    held: &Held,
    response: HttpResponse<CachedBody<B>>,
    refresh: impl Future<Output = ()> + 'static,
) -> Result<ServiceResponse<ResponseBody<B>>, Error> {
    let Some(req) = held.waiting_request() else {
        return Err(lost());
    };
    let (sent, on_sent) = oneshot::channel::<()>();
    let response = response.map_body(|_, body| body.on_sent(sent));
    actix_web::rt::spawn(async move {
        // Sent, or dropped unsent: either way the handle is gone.
        let _ = on_sent.await;
        refresh.await;
    });
    Ok(ServiceResponse::new(req, response.map_into_right_body()))
}

/// The request went to the inner service and did not come back: an
/// exchange ended without finishing its call. Not expected; reported
/// rather than panicking.
fn lost() -> Error {
    ErrorInternalServerError("cachet: the request did not come back from the inner service")
}
