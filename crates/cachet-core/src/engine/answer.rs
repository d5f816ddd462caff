//! Step 3, answer: the response the cache makes itself — a hit (200, or
//! 304 when the client's copy is current) or a 504 for `only-if-cached`.
//! Every 304 the cache sends is built by [`Cache::respond`] or from
//! [`not_modified_headers`].

use super::lookup::Hit;
use super::route::Plan;
use crate::cache::Cache;
use crate::key::CacheKey;
use crate::protocol::cache_status::{Outcome, StatusHeaders, StatusValues, STATUS_HEADERS};
use crate::protocol::conditional::{answers_not_modified, not_modified_headers};
use crate::protocol::range::partial;
use crate::request::RequestHead;
use crate::store::entry::CachedResponse;
use crate::store::Store;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A response the cache makes itself: a hit (200 or 304) or a 504 for
/// `only-if-cached`. `body` is empty for `HEAD`, 304 and 504.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers, `Cache-Status` and `Age` included — except when the
    /// cache prepares answers (`adapter::prepare_answers`) and this is an
    /// entry's whole response: then only those another step added (none on
    /// a hit), the status headers are in
    /// [`status_headers`](Self::status_headers), the entry's own in the
    /// [`prepared`](Self::prepared) form, and
    /// [`complete`](Self::complete) puts them all here.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The entry whose whole response this is (not a 304, not a range),
    /// when the cache prepares answers.
    whole: Option<Whole>,
}

/// The entry an answer leaves its headers to, the fields no answer
/// carries (`StatusHeaders::strip`) and the status headers this one sets.
#[derive(Debug, Clone)]
struct Whole {
    entry: Arc<CachedResponse>,
    strip: Arc<[HeaderName]>,
    set: StatusValues,
    /// Where the entry lives, on a hit before its store counted the room
    /// its prepared form takes.
    uncounted: Option<Box<Home>>,
}

/// The store, cache and key a hit found its entry under.
#[derive(Debug, Clone)]
struct Home {
    store: Arc<dyn Store>,
    cache: String,
    key: CacheKey,
}

impl Home {
    /// Tells the store that `entry` holds its prepared form.
    #[cold]
    #[inline(never)]
    fn count(&self, entry: &Arc<CachedResponse>) {
        if let Some(store) = self.store.immediate() {
            store.count_prepared(&self.cache, &self.key, entry);
        }
    }
}

impl Whole {
    /// The entry's headers as the answer carries them, but for those the
    /// hit sets, those in `added` (and the stripped ones), with room for
    /// all of them.
    fn headers_less(&self, added: &HeaderMap) -> HeaderMap {
        let entry = self.entry.headers();
        let mut headers =
            HeaderMap::with_capacity(entry.len() + StatusHeaders::MAX_HEADERS + added.len());
        for (name, value) in self.own_headers() {
            if !added.contains_key(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers
    }

    /// The entry's fields the answer carries: not stripped, not set by it.
    fn own_headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.entry
            .headers()
            .iter()
            .filter(|(name, _)| !self.strip.contains(name) && !self.set.sets(name))
    }
}

impl Answer {
    /// An answer made of these parts.
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            status,
            headers,
            body,
            whole: None,
        }
    }

    /// For an adapter whose framework has its own header types: the
    /// entry's headers as `make` converts them, made on the entry's first
    /// hit and shared by the next ones — the answer's headers but for the
    /// [`status_headers`](Self::status_headers), which the adapter adds.
    /// `None` when there is nothing to share: the answer is not the
    /// entry's whole response (a 304, a range, a 504), it carries headers
    /// of its own, the cache was not told with `adapter::prepare_answers`
    /// before the entry was stored, or the entry holds another type's form.
    /// Then the adapter converts the headers of the
    /// [`complete`](Self::complete) answer.
    pub fn prepared<T: Any + Send + Sync>(
        &self,
        make: impl FnOnce(&HeaderMap) -> T,
    ) -> Option<Arc<T>> {
        self.shared_form(|whole| {
            whole
                .entry
                .prepared(|| make(&whole.headers_less(&self.headers)))
        })
    }

    /// The form `get` finds or makes for the entry whose whole response
    /// this is, when the answer leaves its headers to one; the store is
    /// told once the entry holds one, if it has not counted it yet.
    fn shared_form<T>(&self, get: impl FnOnce(&Whole) -> Option<Arc<T>>) -> Option<Arc<T>> {
        let whole = self.whole.as_ref().filter(|_| self.headers.is_empty())?;
        let form = get(whole);
        if let Some(home) = &whole.uncounted {
            home.count(&whole.entry);
        }
        form
    }

    /// The status headers (`Age`, `Cache-Status`, `X-Cache`) of an answer
    /// whose entry's headers are left to a [`prepared`](Self::prepared)
    /// form: each as its position in `adapter::STATUS_HEADERS` and its
    /// value. Empty for any other answer: its [`headers`](Self::headers)
    /// hold them.
    pub fn status_headers(&self) -> impl Iterator<Item = (usize, HeaderValue)> + '_ {
        self.whole.iter().flat_map(|whole| whole.set.iter())
    }

    /// This answer with all its headers in [`headers`](Self::headers): the
    /// entry's put back when they were left to a prepared form.
    #[must_use]
    pub fn complete(mut self) -> Self {
        self.put_back();
        self
    }

    /// [`complete`](Self::complete) in place.
    pub(crate) fn put_back(&mut self) {
        let Some(whole) = self.whole.take() else {
            return;
        };
        let added = std::mem::take(&mut self.headers);
        let mut headers = whole.headers_less(&added);
        whole.set.insert_into(&mut headers);
        headers.extend(added);
        self.headers = headers;
    }

    /// The body's length as the whole response declares it
    /// (`Content-Length`): what a `HEAD` answer announces.
    pub fn content_length(&self) -> Option<u64> {
        let headers = match &self.whole {
            Some(whole) => whole.entry.headers(),
            None => &self.headers,
        };
        super::exchange::content_length(headers)
    }

    /// The headers of a whole answer made from its entry's prepared
    /// [`HttpHead`], with this hit's status values in its placeholders;
    /// `None` when [`prepared`](Self::prepared) has no form to share or
    /// the form holds other status headers than this hit sets.
    pub(crate) fn prepared_http(&self) -> Option<HeaderMap> {
        let whole = self.whole.as_ref()?;
        let slots = whole.set.slots();
        let form =
            self.shared_form(|whole| whole.entry.prepared_weighed(|| HttpHead::of(whole, slots)))?;
        if form.slots != slots {
            return None;
        }
        let mut headers = form.headers.clone();
        let first = headers.len() - slots.count_ones() as usize;
        for ((name, placeholder), (slot, value)) in
            headers.iter_mut().skip(first).zip(whole.set.iter())
        {
            debug_assert_eq!(name, STATUS_HEADERS[slot]);
            *placeholder = value;
        }
        Some(headers)
    }
}

/// An entry's headers as a hit answers them through an `http` server (the
/// prepared form `adapter::answer` uses): its own fields, then one
/// placeholder for each status header, in [`STATUS_HEADERS`] order, that
/// every hit's copy overwrites in place. Cloning a map copies its table;
/// building one, as a hit did before, hashes each field into it. A copy
/// has no room to spare, so it keeps `Content-Length`: axum inserts one
/// into a response without it, which would grow the copy.
struct HttpHead {
    headers: HeaderMap,
    /// The [`StatusValues::slots`] it has placeholders for, the map's
    /// last values.
    slots: u8,
}

impl HttpHead {
    /// The form of `whole`'s entry with placeholders for `slots`, and what
    /// it keeps alive on the heap.
    fn of(whole: &Whole, slots: u8) -> (Self, u64) {
        let placeholders = slots.count_ones() as usize;
        let mut headers = HeaderMap::with_capacity(whole.entry.headers().len() + placeholders);
        for (name, value) in whole.own_headers() {
            headers.append(name.clone(), value.clone());
        }
        for (slot, name) in STATUS_HEADERS.iter().enumerate() {
            if slots & (1 << slot) != 0 {
                headers.append(name.clone(), HeaderValue::from_static(""));
            }
        }
        // A map's room is rounded up to a power of two; a copy of it holds
        // its fields alone, as each hit's copy does. Names and values are
        // the entry's, shared.
        let headers = headers.clone();
        let heap = crate::weight::copied_headers(&headers);
        (Self { headers, slots }, heap)
    }
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
        let home = hit.uncounted.as_deref();
        self.respond_from(plan, &hit.entry, home, &outcome, req)
    }

    /// A stored response for `req`, labelled with `outcome`: 304 when the
    /// client's preconditions match it, else the response itself.
    pub(super) fn respond(
        &self,
        plan: &Plan,
        entry: &Arc<CachedResponse>,
        outcome: &Outcome,
        req: &dyn RequestHead,
    ) -> Answer {
        self.respond_from(plan, entry, None, outcome, req)
    }

    /// [`respond`](Self::respond) for an entry a hit found under `home`
    /// (`Hit::uncounted`), whose store counts its prepared form once made.
    fn respond_from(
        &self,
        plan: &Plan,
        entry: &Arc<CachedResponse>,
        home: Option<&CacheKey>,
        outcome: &Outcome,
        req: &dyn RequestHead,
    ) -> Answer {
        if plan.asks.preconditions && answers_not_modified(req, entry.status(), entry.headers()) {
            let mut headers = not_modified_headers(entry.headers());
            self.inner
                .status_headers
                .write(outcome, Some(plan.key.as_str()), &mut headers);
            return Answer::new(StatusCode::NOT_MODIFIED, headers, Bytes::new());
        }
        let body = entry.body();
        let ranged = plan.asks.range && !plan.head && entry.status() == StatusCode::OK;
        let sent = if plan.head {
            Bytes::new()
        } else {
            body.clone()
        };
        // An adapter that prepares answers takes the entry's own headers
        // from their prepared form: only this hit's status headers are made.
        if !ranged && self.inner.prepares_answers.load(Ordering::Relaxed) {
            let set = self
                .inner
                .status_headers
                .values(outcome, Some(plan.key.as_str()));
            return Answer {
                status: entry.status(),
                headers: HeaderMap::new(),
                body: sent,
                whole: Some(Whole {
                    entry: Arc::clone(entry),
                    strip: Arc::clone(&self.inner.status_headers.strip),
                    set,
                    uncounted: home.map(|key| self.home(plan, key)),
                }),
            };
        }
        // Sized for the status headers too, so adding them never regrows
        // the map.
        let mut headers =
            HeaderMap::with_capacity(entry.headers().len() + StatusHeaders::MAX_HEADERS);
        for (name, value) in entry.headers() {
            headers.append(name.clone(), value.clone());
        }
        self.inner
            .status_headers
            .write(outcome, Some(plan.key.as_str()), &mut headers);
        if ranged {
            if let Some((status, part)) = partial(req, &mut headers, body) {
                return Answer::new(status, headers, part);
            }
        }
        Answer::new(entry.status(), headers, sent)
    }

    /// Where a hit found its entry: rare (an entry's first hits), and kept
    /// out of every hit's way.
    #[cold]
    #[inline(never)]
    fn home(&self, plan: &Plan, key: &CacheKey) -> Box<Home> {
        Box::new(Home {
            store: Arc::clone(&self.inner.store),
            cache: plan.rule.cache().to_owned(),
            key: key.clone(),
        })
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
        Answer::new(StatusCode::GATEWAY_TIMEOUT, headers, Bytes::new())
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::MockClock;
    use crate::engine::exchange::{begin, serve, Begun};
    use crate::engine::Route;
    use crate::protocol::cache_status::STATUS_HEADERS;
    use crate::CacheBuilder;
    use bytes::Bytes;
    use http::header::CONTENT_LENGTH;
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cache(prepares: bool) -> crate::Cache {
        cache_from("", prepares)
    }

    fn cache_from(toml: &str, prepares: bool) -> crate::Cache {
        let cache = CacheBuilder::from_toml(&format!("{toml}\n[[rules]]\npath = '^/'\nttl = 60"))
            .unwrap()
            .clock(MockClock::new())
            .build()
            .unwrap();
        cache
            .inner
            .prepares_answers
            .store(prepares, Ordering::Relaxed);
        cache
    }

    async fn store(cache: &crate::Cache) {
        store_with(cache, &[]).await;
    }

    async fn store_with(cache: &crate::Cache, extra: &'static [(&'static str, &'static str)]) {
        let app = move |_req: Request<()>| async move {
            let mut response = Response::new(Full::new(Bytes::from("hello")));
            response
                .headers_mut()
                .insert("etag", "\"v1\"".parse().unwrap());
            for (name, value) in extra {
                response.headers_mut().append(*name, value.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        };
        let req = Request::get("/page").body(()).unwrap();
        let Route::Cache(plan) = cache.route(&req) else {
            panic!("cached")
        };
        let Begun::Miss(miss) = begin(cache, plan, &req) else {
            panic!("a miss")
        };
        serve(cache.clone(), miss, app, req).await.unwrap();
    }

    fn hit(cache: &crate::Cache, headers: &[(&str, &str)]) -> super::Answer {
        let mut req = Request::get("/page");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(()).unwrap();
        let Route::Cache(plan) = cache.route(&req) else {
            panic!("cached")
        };
        let Begun::Hit(answer, _) = begin(cache, plan, &req) else {
            panic!("a hit")
        };
        answer
    }

    #[tokio::test]
    async fn hits_share_one_prepared_form_of_their_entry() {
        let cache = cache(true);
        store(&cache).await;
        let made = AtomicUsize::new(0);
        let prepare = |headers: &http::HeaderMap| {
            made.fetch_add(1, Ordering::Relaxed);
            headers
                .keys()
                .filter(|name| !STATUS_HEADERS.contains(name))
                .count()
        };
        for _ in 0..3 {
            let answer = hit(&cache, &[]);
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(
                answer.prepared(prepare).as_deref(),
                Some(&2),
                "etag, content-length"
            );
        }
        assert_eq!(
            made.load(Ordering::Relaxed),
            1,
            "made once, on the first hit"
        );
        // Another type than the one made: none.
        assert!(hit(&cache, &[]).prepared(|_| "text").is_none());
        // Not the entry's whole response: none.
        let not_modified = hit(&cache, &[("if-none-match", "\"v1\"")]);
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        assert!(not_modified.prepared(prepare).is_none());
        let partial = hit(&cache, &[("range", "bytes=0-1")]);
        assert_eq!(partial.status, StatusCode::PARTIAL_CONTENT);
        assert!(partial.prepared(prepare).is_none());
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_store_counts_a_prepared_form_from_the_hit_that_makes_it() {
        let cache = cache(true);
        let bytes = |cache: &crate::Cache| cache.stats().caches["default"].bytes;
        store(&cache).await;
        let stored = bytes(&cache);
        // A hit that makes no form (a 304) counts none.
        let not_modified = hit(&cache, &[("if-none-match", "\"v1\"")]);
        assert!(not_modified.prepared(|_| ()).is_none());
        assert_eq!(bytes(&cache), stored, "stored without the form's room");
        let first = hit(&cache, &[]);
        assert!(first.prepared(|_| ()).is_some());
        let counted = bytes(&cache);
        let key = cache.keys().await.unwrap().remove(0).key;
        let entry = cache
            .inner
            .store
            .get("default", &key, cache.inner.clock.now());
        let entry = entry.await.unwrap().unwrap();
        let form = entry.response().unwrap().prepared_weight();
        assert!(form > 0);
        assert_eq!(counted, stored + form, "counted once made");
        let listed = cache.key_stats(None).await.unwrap()["default"].bytes;
        assert_eq!(listed, counted, "the per-key figures agree");
        // Later hits find it counted and tell the store nothing.
        let later = hit(&cache, &[]);
        assert!(later.whole.as_ref().unwrap().uncounted.is_none());
        assert!(later.prepared(|_| ()).is_some());
        assert_eq!(bytes(&cache), counted);
        // The store takes away what it added.
        assert!(cache.delete(key.as_str()).await.unwrap());
        assert_eq!(bytes(&cache), 0);
    }

    #[tokio::test]
    async fn later_hits_leave_the_entrys_headers_to_the_prepared_form_and_complete_as_before() {
        // Fields the answer replaces or removes: another cache's status and
        // age, the targeted field meant for this cache alone (RFC 9213).
        let extra: &[(&str, &str)] = &[
            ("cache-status", "upstream; hit"),
            ("age", "3"),
            ("cachet-cache-control", "max-age=60"),
            ("x-cache", "origin"),
            ("x-two", "a"),
            ("x-two", "b"),
        ];
        let own = "[headers]\ntarget = \"cachet-cache-control\"";
        let plain = cache_from(own, false);
        let prepared = cache_from(own, true);
        store_with(&plain, extra).await;
        store_with(&prepared, extra).await;
        let first = hit(&prepared, &[]);
        let made = first.prepared(|headers| {
            (
                headers.contains_key("x-cache"),
                headers.contains_key("cache-status"),
            )
        });
        assert_eq!(
            made.as_deref(),
            Some(&(true, false)),
            "the origin's own X-Cache is the entry's (cachet writes none here); its Cache-Status is replaced"
        );
        assert_eq!(first.complete().headers, hit(&plain, &[]).headers);
        let later = hit(&prepared, &[]);
        assert!(later.headers.is_empty(), "{:?}", later.headers);
        let set: Vec<_> = later
            .status_headers()
            .map(|(slot, value)| (STATUS_HEADERS[slot].clone(), value))
            .collect();
        let plain_hit = hit(&plain, &[]);
        assert_eq!(set.len(), 2, "{set:?}");
        for (name, value) in &set {
            assert_eq!(plain_hit.headers.get(name), Some(value), "{name}");
        }
        assert_eq!(plain_hit.status_headers().count(), 0);
        assert_eq!(later.content_length(), Some(5));
        assert!(later.prepared(|_| (true, true)).is_some());
        let expected = hit(&plain, &[]).headers;
        assert!(!expected.contains_key("cachet-cache-control"));
        assert_eq!(expected.get_all("x-two").iter().count(), 2);
        assert_eq!(later.clone().complete().headers, expected);
        // An adapter finding another type's form converts the completed
        // answer; Tower's answer completes it too.
        assert!(later.prepared(|_| "text").is_none());
        let response = crate::engine::exchange::answer::<Full<Bytes>>(later);
        assert_eq!(response.headers(), &expected);
        // A range on the entry is answered whole, from its headers.
        let partial = hit(
            &prepared,
            &[("accept-encoding", "gzip"), ("range", "bytes=0-1")],
        );
        assert_eq!(partial.status, StatusCode::PARTIAL_CONTENT);
        assert!(partial.headers.contains_key("etag"));
    }

    #[tokio::test]
    async fn http_hits_copy_a_prepared_map_that_reads_as_the_completed_answer() {
        let extra: &[(&str, &str)] = &[
            ("cache-status", "upstream; hit"),
            ("x-two", "a"),
            ("x-two", "b"),
        ];
        for own in ["", "[headers]\nx_cache = true"] {
            let plain = cache_from(own, false);
            let prepared = cache_from(own, true);
            store_with(&plain, extra).await;
            store_with(&prepared, extra).await;
            let fields = |headers: &http::HeaderMap| -> Vec<(String, String)> {
                headers
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                    .collect()
            };
            let completed = hit(&prepared, &[]).complete().headers;
            assert_eq!(completed, hit(&plain, &[]).headers);
            // The first hit makes the map, the next ones copy it: each the
            // completed answer's fields, in its order.
            for _ in 0..3 {
                let answer = hit(&prepared, &[]);
                let headers = answer.prepared_http().expect("a whole answer");
                assert_eq!(fields(&headers), fields(&completed), "{own}");
            }
            // A HEAD's too, with the GET body's length.
            let head = Request::head("/page").body(()).unwrap();
            let Route::Cache(plan) = prepared.route(&head) else {
                panic!("cached")
            };
            let Begun::Hit(answer, _) = begin(&prepared, plan, &head) else {
                panic!("a hit")
            };
            assert!(answer.body.is_empty());
            assert_eq!(answer.prepared_http().unwrap()[CONTENT_LENGTH], "5");
            // Not a 304's.
            let not_modified = hit(&prepared, &[("if-none-match", "\"v1\"")]);
            assert!(not_modified.prepared_http().is_none());
        }
    }

    #[tokio::test]
    async fn an_answer_with_headers_of_its_own_is_completed_not_prepared() {
        // Every status header, the debug key among them.
        let own = "[headers]\nx_cache = true\ndebug = true";
        let plain = cache_from(own, false);
        let prepared = cache_from(own, true);
        store(&plain).await;
        store(&prepared).await;
        let expected = hit(&plain, &[]).headers;
        let answer = hit(&prepared, &[]);
        let slots: Vec<usize> = answer.status_headers().map(|(slot, _)| slot).collect();
        assert_eq!(slots, [0, 1, 2], "Age, Cache-Status, X-Cache");
        assert_eq!(answer.clone().complete().headers, expected);
        // As a revalidation adds the origin's cookie to its answer.
        let mut answer = answer;
        answer
            .headers
            .append(http::header::SET_COOKIE, "id=1".parse().unwrap());
        assert!(
            answer.prepared(|_| ()).is_none(),
            "its cookie would be lost"
        );
        let completed = answer.complete().headers;
        assert_eq!(completed["set-cookie"], "id=1");
        assert_eq!(completed.len(), expected.len() + 1);
        for (name, value) in &expected {
            assert_eq!(completed.get(name), Some(value), "{name}");
        }
    }

    #[tokio::test]
    async fn entries_have_room_for_a_prepared_form_only_when_asked_and_count_it() {
        let plain = cache(false);
        store(&plain).await;
        assert!(hit(&plain, &[]).prepared(|_| 1).is_none());
        let prepared = cache(true);
        store(&prepared).await;
        assert!(hit(&prepared, &[]).prepared(|_| 1).is_some());
        let bytes = |cache: &crate::Cache| cache.stats().caches["default"].bytes;
        assert!(
            bytes(&prepared) > bytes(&plain),
            "the form the hit made is counted"
        );
    }
}
