//! Recording a streamed response for the cache while the client receives it.

use crate::cache::Cache;
use crate::engine::coalesce::Fetch;
use crate::engine::{Admission, Plan};
use crate::protocol::storability::NotStorable;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use std::future::Future;
use std::pin::Pin;

/// Storing a recorded body: runs after the origin's last frame and before
/// the client hears the body ended, so that once a client has the whole
/// response, the next request finds it.
pub(crate) type Storing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a streamed response needs to be stored once its body is complete:
/// the chunks seen so far (shared with the client's frames, not copied) and
/// everything [`Cache::store`] asks for.
pub(crate) struct Recorder {
    cache: Cache,
    plan: Plan,
    storable: Admission,
    client: Request<()>,
    status: StatusCode,
    headers: HeaderMap,
    fetch: Fetch,
    chunks: Vec<Bytes>,
    recorded: u64,
}

impl Recorder {
    pub(crate) fn new(
        cache: Cache,
        plan: Plan,
        storable: Admission,
        client: Request<()>,
        response: (StatusCode, HeaderMap),
        fetch: Fetch,
    ) -> Self {
        let (status, headers) = response;
        Self {
            cache,
            plan,
            storable,
            client,
            status,
            headers,
            fetch,
            chunks: Vec::new(),
            recorded: 0,
        }
    }

    /// Records `data`; `false` once the body outgrows the rule's `max_body`.
    pub(crate) fn record(&mut self, data: &Bytes) -> bool {
        self.recorded += data.len() as u64;
        if self.recorded > self.plan.rule().max_body() {
            return false;
        }
        if !data.is_empty() {
            self.chunks.push(data.clone());
        }
        true
    }

    /// Drops the recording, for `reason`; the stream goes on. The requests
    /// waiting for this fetch go to the origin themselves.
    pub(crate) fn give_up(self, reason: NotStorable) {
        self.cache.not_stored(&self.plan);
        self.fetch.not_stored(reason.marks_hit_for_miss());
    }

    /// The body is complete: stores it, then lands the fetch.
    pub(crate) fn finish(self) -> Storing {
        Box::pin(async move {
            let Self {
                cache,
                plan,
                storable,
                client,
                status,
                mut headers,
                fetch,
                chunks,
                recorded,
            } = self;
            let body = join(chunks, recorded);
            if cache
                .store(&plan, storable, &client, status, &mut headers, body)
                .await
            {
                fetch.stored();
            } else {
                fetch.not_stored(false);
            }
        })
    }
}

/// `chunks` as one `Bytes`, `total` long; a single chunk is not copied.
pub(crate) fn join(chunks: impl IntoIterator<Item = Bytes>, total: u64) -> Bytes {
    let mut chunks = chunks.into_iter();
    match (chunks.next(), chunks.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only,
        (Some(first), Some(second)) => {
            let mut joined = BytesMut::with_capacity(usize::try_from(total).unwrap_or(0));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&second);
            chunks.for_each(|chunk| joined.extend_from_slice(&chunk));
            joined.freeze()
        }
    }
}
