//! Range requests answered from a stored complete response (RFC 9110 §14).
//!
//! One byte range — `bytes=0-99`, open-ended `bytes=100-`, suffix
//! `bytes=-100` — is answered 206 with `Content-Range`; a range past the
//! end is answered 416 with `Content-Range: bytes */N`. Several ranges are
//! answered with the whole 200 (RFC 9110 §14.2 lets a server ignore
//! `Range`; a `multipart/byteranges` body costs a copy of the ranges), and
//! so is a `Range` that does not parse or an `If-Range` that does not
//! match (§13.1.5).

use crate::protocol::conditional::same_strong_entity_tag;
use crate::protocol::freshness::parse_http_date;
use crate::request::RequestHead;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use std::ops::Range;

/// What a range request gets from a stored response of `length` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeAnswer {
    /// The whole response (no range, several, invalid, or `If-Range` not
    /// matching).
    Whole,
    /// 206 with these bytes.
    Partial(Range<usize>),
    /// 416: no byte of the range exists.
    Unsatisfiable,
}

/// How `req` asks for a stored 200 with `headers` and a body of `length`
/// bytes.
fn answer_range(req: &dyn RequestHead, headers: &HeaderMap, length: usize) -> RangeAnswer {
    let Some(range) = req.header(&header::RANGE) else {
        return RangeAnswer::Whole;
    };
    if !if_range_matches(req, headers) {
        return RangeAnswer::Whole;
    }
    parse(range, length)
}

/// The answer `req`'s `Range` makes of a stored 200 with `headers` and
/// `body` — 206 with the part, or 416 — with `headers` given
/// `Content-Range` and the part's `Content-Length`; `None` for the whole
/// response.
pub(crate) fn partial(
    req: &dyn RequestHead,
    headers: &mut HeaderMap,
    body: &Bytes,
) -> Option<(StatusCode, Bytes)> {
    let length = body.len();
    let (status, content_range, part) = match answer_range(req, headers, length) {
        RangeAnswer::Whole => return None,
        RangeAnswer::Partial(bytes) => (
            StatusCode::PARTIAL_CONTENT,
            format!("bytes {}-{}/{length}", bytes.start, bytes.end - 1),
            body.slice(bytes),
        ),
        RangeAnswer::Unsatisfiable => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("bytes */{length}"),
            Bytes::new(),
        ),
    };
    // Digits, spaces, `-`, `/` and `*`: always a valid value.
    if let Ok(value) = HeaderValue::from_str(&content_range) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part.len()));
    Some((status, part))
}

/// `If-Range` (§13.1.5): absent, or the stored response's strong `ETag`,
/// or exactly its `Last-Modified` date.
fn if_range_matches(req: &dyn RequestHead, headers: &HeaderMap) -> bool {
    let Some(condition) = req.header(&header::IF_RANGE) else {
        return true;
    };
    let condition = condition.trim_ascii();
    if condition.starts_with(b"\"") || condition.starts_with(b"W/") {
        return headers
            .get(header::ETAG)
            .is_some_and(|etag| same_strong_entity_tag(condition, etag.as_bytes()));
    }
    match (
        parse_http_date(condition),
        headers
            .get(header::LAST_MODIFIED)
            .and_then(|value| parse_http_date(value.as_bytes())),
    ) {
        (Some(asked), Some(modified)) => asked == modified,
        _ => false,
    }
}

/// The `bytes` ranges of `value` over `length` bytes.
fn parse(value: &[u8], length: usize) -> RangeAnswer {
    let Ok(text) = std::str::from_utf8(value) else {
        return RangeAnswer::Whole;
    };
    let Some((unit, set)) = text.trim().split_once('=') else {
        return RangeAnswer::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAnswer::Whole;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|spec| !spec.is_empty())
        .collect();
    let [spec] = specs.as_slice() else {
        // None, or several: the whole response.
        return RangeAnswer::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |digits: &str| -> Option<Option<usize>> {
        if digits.is_empty() {
            return Some(None);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Past usize: beyond any body.
        Some(Some(digits.parse().unwrap_or(usize::MAX)))
    };
    let (Some(first), Some(last)) = (number(first.trim()), number(last.trim())) else {
        return RangeAnswer::Whole;
    };
    match (first, last) {
        // Suffix: the last `n` bytes.
        (None, Some(n)) => {
            if n == 0 || length == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial(length.saturating_sub(n)..length)
            }
        }
        (Some(start), last) => {
            if let Some(last) = last {
                if last < start {
                    return RangeAnswer::Whole;
                }
            }
            if start >= length {
                return RangeAnswer::Unsatisfiable;
            }
            let end = last.map_or(length, |last| last.saturating_add(1).min(length));
            RangeAnswer::Partial(start..end)
        }
        (None, None) => RangeAnswer::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{header_map, request};

    fn asked(headers: &[(&str, &str)], stored: &[(&str, &str)], length: usize) -> RangeAnswer {
        answer_range(&request(headers), &header_map(stored), length)
    }

    fn range(value: &str) -> RangeAnswer {
        asked(&[("range", value)], &[], 100)
    }

    #[test]
    fn single_open_ended_and_suffix_ranges_rfc9110_14_1_2() {
        assert_eq!(range("bytes=0-9"), RangeAnswer::Partial(0..10));
        assert_eq!(range("bytes=90-"), RangeAnswer::Partial(90..100));
        assert_eq!(range("bytes=90-1000"), RangeAnswer::Partial(90..100));
        assert_eq!(range("bytes=-10"), RangeAnswer::Partial(90..100));
        assert_eq!(range("bytes=-1000"), RangeAnswer::Partial(0..100));
        assert_eq!(range("BYTES = 5-5"), RangeAnswer::Partial(5..6));
        assert_eq!(
            range("bytes=99999999999999999999999-"),
            RangeAnswer::Unsatisfiable
        );
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges_rfc9110_14_2() {
        assert_eq!(range("bytes=100-"), RangeAnswer::Unsatisfiable);
        assert_eq!(range("bytes=-0"), RangeAnswer::Unsatisfiable);
        assert_eq!(
            asked(&[("range", "bytes=0-")], &[], 0),
            RangeAnswer::Unsatisfiable
        );
        for ignored in [
            "bytes=5-1",
            "items=0-9",
            "bytes=a-b",
            "bytes=-",
            "bytes=",
            "bytes=0-1,5-9",
            "0-9",
        ] {
            assert_eq!(range(ignored), RangeAnswer::Whole, "{ignored}");
        }
        assert_eq!(asked(&[], &[], 100), RangeAnswer::Whole);
    }

    #[test]
    fn if_range_needs_the_strong_etag_or_the_exact_date_rfc9110_13_1_5() {
        let stored = [
            ("etag", "\"v1\""),
            ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ];
        let with = |condition: &str| {
            asked(
                &[("range", "bytes=0-9"), ("if-range", condition)],
                &stored,
                100,
            )
        };
        assert_eq!(with("\"v1\""), RangeAnswer::Partial(0..10));
        assert_eq!(with("\"v2\""), RangeAnswer::Whole);
        assert_eq!(with("W/\"v1\""), RangeAnswer::Whole);
        assert_eq!(
            with("Sun, 06 Nov 1994 08:49:37 GMT"),
            RangeAnswer::Partial(0..10)
        );
        assert_eq!(with("Sun, 06 Nov 1994 08:49:38 GMT"), RangeAnswer::Whole);
        assert_eq!(with("garbage"), RangeAnswer::Whole);
        let weak = [("etag", "W/\"v1\"")];
        assert_eq!(
            asked(
                &[("range", "bytes=0-9"), ("if-range", "W/\"v1\"")],
                &weak,
                100
            ),
            RangeAnswer::Whole
        );
    }
}
