//! Step 3, answer: the response the cache makes itself — a hit (200, or
//! 304 when the client's copy is current) or a 504 for `only-if-cached`.
//! Every 304 the cache sends is built by [`Cache::respond`] or from
//! [`not_modified_headers`].

use super::lookup::Hit;
use super::route::Plan;
use crate::cache::Cache;
use crate::protocol::cache_status::{Outcome, StatusHeaders};
use crate::protocol::conditional::{answers_not_modified, not_modified_headers};
use crate::protocol::range::partial;
use crate::request::RequestHead;
use crate::store::entry::CachedResponse;
use bytes::Bytes;
use http::header::HeaderMap;
use http::StatusCode;

/// A response the cache makes itself: a hit (200 or 304) or a 504 for
/// `only-if-cached`. `body` is empty for `HEAD`, 304 and 504.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers, `Cache-Status` and `Age` included.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Cache {
    /// Step 3: the response for a hit — 304 when `req`'s preconditions show
    /// the client's copy is current (RFC 9110 §13.2.2), otherwise the stored
    /// response (without a body for `HEAD`) — labelled with `Age` and
    /// `Cache-Status`; a `Range` is answered from the stored body (206 or
    /// 416, RFC 9110 §14). The origin is not contacted.
    pub(crate) fn answer(&self, plan: &Plan, hit: &Hit, req: &dyn RequestHead) -> Answer {
        let outcome = match hit.staleness {
            None => Outcome::Hit {
                age: hit.age,
                ttl: hit.ttl,
            },
            Some(staleness) => Outcome::StaleHit {
                age: hit.age,
                staleness,
                refreshing: hit.refresh.is_some(),
            },
        };
        self.respond(plan, &hit.entry, &outcome, req)
    }

    /// A stored response for `req`, labelled with `outcome`: 304 when the
    /// client's preconditions match it, else the response itself.
    pub(super) fn respond(
        &self,
        plan: &Plan,
        entry: &CachedResponse,
        outcome: &Outcome,
        req: &dyn RequestHead,
    ) -> Answer {
        if answers_not_modified(req, entry.status(), entry.headers()) {
            let mut headers = not_modified_headers(entry.headers());
            self.inner
                .status_headers
                .write(outcome, Some(plan.key.as_str()), &mut headers);
            return Answer {
                status: StatusCode::NOT_MODIFIED,
                headers,
                body: Bytes::new(),
            };
        }
        // Sized for the status headers too, so adding them never regrows the map.
        let mut headers =
            HeaderMap::with_capacity(entry.headers().len() + StatusHeaders::MAX_HEADERS);
        for (name, value) in entry.headers() {
            headers.append(name.clone(), value.clone());
        }
        self.inner
            .status_headers
            .write(outcome, Some(plan.key.as_str()), &mut headers);
        let body = entry.body();
        if !plan.head && entry.status() == StatusCode::OK {
            if let Some((status, part)) = partial(req, &mut headers, body) {
                return Answer {
                    status,
                    headers,
                    body: part,
                };
            }
        }
        Answer {
            status: entry.status(),
            headers,
            body: if plan.head {
                Bytes::new()
            } else {
                body.clone()
            },
        }
    }

    /// The answer to an `only-if-cached` request that missed: 504 Gateway
    /// Timeout, without contacting the origin (RFC 9111 §5.2.1.7).
    pub(crate) fn only_if_cached(&self, plan: &Plan) -> Answer {
        let mut headers = HeaderMap::new();
        self.inner.status_headers.write(
            &Outcome::OnlyIfCached,
            Some(plan.key.as_str()),
            &mut headers,
        );
        Answer {
            status: StatusCode::GATEWAY_TIMEOUT,
            headers,
            body: Bytes::new(),
        }
    }
}
