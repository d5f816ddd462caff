//! [`CacheService`]: the middleware itself.

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::layer::CacheLayer;
use bytes::{Bytes, BytesMut};
use cachet_core::conditional::not_modified_headers;
use cachet_core::{
    answers_not_modified, Answer, Cache, CacheTags, Lookup, NotStorable, Plan, Route,
    CLIENT_PRECONDITIONS,
};
use http::header::{CONTENT_LENGTH, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that answers cacheable requests from a [`Cache`] and stores the
/// origin's responses.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheService<S> {
    inner: S,
    cache: Cache,
}

impl<S> CacheService<S> {
    /// Wraps `inner` with `cache`.
    pub fn new(inner: S, cache: Cache) -> Self {
        Self { inner, cache }
    }

    /// A [`CacheLayer`] with `cache`.
    pub fn layer(cache: Cache) -> CacheLayer {
        CacheLayer::new(cache)
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the middleware.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let plan = match self.cache.route(&req) {
            Route::Pass => return ResponseFuture::passthrough(self.inner.call(req)),
            Route::Bypass(reason) => {
                let mut labels = HeaderMap::new();
                self.cache.bypassed(reason, &mut labels);
                return ResponseFuture::labelled(self.inner.call(req), labels);
            }
            Route::Cache(plan) => plan,
        };
        // An in-memory store answers at once: a hit needs no boxed future.
        let looked_up = match self.cache.lookup_now(&plan, &req) {
            Some(Lookup::Hit(hit)) => {
                return ResponseFuture::ready(answer(self.cache.answer(&plan, &hit, &req)))
            }
            other => other,
        };
        // The ready service handles this request; the clone waits for the
        // next `poll_ready` (tower-service: "Be careful when cloning inner services").
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let cache = self.cache.clone();
        ResponseFuture::cached(Box::pin(serve(cache, plan, looked_up, inner, req)))
    }
}

async fn serve<S, ReqBody, ResBody>(
    cache: Cache,
    plan: Plan,
    looked_up: Option<Lookup>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    let (mut parts, body) = req.into_parts();
    // The client's request head, kept for choosing the variant to store and
    // for answering its preconditions once the origin has answered.
    let client = client_head(&parts);
    let looked_up = match looked_up {
        Some(found) => found,
        None => cache.lookup(&plan, &client).await,
    };
    let (reason, revalidation) = match looked_up {
        Lookup::Hit(hit) => return Ok(answer(cache.answer(&plan, &hit, &client))),
        Lookup::Revalidate(revalidation) => (revalidation.reason(), Some(revalidation)),
        Lookup::Miss(reason) => (reason, None),
    };
    if plan.only_if_cached() {
        return Ok(answer(cache.only_if_cached(&plan)));
    }
    // The cache answers the client's preconditions itself; upstream it asks
    // only its own, so a changed resource comes back whole and is stored.
    for name in &CLIENT_PRECONDITIONS {
        parts.headers.remove(name);
    }
    if let Some(revalidation) = &revalidation {
        parts.headers.extend(revalidation.conditions());
    }
    let response = match inner.call(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(error) => {
            return match revalidation.and_then(|r| cache.unreachable(&plan, &r)) {
                Some(gateway_timeout) => Ok(answer(gateway_timeout)),
                None => Err(error),
            }
        }
    };
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::NOT_MODIFIED {
        if let Some(revalidation) = revalidation {
            let updated = cache
                .revalidated(&plan, revalidation, &parts.headers, &client)
                .await;
            if let Some(updated) = updated {
                return Ok(answer(updated));
            }
        }
    }
    let (stored, body) = store_if_allowed(&cache, &plan, &client, &mut parts, body).await;
    if answers_not_modified(&client, parts.status, &parts.headers) {
        let mut headers = not_modified_headers(&parts.headers);
        for cookie in parts.headers.get_all(SET_COOKIE) {
            headers.append(SET_COOKIE, cookie.clone());
        }
        cache.forwarded(&plan, reason, parts.status, stored, &mut headers);
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers = headers;
        return Ok(Response::from_parts(
            parts,
            ResponseBody::full(Bytes::new()),
        ));
    }
    cache.forwarded(&plan, reason, parts.status, stored, &mut parts.headers);
    Ok(Response::from_parts(parts, body))
}

/// What the cache reads from a request after its body went to the origin:
/// method, URI and headers.
fn client_head(parts: &http::request::Parts) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.headers_mut() = parts.headers.clone();
    head
}

/// Stores the origin's response when the policy allows it and its body fits
/// the rule's `max_body`; returns whether it was stored (or why not) and the
/// body to send on.
async fn store_if_allowed<B: Body<Data = Bytes>>(
    cache: &Cache,
    plan: &Plan,
    client: &Request<()>,
    parts: &mut http::response::Parts,
    body: B,
) -> (Result<(), NotStorable>, ResponseBody<B>) {
    let extension = parts.extensions.get::<CacheTags>().cloned();
    let tags = cache.take_tags(&mut parts.headers, extension.as_ref());
    let storable = match cache.check_storable(plan, parts.status, &parts.headers) {
        Ok(storable) => storable.with_tags(tags),
        Err(reason) => return (Err(reason), ResponseBody::passthrough(body)),
    };
    let max_body = plan.rule().max_body();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body) {
        cache.not_stored(plan);
        return (Err(NotStorable::TooLarge), ResponseBody::passthrough(body));
    }
    match buffer(body, max_body).await {
        Buffered::Complete(bytes) => {
            let stored = cache
                .store(
                    plan,
                    storable,
                    client,
                    parts.status,
                    &mut parts.headers,
                    bytes.clone(),
                )
                .await;
            // A store failure is already logged and counted; the client
            // still gets the whole response.
            let outcome = if stored {
                Ok(())
            } else {
                Err(NotStorable::StoreFailed)
            };
            (outcome, ResponseBody::full(bytes))
        }
        Buffered::Incomplete {
            prefix,
            error,
            rest,
        } => {
            cache.not_stored(plan);
            let reason =
                if error.is_none() && prefix.back().is_some_and(|frame| frame.is_trailers()) {
                    NotStorable::Trailers
                } else {
                    NotStorable::TooLarge
                };
            (Err(reason), ResponseBody::replay(prefix, error, rest))
        }
    }
}

/// A response the cache made itself.
fn answer<B: Body>(answer: Answer) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::full(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}
enum Buffered<B: Body> {
    /// The whole body, within the limit and without trailers.
    Complete(Bytes),
    /// The body could not be kept (over the limit, trailers, or an error):
    /// what was read so far, then the rest.
    Incomplete {
        prefix: VecDeque<Frame<Bytes>>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    },
}

/// Reads `body` while it stays within `limit` bytes. Past the limit it stops
/// reading and hands back what it read, so the client still gets every byte.
async fn buffer<B: Body<Data = Bytes>>(body: B, limit: u64) -> Buffered<B> {
    let mut body = Box::pin(body);
    let mut chunks: VecDeque<Frame<Bytes>> = VecDeque::new();
    let mut total: u64 = 0;
    loop {
        match body.frame().await {
            None => break,
            Some(Err(error)) => {
                return Buffered::Incomplete {
                    prefix: chunks,
                    error: Some(error),
                    rest: None,
                }
            }
            Some(Ok(frame)) => {
                let over = match frame.data_ref() {
                    Some(data) => {
                        total += data.len() as u64;
                        total > limit
                    }
                    None => true, // trailers: not kept
                };
                chunks.push_back(frame);
                if over {
                    return Buffered::Incomplete {
                        prefix: chunks,
                        error: None,
                        rest: Some(body),
                    };
                }
            }
        }
    }
    let mut data = chunks
        .into_iter()
        .filter_map(|frame| frame.into_data().ok());
    let bytes = match (data.next(), data.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only,
        (Some(first), Some(second)) => {
            let mut joined = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&second);
            data.for_each(|chunk| joined.extend_from_slice(&chunk));
            joined.freeze()
        }
    };
    Buffered::Complete(bytes)
}
