//! What a store holds under a key: a response, or the index of a URL's
//! variants (RFC 9111 §4.1).

use crate::clock::later;
use crate::weight;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, StatusCode};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

// The serialized form (`store::wire`), in a child module so that it reads
// the fields it mirrors.
mod wire_form;

/// A response as the cache keeps it: status, headers, the whole body, when
/// it was stored, when it stops being fresh and when the store may drop it.
/// Shared as `Arc<CachedResponse>`: a hit clones the pointer, never the body.
///
/// Between `fresh_until` and `keep_until` the entry is *stale*: kept so that
/// it can be revalidated with its validators (RFC 9111 §4.3), served to a
/// client that accepts stale responses (`max-stale`), served while it is
/// refreshed (`stale-while-revalidate`) or when the origin fails
/// (`stale-if-error`, RFC 5861).
#[derive(Debug, Clone)]
pub struct CachedResponse {
    prepared: Prepared,
    status: StatusCode,
    headers: HeaderMap,
    /// `weight::headers` of `headers`, which never change once stored: the
    /// store weighs an entry more than once (admission, insert, eviction).
    headers_weight: u64,
    body: Bytes,
    stored_at: SystemTime,
    fresh_until: SystemTime,
    keep_until: SystemTime,
    initial_age: Duration,
    generated_etag: bool,
    no_stale: bool,
    while_revalidate: Duration,
    if_error: Duration,
    fetch_time: Duration,
    tags: Tags,
}

/// The entry's headers in a framework's own representation, made by its
/// adapter on the first hit and shared by the hits after it (see
/// `Answer::prepared`). Only an entry with room for one gets one: one
/// stored by a cache whose adapter prepares answers, or read into memory
/// from a dump or a shared tier; an entry read from a tier for one answer
/// has none. A copy of the entry starts without one: its headers may
/// differ.
///
/// The form is counted in the entry's weight from when it is made, not
/// from when the entry is stored: most entries of a large cache are never
/// hit. The store that holds the entry counts it
/// ([`Immediate::count_prepared`](crate::store::Immediate::count_prepared)),
/// under its own lock, so that the weight it added is the weight it takes
/// away; `counted` only says that no hit needs to ask it again.
#[derive(Default)]
struct Prepared {
    room: bool,
    /// The form, and what it keeps alive on the heap.
    form: OnceLock<(Arc<dyn Any + Send + Sync>, u64)>,
    counted: AtomicBool,
}

impl Clone for Prepared {
    fn clone(&self) -> Self {
        Self {
            room: self.room,
            form: OnceLock::new(),
            counted: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("room", &self.room)
            .field("made", &self.form.get().is_some())
            .field("counted", &self.counted.load(Ordering::Relaxed))
            .finish()
    }
}

/// `headers` with every value in one right-sized allocation. Header values
/// and bodies arrive as views into a connection's read buffer (hyper parses
/// them in place), and an entry that kept such a view would keep the whole
/// buffer alive — kilobytes for an 11-byte value.
fn compact_headers(headers: &HeaderMap) -> HeaderMap {
    let total = headers.values().map(header::HeaderValue::len).sum();
    let mut block = Vec::with_capacity(total);
    for value in headers.values() {
        block.extend_from_slice(value.as_bytes());
    }
    let block = Bytes::from(block);
    let mut compact = HeaderMap::with_capacity(headers.len());
    let mut start = 0;
    for (name, value) in headers {
        let end = start + value.len();
        let mut copied = header::HeaderValue::from_maybe_shared(block.slice(start..end))
            .unwrap_or_else(|_| value.clone());
        copied.set_sensitive(value.is_sensitive());
        compact.append(name.clone(), copied);
        start = end;
    }
    compact
}

/// `body` in an allocation of its own, exactly its size: its buffer when it
/// owns one of that size, else a copy.
fn compact_body(body: Bytes) -> Bytes {
    let mut owned = Vec::from(body);
    owned.shrink_to_fit();
    Bytes::from(owned)
}

/// The tags a stored value is indexed under, for purging by tag: the
/// response's own (surrogate keys) and the cache's term for its URI.
pub type Tags = Arc<[Arc<str>]>;

fn no_tags() -> Tags {
    Arc::from(Vec::new())
}

impl CachedResponse {
    /// A response stored at `stored_at`, fresh for `ttl` and dropped then.
    /// Its header values are copied into one block of its own (the caller
    /// keeps its map: a stored miss's goes on to the client).
    pub fn new(
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        stored_at: SystemTime,
        ttl: Duration,
    ) -> Self {
        let headers = compact_headers(headers);
        Self {
            prepared: Prepared::default(),
            status,
            headers_weight: weight::headers(&headers),
            headers,
            body: compact_body(body),
            stored_at,
            fresh_until: later(stored_at, ttl),
            keep_until: later(stored_at, ttl),
            initial_age: Duration::ZERO,
            generated_etag: false,
            no_stale: false,
            while_revalidate: Duration::ZERO,
            if_error: Duration::ZERO,
            fetch_time: Duration::ZERO,
            tags: no_tags(),
        }
    }

    /// Marks the response as one whose stale copy is never used without
    /// revalidation (the engine reads that from its directives): apply
    /// before [`with_stale_windows`](Self::with_stale_windows).
    #[must_use]
    pub(crate) fn forbidding_stale(mut self, on: bool) -> Self {
        self.no_stale = on;
        self
    }

    /// Indexes the entry under `tags`.
    #[must_use]
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }

    /// Gives the entry room for a prepared form of its headers when `on`
    /// (counted in its weight once it is made: see `Prepared`).
    #[must_use]
    pub(crate) fn with_prepared_room(mut self, on: bool) -> Self {
        self.prepared.room = on;
        self
    }

    /// The prepared form of type `T`, made by `make` on first use; `None`
    /// when the entry has no room for one or holds one of another type.
    /// Its weight is taken to be its headers' (a framework's own header
    /// list holds about as much).
    pub(crate) fn prepared<T: Any + Send + Sync>(
        &self,
        make: impl FnOnce() -> T,
    ) -> Option<Arc<T>> {
        self.prepared_weighed(|| (make(), self.headers_weight))
    }

    /// [`prepared`](Self::prepared) for a form that `make` also weighs.
    pub(crate) fn prepared_weighed<T: Any + Send + Sync>(
        &self,
        make: impl FnOnce() -> (T, u64),
    ) -> Option<Arc<T>> {
        if !self.prepared.room {
            return None;
        }
        let (form, _) = self.prepared.form.get_or_init(|| {
            let (form, heap) = make();
            let form: Arc<dyn Any + Send + Sync> = Arc::new(form);
            (form, weight::shared::<T>() + heap)
        });
        Arc::clone(form).downcast().ok()
    }

    /// Whether the entry has room for a prepared form that its store has
    /// not counted yet (made or not): a hit then tells the store where the
    /// entry lives, once the form is made.
    #[inline]
    pub(crate) fn prepared_uncounted(&self) -> bool {
        self.prepared.room && !self.prepared.counted.load(Ordering::Relaxed)
    }

    /// What the prepared form adds to the entry's weight once it is made
    /// (nothing before).
    pub fn prepared_weight(&self) -> u64 {
        self.prepared.form.get().map_or(0, |(_, weight)| *weight)
    }

    /// Notes that the store holding the entry counts its prepared form.
    pub(crate) fn mark_prepared_counted(&self) {
        self.prepared.counted.store(true, Ordering::Relaxed);
    }

    /// The tags the entry is indexed under.
    pub fn tags(&self) -> &Tags {
        &self.tags
    }

    /// Keeps the entry for (at least) `grace` after it goes stale.
    #[must_use]
    pub(crate) fn with_keep(mut self, grace: Duration) -> Self {
        self.keep_until = self.keep_until.max(later(self.fresh_until, grace));
        self
    }

    /// Lets the entry be served stale for `while_revalidate` after it goes
    /// stale while a background request refreshes it, and for `if_error`
    /// when the origin fails (RFC 5861); it is kept that long. Neither
    /// applies to a response that forbids serving it stale, nor to a 5xx.
    #[must_use]
    pub(crate) fn with_stale_windows(
        mut self,
        while_revalidate: Duration,
        if_error: Duration,
    ) -> Self {
        if self.no_stale || self.status.is_server_error() {
            return self;
        }
        self.while_revalidate = while_revalidate;
        self.if_error = if_error;
        self.with_keep(while_revalidate.max(if_error))
    }

    /// Records how long the response took to fetch, for early refresh.
    #[must_use]
    pub(crate) fn with_fetch_time(mut self, fetch_time: Duration) -> Self {
        self.fetch_time = fetch_time;
        self
    }

    /// Marks the `ETag` as made by the cache, not the origin: it is answered
    /// to clients but never sent upstream to revalidate.
    #[must_use]
    pub(crate) fn with_generated_etag(mut self) -> Self {
        self.generated_etag = true;
        self
    }

    /// Sets how old the response already was when stored (RFC 9111
    /// §4.2.3's corrected initial age, from `Age` and `Date`).
    #[must_use]
    pub(crate) fn with_initial_age(mut self, age: Duration) -> Self {
        self.initial_age = age;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The stored headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// When the response was stored.
    pub(crate) fn stored_at(&self) -> SystemTime {
        self.stored_at
    }

    /// When the store may drop the entry.
    pub fn keep_until(&self) -> SystemTime {
        self.keep_until
    }

    /// Whether the `ETag` was made by the cache rather than the origin.
    pub(crate) fn has_generated_etag(&self) -> bool {
        self.generated_etag
    }

    /// Whether the entry may be served at `now` without asking the origin.
    pub(crate) fn is_fresh(&self, now: SystemTime) -> bool {
        now < self.fresh_until
    }

    /// The entry made stale at `now` by a soft purge, kept as long after
    /// `now` as it was to be kept after going stale (its stale windows and
    /// `keep` then run from the purge); `None` when it is stale already, or
    /// would be kept no longer than `now` (a soft purge then removes it).
    pub(crate) fn made_stale(&self, now: SystemTime) -> Option<Self> {
        if !self.is_fresh(now) {
            return None;
        }
        let grace = self.keep_until.duration_since(self.fresh_until).ok()?;
        if grace.is_zero() {
            return None;
        }
        Some(Self {
            fresh_until: now,
            keep_until: later(now, grace),
            ..self.clone()
        })
    }

    /// Whether the store still holds the entry at `now`, fresh or stale.
    pub fn is_kept(&self, now: SystemTime) -> bool {
        now < self.keep_until
    }

    /// Whether the response forbids serving it stale without revalidation
    /// (`must-revalidate`, `proxy-revalidate`, `s-maxage`, `no-cache`): then
    /// `max-stale` is ignored and an unreachable origin gives 504 (§4.2.4).
    pub(crate) fn forbids_stale(&self) -> bool {
        self.no_stale
    }

    /// Whether the entry is stale at `now` but within its
    /// `stale-while-revalidate` window: serve it, and refresh it.
    pub(crate) fn serves_while_revalidating(&self, now: SystemTime) -> bool {
        !self.is_fresh(now) && now < later(self.fresh_until, self.while_revalidate)
    }

    /// Whether the entry may answer at `now` when the origin fails: fresh,
    /// or stale within its `stale-if-error` window.
    pub(crate) fn serves_if_error(&self, now: SystemTime) -> bool {
        !self.if_error.is_zero() && now < later(self.fresh_until, self.if_error)
    }

    /// How long the response took to fetch.
    pub(crate) fn fetch_time(&self) -> Duration {
        self.fetch_time
    }

    /// The request headers that ask the origin whether this entry is still
    /// current (RFC 9111 §4.3.1): `If-None-Match` with the origin's `ETag`,
    /// `If-Modified-Since` with its `Last-Modified`. Empty when the origin
    /// gave no validator.
    pub fn validators(&self) -> HeaderMap {
        let mut conditions = HeaderMap::new();
        if !self.generated_etag {
            if let Some(etag) = self.headers.get(header::ETAG) {
                conditions.insert(header::IF_NONE_MATCH, etag.clone());
            }
        }
        if let Some(modified) = self.headers.get(header::LAST_MODIFIED) {
            conditions.insert(header::IF_MODIFIED_SINCE, modified.clone());
        }
        conditions
    }

    /// Whether the origin gave a validator ([`validators`](Self::validators)
    /// would not be empty), without building the headers.
    pub(crate) fn has_validators(&self) -> bool {
        !self.generated_etag && self.headers.contains_key(header::ETAG)
            || self.headers.contains_key(header::LAST_MODIFIED)
    }

    /// How long ago the entry went stale at `now` (zero while fresh).
    pub(crate) fn staleness(&self, now: SystemTime) -> Duration {
        now.duration_since(self.fresh_until).unwrap_or_default()
    }

    /// The entry's age at `now` (RFC 9111 §4.2.3): its initial age plus the
    /// time it has been stored (zero resident time if the clock went back).
    pub(crate) fn age(&self, now: SystemTime) -> Duration {
        self.initial_age
            .saturating_add(now.duration_since(self.stored_at).unwrap_or_default())
    }

    /// Time left until the entry goes stale (zero once stale).
    pub(crate) fn time_to_live(&self, now: SystemTime) -> Duration {
        self.fresh_until.duration_since(now).unwrap_or_default()
    }

    /// A copy that is fresh for `ttl` from `now`, for refreshing an entry's
    /// TTL; it is kept as long after that as before.
    #[must_use]
    pub(crate) fn refreshed(&self, now: SystemTime, ttl: Duration) -> Self {
        let grace = self
            .keep_until
            .duration_since(self.fresh_until)
            .unwrap_or_default();
        Self {
            fresh_until: later(now, ttl),
            keep_until: later(later(now, ttl), grace),
            ..self.clone()
        }
    }

    /// What the entry costs against a cache's `max_bytes`: what it keeps
    /// alive on the heap — the body, the header map with its values, the
    /// entry itself and its tags (see the `weight` module). The store adds
    /// the key's own cost, and the [`prepared_weight`](Self::prepared_weight)
    /// once it counts the form.
    pub fn weight(&self) -> u64 {
        weight::shared::<Self>()
            + weight::body(self.body.len())
            + self.headers_weight
            + weight::tags(&self.tags)
    }
}

/// What the store keeps under the primary key of a URL whose responses vary
/// by request headers the rule does not key on (RFC 9111 §4.1): the names of
/// those headers. Each variant lives under its own key, made from the
/// primary key, the index's generation and the request's values.
///
/// The generation is random per index: once an index is replaced (by a
/// response without `Vary`, or another `Vary`) or purged, the variants
/// stored under the old one can never be found again, and expire unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantIndex {
    names: Arc<[HeaderName]>,
    generation: u64,
    keep_until: SystemTime,
    tags: Tags,
    /// How many variants were stored under this generation (a refresh of
    /// one counts again): past the cache's `max_variants` a new generation
    /// starts, so one URL cannot keep an unbounded set of variants alive.
    stored: usize,
}

impl VariantIndex {
    /// An index for responses varying on `names`, kept until `keep_until`.
    pub fn new(names: Arc<[HeaderName]>, generation: u64, keep_until: SystemTime) -> Self {
        Self {
            names,
            generation,
            keep_until,
            tags: no_tags(),
            stored: 0,
        }
    }

    /// Indexes the variant index under `tags` (its URI's term).
    #[must_use]
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }
    /// The request headers the variants differ by, lowercase and sorted.
    pub(crate) fn names(&self) -> &[HeaderName] {
        &self.names
    }
    /// The index's generation, part of every variant key.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
    /// When the store may drop the index.
    pub fn keep_until(&self) -> SystemTime {
        self.keep_until
    }
    /// The same index, kept at least until `until`.
    #[must_use]
    pub(crate) fn kept_until(&self, until: SystemTime) -> Self {
        Self {
            keep_until: self.keep_until.max(until),
            ..self.clone()
        }
    }
    /// How many variants were stored under this generation.
    pub(crate) fn stored(&self) -> usize {
        self.stored
    }
    /// The same index, counting one more stored variant.
    #[must_use]
    pub(crate) fn with_one_more(mut self) -> Self {
        self.stored = self.stored.saturating_add(1);
        self
    }
}

/// A value the application stored through the programmatic cache
/// (`Cache::set`): serialized bytes and when they expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueEntry {
    bytes: Bytes,
    stored_at: SystemTime,
    expires_at: SystemTime,
    tags: Tags,
}

impl ValueEntry {
    /// `bytes` stored at `stored_at`, live for `ttl`, in an allocation of
    /// their own size (a serializer's buffer usually has room to spare).
    pub fn new(bytes: Bytes, stored_at: SystemTime, ttl: Duration) -> Self {
        Self {
            bytes: compact_body(bytes),
            stored_at,
            expires_at: later(stored_at, ttl),
            tags: no_tags(),
        }
    }
    /// Indexes the value under `tags`.
    #[must_use]
    pub fn with_tags(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }
    /// The same value, live until `now + ttl`.
    #[must_use]
    pub(crate) fn expiring(&self, now: SystemTime, ttl: Duration) -> Self {
        Self {
            expires_at: later(now, ttl),
            ..self.clone()
        }
    }
    /// The serialized value.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
    /// When it expires.
    pub(crate) fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

/// One value in a store.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A response.
    Response(Arc<CachedResponse>),
    /// The variant index of a URL.
    Variants(Arc<VariantIndex>),
    /// An application value.
    Value(Arc<ValueEntry>),
}

impl Entry {
    /// When the store may drop the value.
    pub fn keep_until(&self) -> SystemTime {
        match self {
            Self::Response(response) => response.keep_until,
            Self::Variants(index) => index.keep_until,
            Self::Value(value) => value.expires_at,
        }
    }

    /// The tags the value is indexed under.
    pub fn tags(&self) -> &[Arc<str>] {
        match self {
            Self::Response(response) => &response.tags,
            Self::Variants(index) => &index.tags,
            Self::Value(value) => &value.tags,
        }
    }

    /// Whether the store still holds the value at `now`.
    pub fn is_kept(&self, now: SystemTime) -> bool {
        now < self.keep_until()
    }

    /// The address of the shared value: tells the very value apart from an
    /// equal one (the key index uses it to ignore a replaced value).
    pub(crate) fn address(&self) -> usize {
        match self {
            Self::Response(response) => Arc::as_ptr(response) as usize,
            Self::Variants(index) => Arc::as_ptr(index) as usize,
            Self::Value(value) => Arc::as_ptr(value) as usize,
        }
    }

    /// What the value costs against a cache's `max_bytes`: what it keeps
    /// alive on the heap (the store adds the key's own cost).
    pub fn weight(&self) -> u64 {
        match self {
            Self::Response(response) => response.weight(),
            Self::Variants(index) => {
                weight::shared::<VariantIndex>()
                    + weight::shared_slice::<HeaderName>(index.names.len())
                    + weight::tags(&index.tags)
            }
            Self::Value(value) => {
                weight::shared::<ValueEntry>()
                    + value.bytes.len() as u64
                    + weight::tags(&value.tags)
            }
        }
    }

    /// The response, if this is one.
    pub fn response(&self) -> Option<&Arc<CachedResponse>> {
        match self {
            Self::Response(response) => Some(response),
            Self::Variants(_) | Self::Value(_) => None,
        }
    }
}

impl From<CachedResponse> for Entry {
    fn from(response: CachedResponse) -> Self {
        Self::Response(Arc::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_age_and_weight() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        let entry = CachedResponse::new(
            StatusCode::OK,
            &headers,
            Bytes::from_static(b"hello"),
            t0,
            Duration::from_secs(60),
        );
        assert!(entry.is_fresh(t0 + Duration::from_secs(59)));
        assert!(!entry.is_fresh(t0 + Duration::from_secs(60)));
        assert_eq!(
            entry.age(t0 + Duration::from_secs(7)),
            Duration::from_secs(7)
        );
        assert_eq!(entry.age(t0 - Duration::from_secs(7)), Duration::ZERO);
        let aged = entry.clone().with_initial_age(Duration::from_secs(10));
        assert_eq!(
            aged.age(t0 + Duration::from_secs(7)),
            Duration::from_secs(17)
        );
        assert_eq!(
            entry.time_to_live(t0 + Duration::from_secs(50)),
            Duration::from_secs(10)
        );
        // The entry, the body, one standard header (a map of one slot and
        // the value's block), no tags.
        let expected = weight::shared::<CachedResponse>()
            + weight::body(5)
            + weight::headers(entry.headers())
            + weight::tags(&[]);
        assert_eq!(entry.weight(), expected);
        assert_eq!(weight::headers(entry.headers()), 110 + 10 + 24 + 4 * 8);
        let refreshed = entry.refreshed(t0 + Duration::from_secs(100), Duration::from_secs(5));
        assert!(refreshed.is_fresh(t0 + Duration::from_secs(104)));
        assert_eq!(refreshed.stored_at(), t0);
    }

    #[test]
    fn stale_entries_are_kept_for_their_grace() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let entry = CachedResponse::new(
            StatusCode::OK,
            &HeaderMap::new(),
            Bytes::new(),
            t0,
            Duration::from_secs(10),
        )
        .with_keep(Duration::from_secs(30));
        let later = t0 + Duration::from_secs(25);
        assert!(!entry.is_fresh(later) && entry.is_kept(later));
        assert_eq!(entry.staleness(later), Duration::from_secs(15));
        assert!(!entry.is_kept(t0 + Duration::from_secs(40)));
        let refreshed = entry.refreshed(later, Duration::from_secs(10));
        assert_eq!(refreshed.keep_until(), later + Duration::from_secs(40));
    }

    #[test]
    fn stale_windows_rfc5861() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let secs = Duration::from_secs;
        let entry = |status: StatusCode, forbidding: bool| {
            CachedResponse::new(status, &HeaderMap::new(), Bytes::new(), t0, secs(10))
                .forbidding_stale(forbidding)
                .with_keep(secs(5))
                .with_stale_windows(secs(30), secs(60))
        };
        let ok = entry(StatusCode::OK, false);
        assert_eq!(ok.keep_until(), t0 + secs(70));
        assert!(!ok.serves_while_revalidating(t0 + secs(9)), "fresh");
        assert!(ok.serves_while_revalidating(t0 + secs(39)));
        assert!(!ok.serves_while_revalidating(t0 + secs(40)));
        assert!(ok.serves_if_error(t0 + secs(69)));
        assert!(!ok.serves_if_error(t0 + secs(70)));
        for forbidding in [
            entry(StatusCode::OK, true),
            entry(StatusCode::SERVICE_UNAVAILABLE, false),
        ] {
            assert_eq!(forbidding.keep_until(), t0 + secs(15));
            assert!(!forbidding.serves_while_revalidating(t0 + secs(11)));
            assert!(!forbidding.serves_if_error(t0 + secs(11)));
        }
    }

    #[test]
    fn validators_come_from_the_origin_only_rfc9111_4_3_1() {
        let headers = crate::test_support::header_map(&[
            ("etag", "\"v1\""),
            ("last-modified", "Tue, 01 Sep 2026 10:00:00 GMT"),
            ("cache-control", "max-age=5, Must-Revalidate"),
        ]);
        let t0 = SystemTime::UNIX_EPOCH;
        let entry = CachedResponse::new(StatusCode::OK, &headers, Bytes::new(), t0, Duration::ZERO)
            .forbidding_stale(true);
        let conditions = entry.validators();
        assert_eq!(conditions["if-none-match"], "\"v1\"");
        assert_eq!(
            conditions["if-modified-since"],
            "Tue, 01 Sep 2026 10:00:00 GMT"
        );
        assert!(entry.forbids_stale());
        let generated = entry.with_generated_etag();
        assert!(!generated.validators().contains_key("if-none-match"));
    }
}
