//! [`CacheService`]: the middleware itself.

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::layer::CacheLayer;
use bytes::{Bytes, BytesMut};
use cachet_core::{Cache, Hit, Outcome, Plan};
use http::header::CONTENT_LENGTH;
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
        let Some(plan) = self.cache.plan(&req) else {
            return ResponseFuture::passthrough(self.inner.call(req));
        };
        // An in-memory store answers at once: a hit needs no boxed future.
        let looked_up = match self.cache.lookup_now(&plan) {
            Some(Some(hit)) => return ResponseFuture::ready(hit_response(&hit, plan.is_head())),
            Some(None) => true,
            None => false,
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
    looked_up: bool,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    if !looked_up {
        if let Some(hit) = cache.lookup(&plan).await {
            return Ok(hit_response(&hit, plan.is_head()));
        }
    }
    let (mut parts, body) = inner.call(req).await?.into_parts();
    let body = store_if_allowed(&cache, &plan, &mut parts, body).await;
    Outcome::Miss.write_headers(&mut parts.headers);
    Ok(Response::from_parts(parts, body))
}

/// Stores the origin's response when the policy allows it and its body fits
/// the rule's `max_body`; returns the body to send on.
async fn store_if_allowed<B: Body<Data = Bytes>>(
    cache: &Cache,
    plan: &Plan,
    parts: &mut http::response::Parts,
    body: B,
) -> ResponseBody<B> {
    if cache
        .check_storable(plan, parts.status, &parts.headers)
        .is_err()
    {
        return ResponseBody::passthrough(body);
    }
    let max_body = plan.rule().max_body();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body) {
        cache.not_stored(plan);
        return ResponseBody::passthrough(body);
    }
    match buffer(body, max_body).await {
        Buffered::Complete(bytes) => {
            cache
                .store(plan, parts.status, parts.headers.clone(), bytes.clone())
                .await;
            parts.headers.insert(CONTENT_LENGTH, bytes.len().into());
            ResponseBody::full(bytes)
        }
        Buffered::Incomplete {
            prefix,
            error,
            rest,
        } => {
            cache.not_stored(plan);
            ResponseBody::replay(prefix, error, rest)
        }
    }
}

/// The response for a fresh entry: its status, headers and body (none for
/// `HEAD`), with `Age` and `X-Cache`. The inner service is not called.
fn hit_response<B: Body>(hit: &Hit, head: bool) -> Response<ResponseBody<B>> {
    let entry = hit.entry();
    let body = if head {
        ResponseBody::empty()
    } else {
        ResponseBody::full(entry.body().clone())
    };
    let mut response = Response::new(body);
    *response.status_mut() = entry.status();
    // Sized for the outcome headers too, so adding them never regrows the map.
    let headers = response.headers_mut();
    headers.reserve(entry.headers().len() + Outcome::MAX_HEADERS);
    for (name, value) in entry.headers() {
        headers.append(name.clone(), value.clone());
    }
    Outcome::Hit { age: hit.age() }.write_headers(headers);
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
