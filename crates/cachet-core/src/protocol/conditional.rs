//! Conditional requests (RFC 9110 §13): answering `If-None-Match` and
//! `If-Modified-Since` with 304 Not Modified, from the cache or, through
//! [`Validators`], before a handler does its expensive work.

use crate::protocol::freshness::parse_http_date;
use crate::request::RequestHead;
use http::header::{self, HeaderMap, HeaderValue};
use std::time::SystemTime;

/// Whether `req`'s preconditions say the client's copy is current, given the
/// representation's `etag` (an entity-tag as sent in `ETag`) and
/// `last_modified` time (RFC 9110 §13.2.2: `If-None-Match` first; only
/// without it, `If-Modified-Since`).
pub(crate) fn is_not_modified(
    req: &dyn RequestHead,
    etag: Option<&[u8]>,
    last_modified: Option<SystemTime>,
) -> bool {
    let mut lines: Vec<&[u8]> = Vec::new();
    req.header_values(&header::IF_NONE_MATCH, &mut |line| lines.push(line));
    if !lines.is_empty() {
        return if_none_match_matches(&lines, etag);
    }
    let Some(since) = req.header(&header::IF_MODIFIED_SINCE) else {
        return false;
    };
    match (parse_http_date(since), last_modified) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Whether a `status` response with `headers` answers `req` with 304 Not
/// Modified instead: only a 200, and only when the request has
/// `If-None-Match` or `If-Modified-Since` that its validators satisfy.
/// The cache asks this for hits and for origin responses to requests whose
/// preconditions it kept from the origin.
pub(crate) fn answers_not_modified(
    req: &dyn RequestHead,
    status: http::StatusCode,
    headers: &HeaderMap,
) -> bool {
    let conditional = req.header(&header::IF_NONE_MATCH).is_some()
        || req.header(&header::IF_MODIFIED_SINCE).is_some();
    if !conditional || status != http::StatusCode::OK {
        // Most requests: no stored date need be parsed.
        return false;
    }
    // Without Last-Modified, If-Modified-Since is evaluated against the
    // stored response's Date (RFC 9110 §13.1.3, RFC 9111 §4.3.2).
    let modified = [header::LAST_MODIFIED, header::DATE]
        .iter()
        .find_map(|name| crate::protocol::freshness::http_date(headers.get(name)));
    is_not_modified(
        req,
        headers.get(header::ETAG).map(HeaderValue::as_bytes),
        modified,
    )
}

/// The preconditions a client's request carries that the cache evaluates
/// itself: they are removed before a cacheable request goes to the origin,
/// so the origin sends the whole response to store (RFC 9111 §4.3.2).
pub(crate) const CLIENT_PRECONDITIONS: [header::HeaderName; 2] =
    [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE];

/// Whether two entity-tags are the same by the weak comparison (RFC 9110
/// §8.8.3.2): their opaque parts are equal, whatever their weakness.
pub(crate) fn same_entity_tag(a: &[u8], b: &[u8]) -> bool {
    matches!((opaque_tag(a), opaque_tag(b)), (Some(a), Some(b)) if a == b)
}

/// Whether two entity-tags are the same by the strong comparison (RFC 9110
/// §8.8.3.2): neither is weak, and their opaque parts are equal.
pub(crate) fn same_strong_entity_tag(a: &[u8], b: &[u8]) -> bool {
    let strong = |tag: &[u8]| !tag.trim_ascii().starts_with(b"W/");
    strong(a) && strong(b) && same_entity_tag(a, b)
}

/// `If-None-Match` (RFC 9110 §13.1.2) with the weak comparison: `*` matches
/// any current representation; otherwise any listed tag whose opaque part
/// equals `etag`'s. Malformed members are ignored.
fn if_none_match_matches(lines: &[&[u8]], etag: Option<&[u8]>) -> bool {
    let current = etag.and_then(opaque_tag);
    lines.iter().any(|line| {
        let line = String::from_utf8_lossy(line);
        crate::protocol::cache_control::split_list(&line)
            .into_iter()
            .any(|member| {
                member == "*"
                    || current.is_some_and(|current| opaque_tag(member.as_bytes()) == Some(current))
            })
    })
}

/// The quoted part of an entity-tag, without the weakness prefix (§8.8.3).
fn opaque_tag(tag: &[u8]) -> Option<&[u8]> {
    let tag = tag.trim_ascii();
    let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
    (tag.len() >= 2 && tag.starts_with(b"\"") && tag.ends_with(b"\"")).then_some(tag)
}

/// The headers a 304 carries (RFC 9110 §15.4.5): those of the stored 200
/// that a cache needs to update its copy, and nothing about the body.
pub(crate) fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    const KEPT: [header::HeaderName; 7] = [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ];
    let mut headers = HeaderMap::with_capacity(KEPT.len() + 3);
    for name in KEPT {
        for value in stored.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers
}

/// A resource's validators — its entity-tag and modification time — for
/// answering conditional requests before doing expensive work (Django's
/// `condition` decorator, or an ETag-condition helper in a Django app).
///
/// ```
/// use cachet_core::Validators;
/// use std::time::{Duration, SystemTime};
///
/// let validators = Validators::new()
///     .strong_etag("article-42-v7")
///     .last_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
///
/// let request = http::Request::get("/articles/42")
///     .header("if-none-match", "\"article-42-v7\"")
///     .body(())
///     .unwrap();
/// // The client's copy is current: answer 304 with these headers, skip the handler.
/// let headers = validators.not_modified(&request).expect("not modified");
/// assert_eq!(headers["etag"], "\"article-42-v7\"");
///
/// let fresh = http::Request::get("/articles/42").body(()).unwrap();
/// assert!(validators.not_modified(&fresh).is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<SystemTime>,
}

impl Validators {
    /// No validators yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A strong entity-tag: `tag` must be visible ASCII without `"`; other
    /// characters are percent-encoded so the header stays valid.
    #[must_use]
    pub fn strong_etag(mut self, tag: &str) -> Self {
        self.etag = Some(entity_tag(false, tag));
        self
    }

    /// A weak entity-tag (`W/"…"`), for representations that are equivalent
    /// but not byte-identical.
    #[must_use]
    pub fn weak_etag(mut self, tag: &str) -> Self {
        self.etag = Some(entity_tag(true, tag));
        self
    }

    /// An entity-tag computed from the body (a hash, with the `etag` crate).
    #[must_use]
    pub fn etag_of(mut self, body: &[u8]) -> Self {
        self.etag = Some(etag_for_body(body));
        self
    }

    /// The last modification time (sent with one-second precision).
    #[must_use]
    pub fn last_modified(mut self, at: SystemTime) -> Self {
        self.last_modified = Some(at);
        self
    }

    /// The `ETag` and `Last-Modified` headers to send with the response.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(2);
        if let Some(etag) = &self.etag {
            headers.insert(header::ETAG, etag.clone());
        }
        if let Some(at) = self.last_modified {
            if let Ok(value) = HeaderValue::try_from(httpdate::fmt_http_date(at)) {
                headers.insert(header::LAST_MODIFIED, value);
            }
        }
        headers
    }

    /// `Some(headers for a 304)` when `req`'s preconditions show the client
    /// already has this representation; `None` when the handler should run.
    pub fn not_modified(&self, req: &dyn RequestHead) -> Option<HeaderMap> {
        // The header carries whole seconds: compare what the client saw.
        let last_modified = self.last_modified.map(whole_seconds);
        let etag = self.etag.as_ref().map(HeaderValue::as_bytes);
        is_not_modified(req, etag, last_modified).then(|| self.headers())
    }
}

fn whole_seconds(at: SystemTime) -> SystemTime {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn entity_tag(weak: bool, tag: &str) -> HeaderValue {
    let mut text = String::with_capacity(tag.len() + 4);
    if weak {
        text.push_str("W/");
    }
    text.push('"');
    for byte in tag.bytes() {
        if byte.is_ascii_graphic() && byte != b'"' && byte != b'%' {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    text.push('"');
    HeaderValue::try_from(text).expect("visible ASCII only")
}

/// A strong entity-tag for `body`: a hash of the bytes (the `etag` crate).
pub(crate) fn etag_for_body(body: &[u8]) -> HeaderValue {
    let tag = etag::EntityTag::from_data(body);
    // Quoted as its `Display` does, into one allocation of the right size.
    let mut quoted = String::with_capacity(tag.tag().len() + 2);
    quoted.push('"');
    quoted.push_str(tag.tag());
    quoted.push('"');
    HeaderValue::try_from(quoted).expect("the etag crate writes visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::test_support::request as req;

    const ETAG: &[u8] = b"\"v1\"";

    #[test]
    fn a_body_tag_reads_as_the_etag_crate_writes_it() {
        for body in [&b""[..], b"hello", &[0u8; 5000]] {
            let written = etag::EntityTag::from_data(body).to_string();
            assert_eq!(etag_for_body(body).to_str().unwrap(), written);
        }
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison_rfc9110_13_1_2() {
        assert!(is_not_modified(
            &req(&[("if-none-match", "\"v1\"")]),
            Some(ETAG),
            None
        ));
        assert!(is_not_modified(
            &req(&[("if-none-match", "W/\"v1\"")]),
            Some(ETAG),
            None
        ));
        assert!(is_not_modified(
            &req(&[("if-none-match", "\"v1\"")]),
            Some(b"W/\"v1\""),
            None
        ));
        assert!(!is_not_modified(
            &req(&[("if-none-match", "\"v2\"")]),
            Some(ETAG),
            None
        ));
        assert!(!is_not_modified(
            &req(&[("if-none-match", "v1")]),
            Some(ETAG),
            None
        ));
    }

    #[test]
    fn if_none_match_lists_and_star() {
        assert!(is_not_modified(
            &req(&[("if-none-match", "\"a\", \"v1\"")]),
            Some(ETAG),
            None
        ));
        assert!(is_not_modified(
            &req(&[("if-none-match", "\"a\""), ("if-none-match", "\"v1\"")]),
            Some(ETAG),
            None
        ));
        assert!(is_not_modified(
            &req(&[("if-none-match", "\"a,b\", \"v1\"")]),
            Some(ETAG),
            None
        ));
        assert!(is_not_modified(&req(&[("if-none-match", "*")]), None, None));
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since_rfc9110_13_2_2() {
        let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let since = httpdate::fmt_http_date(modified + Duration::from_secs(60));
        let both = req(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &since),
        ]);
        assert!(!is_not_modified(&both, Some(ETAG), Some(modified)));
        assert!(is_not_modified(
            &req(&[("if-modified-since", &since)]),
            Some(ETAG),
            Some(modified)
        ));
        let before = httpdate::fmt_http_date(modified - Duration::from_secs(60));
        assert!(!is_not_modified(
            &req(&[("if-modified-since", &before)]),
            Some(ETAG),
            Some(modified)
        ));
        assert!(!is_not_modified(
            &req(&[("if-modified-since", "yesterday")]),
            Some(ETAG),
            Some(modified)
        ));
        assert!(!is_not_modified(
            &req(&[("if-modified-since", &since)]),
            Some(ETAG),
            None
        ));
    }

    #[test]
    fn if_modified_since_without_last_modified_uses_the_date_rfc9110_13_1_3() {
        let at = |secs: u64| {
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        };
        let stored = crate::test_support::header_map(&[("date", &at(1_000_000))]);
        let asked = |since: u64| {
            http::Request::get("/")
                .header("if-modified-since", at(since))
                .body(())
                .unwrap()
        };
        let ok = http::StatusCode::OK;
        assert!(answers_not_modified(&asked(1_000_000), ok, &stored));
        assert!(answers_not_modified(&asked(2_000_000), ok, &stored));
        assert!(!answers_not_modified(&asked(999_999), ok, &stored));
        // Last-Modified, when there is one, decides.
        let both = crate::test_support::header_map(&[
            ("date", &at(1_000_000)),
            ("last-modified", &at(500_000)),
        ]);
        assert!(answers_not_modified(&asked(600_000), ok, &both));
        assert!(!answers_not_modified(&asked(600_000), ok, &stored));
        // Neither: never a 304.
        assert!(!answers_not_modified(
            &asked(2_000_000),
            ok,
            &HeaderMap::new()
        ));
    }

    #[test]
    fn not_modified_headers_keep_only_what_a_304_carries_rfc9110_15_4_5() {
        let mut stored = HeaderMap::new();
        stored.insert(header::ETAG, HeaderValue::from_static("\"v1\""));
        stored.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        stored.insert(header::VARY, HeaderValue::from_static("accept-language"));
        stored.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        stored.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let headers = not_modified_headers(&stored);
        assert_eq!(headers.len(), 3);
        assert!(!headers.contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn validators_answer_before_the_handler_runs() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let validators = Validators::new().weak_etag("x\"y").last_modified(at);
        assert_eq!(validators.headers()[header::ETAG], "W/\"x%22y\"");
        // Sub-second precision is not held against the client.
        let since = httpdate::fmt_http_date(at);
        assert!(validators
            .not_modified(&req(&[("if-modified-since", &since)]))
            .is_some());
        assert!(validators
            .not_modified(&req(&[("if-none-match", "\"x%22y\"")]))
            .is_some());
        let by_body = Validators::new().etag_of(b"hello");
        assert!(by_body.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .starts_with("\"5-"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn bytes_request(name: &str, value: &[u8]) -> Option<http::Request<()>> {
            let value = HeaderValue::from_bytes(value).ok()?;
            let mut request = http::Request::new(());
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value,
            );
            Some(request)
        }

        proptest! {
            /// Any `If-None-Match`/`If-Modified-Since` bytes against any
            /// stored `ETag` bytes: an answer, never a panic.
            #[test]
            fn preconditions_never_panic(
                condition in proptest::collection::vec(any::<u8>(), 0..48),
                etag in proptest::collection::vec(any::<u8>(), 0..24),
                since in any::<bool>(),
            ) {
                let name = if since { "if-modified-since" } else { "if-none-match" };
                if let Some(request) = bytes_request(name, &condition) {
                    let _ = is_not_modified(&request, Some(&etag), Some(SystemTime::UNIX_EPOCH));
                    let _ = same_entity_tag(&etag, &condition);
                }
            }

            /// A tag written by `Validators` is matched by an `If-None-Match`
            /// naming it — strong or weak, alone or in a list — and by no
            /// list without it.
            #[test]
            fn entity_tags_round_trip_through_if_none_match(
                tag in "[!#-~]{0,12}",
                other in "[!#-~]{1,12}",
                weak in any::<bool>(),
            ) {
                let validators = if weak {
                    Validators::new().weak_etag(&tag)
                } else {
                    Validators::new().strong_etag(&tag)
                };
                let written = validators.headers()[header::ETAG].clone();
                let written_text = written.to_str().unwrap();
                let quoted = written_text.strip_prefix("W/").unwrap_or(written_text).to_owned();
                for listed in [
                    written_text.to_owned(),
                    format!("W/{quoted}"),
                    format!("\"{other}x\", {quoted}"),
                ] {
                    let request = bytes_request("if-none-match", listed.as_bytes()).unwrap();
                    prop_assert!(validators.not_modified(&request).is_some(), "{}", listed);
                }
                let miss = format!("{}{other}\"", &quoted[..quoted.len() - 1]);
                let request = bytes_request("if-none-match", miss.as_bytes()).unwrap();
                prop_assert!(validators.not_modified(&request).is_none());
            }
        }
    }
}
