//! Step 5, the exchange with the origin: everything that happens to a
//! request the cache could not answer from memory at once, shared by every
//! adapter.
//!
//! An adapter routes the request and [`begin`]s it: a hit in memory is
//! answered at once and needs nothing more from here. Otherwise it hands
//! the [`Miss`], the request and the origin — a function that sends one request to the inner service — to
//! [`serve`]: the lookup in the store, coalescing with other requests for
//! the key, the (conditional) request upstream, `stale-if-error`, storing
//! the response (buffered or recorded while it streams) and answering the
//! client's preconditions. A hit served stale gets a background
//! [`refresh`], which the adapter spawns on its own runtime.
//!
//! The origin is called at most once per request. The futures are `Send`
//! exactly when the origin's future and bodies are, so the Tower adapter
//! boxes them as `Send` and the actix-web adapter as local futures.

mod body;
mod recorder;

pub use self::body::ResponseBody;

use self::recorder::{join, Recorder};
use super::scanned::Scanned;
use crate::cache::Cache;
use crate::engine::coalesce::{Fetch, Landing, Landmark, Turn};
use crate::engine::invalidate::request_origin;
use crate::engine::{Answer, Hit, Lookup, Plan, Revalidation, StoreOutcome};
use crate::protocol::cache_status::ForwardReason;
use crate::protocol::conditional::not_modified_headers;
use crate::protocol::conditional::{answers_not_modified, CLIENT_PRECONDITIONS};
use crate::protocol::negotiation::{canonical, NORMALIZED};
use crate::protocol::range::partial;
use crate::protocol::storability::NotStorable;
use crate::protocol::tags::{CacheTags, CACHE_GROUPS};
use crate::protocol::vary::split_line;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, IF_RANGE, RANGE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

/// A lookup that was not a hit in memory, with the [`Landmark`] taken just
/// before it.
pub(crate) type LookedUp = (Lookup, Landmark);

/// How a request that a [`Plan`] routes to the cache begins: answered from
/// memory at once, or a [`Miss`] to [`serve`].
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a hit is the common case: boxing its answer would allocate on every hit, where moving it costs a few copies"
)]
pub enum Begun {
    /// Answered from memory without awaiting: the response (send it with
    /// [`answer`] or the framework's own type), and the background
    /// [`Refresh`] to start, when the entry asks for one.
    Hit(Answer, Option<Refresh>),
    /// Not answered at once: hand it to [`serve`] with the origin.
    Miss(Miss),
}

/// A request not answered from memory, as [`begin`] left it for [`serve`]:
/// its plan, and what the in-memory lookup found, taken after the moment
/// the coalescing compares stores against. Only [`begin`] and
/// `Miss::from(plan)` make one, so the order — that moment first, then the
/// lookup — cannot be got wrong.
#[derive(Debug)]
pub struct Miss {
    /// Boxed: a miss goes to the origin, which dwarfs an allocation, and a
    /// small [`Begun`] is cheap to move on every hit.
    inner: Box<Missed>,
}

#[derive(Debug)]
struct Missed {
    plan: Plan,
    looked_up: Option<LookedUp>,
}

impl From<Plan> for Miss {
    /// A request whose lookup [`serve`] makes itself (in the store, awaited).
    fn from(plan: Plan) -> Self {
        Self {
            inner: Box::new(Missed {
                plan,
                looked_up: None,
            }),
        }
    }
}

/// A background fetch a hit asked for (`stale-while-revalidate`, early
/// refresh), to start with [`refresh`].
#[derive(Debug)]
pub struct Refresh {
    /// Boxed, as [`Miss`] is: rare, and kept out of every hit's moves.
    inner: Box<Refreshing>,
}

#[derive(Debug)]
struct Refreshing {
    plan: Plan,
    revalidation: Revalidation,
}

impl Refresh {
    fn new(plan: Plan, revalidation: Revalidation) -> Self {
        Self {
            inner: Box::new(Refreshing { plan, revalidation }),
        }
    }
}

/// Begins `req`, which `plan` routes to the cache (as
/// [`Plan::retarget`] left it: the plan keeps what routing read of its
/// header names): looks it up in memory and answers a hit at once,
/// allocating nothing; anything else is a [`Miss`] for [`serve`].
pub fn begin(cache: &Cache, plan: Plan, req: &dyn crate::request::RequestHead) -> Begun {
    let req = &Scanned::again(req, plan.scan);
    let landmark = cache.landmark();
    match cache.lookup_now(&plan, req) {
        Some(Lookup::Hit(hit)) => {
            let answer = cache.answer(&plan, &hit, req);
            let refresh = hit
                .into_refresh()
                .map(|revalidation| Refresh::new(plan, revalidation));
            Begun::Hit(answer, refresh)
        }
        looked_up => Begun::Miss(Miss {
            inner: Box::new(Missed {
                plan,
                looked_up: looked_up.map(|found| (found, landmark)),
            }),
        }),
    }
}

/// Everything a forwarded request needs besides the origin and the request
/// itself.
struct Forwarding {
    cache: Cache,
    plan: Plan,
    /// The client's request head, kept for choosing the variant to store
    /// and for answering its preconditions once the origin has answered.
    client: Request<()>,
}

/// Serves `req`, which was not a hit in memory ([`begin`]'s [`Miss`], or
/// `Miss::from(plan)` to have the store asked here). `origin` sends a request to the
/// inner service; it is called at most once, and its error is returned as
/// it is unless a stale entry answers instead (`stale-if-error`).
///
/// Returns the response and, when it is a stale hit that asks for one
/// (`stale-while-revalidate`), the [`refresh`] to spawn.
pub async fn serve<O, Fut, ReqBody, ResBody, E>(
    cache: Cache,
    miss: Miss,
    origin: O,
    req: Request<ReqBody>,
) -> Result<Served<impl Future<Output = ()>, ResBody>, E>
where
    O: FnOnce(Request<ReqBody>) -> Fut,
    Fut: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body<Data = Bytes>,
{
    let Missed { plan, looked_up } = *miss.inner;
    let (parts, body) = req.into_parts();
    let client = client_head(&parts);
    let (mut looked_up, mut landmark) = match looked_up {
        Some(found) => found,
        None => {
            let landmark = cache.landmark();
            (cache.lookup(&plan, &client).await, landmark)
        }
    };
    let mut turns = 0;
    let mut announced = false;
    let (fetch, pending) = loop {
        let pending = match why_forward(looked_up) {
            Ok(pending) => pending,
            Err(hit) => {
                let response = answer(cache.answer(&plan, &hit, &client));
                let refresh = hit.into_refresh().and_then(|revalidation| {
                    let req = Request::from_parts(parts, body);
                    let refreshing = Refresh::new(plan, revalidation);
                    refresh(cache.clone(), refreshing, origin, req)
                });
                return Ok((response, refresh));
            }
        };
        if plan.only_if_cached() {
            return Ok((answer(cache.only_if_cached(&plan)), None));
        }
        turns += 1;
        if turns > MAX_TURNS {
            break (Some(cache.fetch_alone(&plan)), pending);
        }
        match cache.coalesce(&plan) {
            Turn::Fetch(fetch) => {
                if !(fetch.is_shared() && cache.landed_since(landmark)) {
                    // A cold miss, once per request: another instance
                    // sharing the store may be fetching it already.
                    if turns == 1 && pending.1.is_none() && cache.inner.store.shared().is_some() {
                        announced = true;
                        if cache.other_instance_stored(&plan).await {
                            fetch.stored();
                            landmark = cache.landmark();
                            looked_up = cache.lookup_landed(&plan, &client).await;
                            continue;
                        }
                    }
                    break (Some(fetch), pending);
                }
                // Another request's fetch landed since the lookup: look again.
                match why_forward(cache.lookup_landed(&plan, &client).await) {
                    Ok(pending) => break (Some(fetch), pending),
                    Err(hit) => {
                        fetch.stored();
                        looked_up = Lookup::Hit(hit);
                    }
                }
            }
            Turn::Wait(wait) => {
                match tokio::time::timeout(plan.rule().lock_timeout(), wait.landed()).await {
                    // Waited long enough: go, and store nothing.
                    Err(_) => break (None, pending),
                    Ok(Landing::NotStored) => break (Some(cache.fetch_alone(&plan)), pending),
                    Ok(Landing::Stored | Landing::Abandoned) => {
                        landmark = cache.landmark();
                        looked_up = cache.lookup_landed(&plan, &client).await;
                    }
                }
            }
        }
    };
    let done = announced.then(|| (cache.clone(), plan.clone()));
    let forwarding = Forwarding {
        cache,
        plan,
        client,
    };
    let response = forward(forwarding, pending, fetch, origin, parts, body).await;
    if let Some((cache, plan)) = done {
        cache.fetch_done(&plan).await;
    }
    Ok((response?, None))
}

/// What [`serve`] returns: the response, and the background refresh to
/// spawn when the response is a stale hit.
pub type Served<R, B> = (Response<ResponseBody<B>>, Option<R>);

/// Why a request whose lookup was not a hit goes upstream, and the stored
/// entry to revalidate (or to serve if the origin fails), if any; the hit
/// otherwise.
fn why_forward(lookup: Lookup) -> Result<(ForwardReason, Option<Revalidation>), Hit> {
    match lookup {
        Lookup::Hit(hit) => Err(hit),
        Lookup::Revalidate(revalidation) => Ok((revalidation.reason(), Some(revalidation))),
        Lookup::Miss(reason) => Ok((reason, None)),
    }
}

/// How many times a request joins the line for its key before it fetches
/// on its own: each turn ends with another request's fetch landing, so this
/// bounds the wait when responses keep varying or vanishing.
const MAX_TURNS: u32 = 3;

/// The background fetch a hit asked for ([`Refresh`]: it was served stale
/// under `stale-while-revalidate`, or refreshes early); `None` when a fetch
/// of the key is already running. The future sends `req` through
/// `origin` and reads the response to its end, so that it is stored; the
/// adapter spawns it.
pub fn refresh<O, Fut, ReqBody, ResBody, E>(
    cache: Cache,
    refresh: Refresh,
    origin: O,
    req: Request<ReqBody>,
) -> Option<impl Future<Output = ()>>
where
    O: FnOnce(Request<ReqBody>) -> Fut,
    Fut: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body<Data = Bytes>,
{
    let Refreshing { plan, revalidation } = *refresh.inner;
    let fetch = cache.refresh_fetch(&plan)?;
    Some(async move {
        let (parts, body) = req.into_parts();
        let forwarding = Forwarding {
            client: client_head(&parts),
            cache,
            plan,
        };
        let key = forwarding.plan.key().clone();
        let pending = (revalidation.reason(), Some(revalidation));
        match forward(forwarding, pending, Some(fetch), origin, parts, body).await {
            Ok(response) => {
                let mut body = std::pin::pin!(response.into_body());
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        tracing::debug!(%key, "the refresh's body failed");
                        break;
                    }
                }
            }
            Err(_) => tracing::debug!(%key, "the refresh failed at the origin"),
        }
    })
}
/// Sends the request to the origin — conditionally when a stored entry has
/// validators — and makes the response: the entry updated by a 304, the
/// entry again when the origin fails within its `stale-if-error` window, or
/// the origin's response, stored when allowed. `fetch` is landed on every
/// path; `None` means the response must not be stored.
async fn forward<O, Fut, ReqBody, ResBody, E>(
    forwarding: Forwarding,
    (reason, revalidation): (ForwardReason, Option<Revalidation>),
    fetch: Option<Fetch>,
    origin: O,
    mut parts: http::request::Parts,
    body: ReqBody,
) -> Result<Response<ResponseBody<ResBody>>, E>
where
    O: FnOnce(Request<ReqBody>) -> Fut,
    Fut: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body<Data = Bytes>,
{
    let Forwarding {
        ref cache,
        ref plan,
        ref client,
    } = forwarding;
    // The cache answers the client's preconditions itself; upstream it asks
    // only its own, so a changed resource comes back whole and is stored.
    for name in &CLIENT_PRECONDITIONS {
        parts.headers.remove(name);
    }
    // The origin receives the spelling variant keys hold.
    for name in &NORMALIZED {
        let lines: Vec<&[u8]> = parts
            .headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        let respelled = canonical(name, &lines)
            .filter(|canonical| lines != [canonical.as_bytes()])
            .and_then(|canonical| HeaderValue::from_str(&canonical).ok());
        if let Some(value) = respelled {
            parts.headers.insert(name, value);
        }
    }
    // A range is answered from the whole response once it is stored, so
    // the whole is asked for — unless the key's responses are known not to
    // be stored (hit-for-miss), or no fetch may store it: then the range
    // goes upstream as the client asked.
    // Only a GET has ranges (RFC 9110 §14.2).
    let ranged_here = !plan.is_head()
        && fetch.as_ref().is_some_and(|fetch| !fetch.is_marked())
        && client.headers().contains_key(RANGE);
    if ranged_here {
        parts.headers.remove(RANGE);
        parts.headers.remove(IF_RANGE);
    }
    if let Some(revalidation) = &revalidation {
        parts.headers.extend(revalidation.conditions());
    }
    let started = std::time::Instant::now();
    let response = match origin(Request::from_parts(parts, body)).await {
        Ok(response) => {
            cache.origin_answered(plan, Some(response.status()), started.elapsed());
            response
        }
        Err(error) => {
            cache.origin_answered(plan, None, started.elapsed());
            if let Some(fetch) = fetch {
                fetch.not_stored(false);
            }
            let stale = revalidation.and_then(|r| cache.origin_failed(plan, &r, None, client));
            return stale.map(answer).ok_or(error);
        }
    };
    let (mut parts, body) = response.into_parts();
    if let Some(revalidation) = revalidation {
        if parts.status == StatusCode::NOT_MODIFIED && revalidation.is_conditional() {
            let updated = cache
                .revalidated(plan, revalidation, &parts.headers, client)
                .await;
            if let Some(updated) = updated {
                if let Some(fetch) = fetch {
                    fetch.stored();
                }
                return Ok(answer(updated));
            }
            // The 304 names another representation: passed on, not stored.
        } else if parts.status.is_server_error() {
            if let Some(fetch) = fetch {
                fetch.not_stored(false);
            }
            if let Some(stale) =
                cache.origin_failed(plan, &revalidation, Some(parts.status), client)
            {
                return Ok(answer(stale));
            }
            // A server error never replaces the stored entry.
            let refused = StoreOutcome::Refused(NotStorable::Status(parts.status));
            cache.forwarded(plan, reason, parts.status, &refused, &mut parts.headers);
            return Ok(Response::from_parts(parts, ResponseBody::passthrough(body)));
        }
    }
    let (outcome, body) = match fetch {
        Some(fetch) => store_if_allowed(&forwarding, &mut parts, body, fetch).await,
        None => {
            // Tags are a header for the cache, stored or not.
            let extension = parts.extensions.get::<CacheTags>().cloned();
            cache.take_tags(&mut parts.headers, extension.as_ref());
            (
                StoreOutcome::Refused(NotStorable::LockTimeout),
                ResponseBody::passthrough(body),
            )
        }
    };
    // A streamed body is not at hand to answer the client's preconditions
    // (they were not sent upstream): it gets the whole response.
    if outcome != StoreOutcome::Recording
        && answers_not_modified(client, parts.status, &parts.headers)
    {
        let mut headers = not_modified_headers(&parts.headers);
        for cookie in parts.headers.get_all(SET_COOKIE) {
            headers.append(SET_COOKIE, cookie.clone());
        }
        cache.forwarded(plan, reason, parts.status, &outcome, &mut headers);
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers = headers;
        return Ok(Response::from_parts(
            parts,
            ResponseBody::full(Bytes::new()),
        ));
    }
    // Labelled with the origin's status, then the stored whole answers the
    // client's range (RFC 9110 §14).
    cache.forwarded(plan, reason, parts.status, &outcome, &mut parts.headers);
    let body = if ranged_here && outcome == StoreOutcome::Stored && parts.status == StatusCode::OK {
        match body.try_into_bytes() {
            Ok(whole) => match partial(client, &mut parts.headers, &whole) {
                Some((status, part)) => {
                    parts.status = status;
                    ResponseBody::full(part)
                }
                None => ResponseBody::full(whole),
            },
            Err(body) => body,
        }
    } else {
        body
    };
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
/// the rule's `max_body`, and lands `fetch`; returns whether it was stored
/// (or why not) and the body to send on. A body of declared length within
/// the limit is read whole first, at the origin's pace (so the client gets
/// the `ETag` and `Content-Length` later hits will send, and waiters hit);
/// one without a length is streamed to the client and recorded on the way,
/// and its waiters are released to fetch on their own.
async fn store_if_allowed<B: Body<Data = Bytes>>(
    forwarding: &Forwarding,
    parts: &mut http::response::Parts,
    body: B,
    fetch: Fetch,
) -> (StoreOutcome, ResponseBody<B>) {
    let Forwarding {
        cache,
        plan,
        client,
    } = forwarding;
    let extension = parts.extensions.get::<CacheTags>().cloned();
    let mut tags = cache.take_tags(&mut parts.headers, extension.as_ref());
    let origin = request_origin(client);
    tags.extend(cache.group_terms(&parts.headers, &CACHE_GROUPS, origin.as_deref()));
    let refuse = |reason: NotStorable, fetch: Fetch| {
        fetch.not_stored(reason.marks_hit_for_miss());
        StoreOutcome::Refused(reason)
    };
    let storable = match cache.admit(plan, parts.status, &parts.headers) {
        Ok(storable) if split_line(client, &storable.vary).is_some() => {
            cache.not_stored(plan);
            let reason = NotStorable::VarySplit;
            return (refuse(reason, fetch), ResponseBody::passthrough(body));
        }
        Ok(storable) => storable.with_tags(tags),
        Err(reason) => return (refuse(reason, fetch), ResponseBody::passthrough(body)),
    };
    let max_body = plan.rule().max_body();
    // The length from the header, or from the body itself (frameworks
    // leave the header to the server when the body knows its size).
    let declared = content_length(&parts.headers).or_else(|| body.size_hint().exact());
    let Some(declared) = declared else {
        // Streamed at the client's pace: waiters must not depend on it
        // (a slow reader would hold them all up), so they fetch on their
        // own; the first complete recording is stored.
        let mut fetch = fetch;
        fetch.release_waiters();
        let recorder = Recorder::new(
            cache.clone(),
            plan.clone(),
            storable,
            client.clone(),
            (parts.status, parts.headers.clone()),
            fetch,
        );
        return (
            StoreOutcome::Recording,
            ResponseBody::recording(body, recorder),
        );
    };
    if declared > max_body {
        cache.not_stored(plan);
        return (
            refuse(NotStorable::TooLarge, fetch),
            ResponseBody::passthrough(body),
        );
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
                fetch.stored();
                StoreOutcome::Stored
            } else {
                refuse(NotStorable::StoreFailed, fetch)
            };
            (outcome, ResponseBody::full(bytes))
        }
        Buffered::Incomplete {
            prefix,
            error,
            rest,
        } => {
            cache.not_stored(plan);
            let reason = if error.is_some() {
                NotStorable::Incomplete
            } else if prefix.back().is_some_and(|frame| frame.is_trailers()) {
                NotStorable::Trailers
            } else {
                NotStorable::TooLarge
            };
            (
                refuse(reason, fetch),
                ResponseBody::replay(prefix, error, rest),
            )
        }
    }
}

/// The `Content-Length` a response declares, if it is a valid one.
pub fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A response the cache made itself, such as a hit. When the cache
/// prepares answers ([`prepare_answers`](crate::adapter::prepare_answers)),
/// a hit's headers are a copy of its entry's prepared map.
pub fn answer<B: Body>(mut answer: Answer) -> Response<ResponseBody<B>> {
    match answer.prepared_http() {
        Some(headers) => answer.headers = headers,
        None => answer.put_back(),
    }
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
    let data = chunks
        .into_iter()
        .filter_map(|frame| frame.into_data().ok());
    Buffered::Complete(join(data, total))
}
