//! The canonical request target: what rules match, what keys hold and what
//! the origin receives — one string, so that the three can never disagree.
//!
//! The path is normalized as RFC 3986 §6.2.2 allows: percent-encodings of
//! unreserved characters are decoded, the others upper-cased, and dot
//! segments are removed (§5.2.4). Paths that origins read in different ways
//! are not normalized at all: the request is *ambiguous* and bypasses the
//! cache. Those are an encoded or literal separator inside a segment
//! (`%2F`, `%5C`, `\`), an encoded dot segment (`%2e%2e`), a `;` parameter,
//! an empty segment (`//`, which some servers merge), invalid
//! percent-encoding, and anything that is not an absolute path.
//!
//! The query is kept exactly as received, unless the rule normalizes it
//! (sorted parameters, one canonical encoding): the origin then receives
//! the normalized query too.

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::borrow::Cow;
use std::fmt::Write as _;

/// A path the cache will not normalize, because origins disagree on what
/// it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ambiguous;

/// Characters kept as they are in a canonical query component: RFC 3986's
/// unreserved set.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(crate) fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` plus `/`, without `;` (a parameter delimiter that some
/// origins strip): what may stand unencoded in a canonical path. A table,
/// because every cached request's path goes through it.
const PATH_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0u8;
    loop {
        table[byte as usize] = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        if byte == u8::MAX {
            break table;
        }
        byte += 1;
    }
};

fn is_path_char(byte: u8) -> bool {
    PATH_CHARS[usize::from(byte)]
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

pub(crate) fn push_pct(buf: &mut String, byte: u8) {
    let _ = write!(buf, "%{byte:02X}");
}

/// The canonical form of `path`, borrowed when it already is canonical
/// (most paths are), or [`Ambiguous`].
pub(crate) fn canonical_path(path: &str) -> Result<Cow<'_, str>, Ambiguous> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return if path.is_empty() {
            Ok(Cow::Borrowed("/"))
        } else {
            Err(Ambiguous)
        };
    }
    if is_canonical(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let mut segments: Vec<String> = Vec::new();
    // Whether the path ends in a dot segment, which leaves a trailing `/`.
    let mut trailing_slash = false;
    let raw_segments: Vec<&str> = path[1..].split('/').collect();
    let last = raw_segments.len() - 1;
    for (index, raw) in raw_segments.iter().enumerate() {
        let segment = decode_segment(raw)?;
        let dot = segment == "." || segment == "..";
        if dot && raw.contains('%') {
            return Err(Ambiguous);
        }
        if segment.is_empty() && index != last {
            return Err(Ambiguous);
        }
        trailing_slash = dot;
        match segment.as_str() {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut canonical = String::with_capacity(path.len());
    for segment in &segments {
        canonical.push('/');
        canonical.push_str(segment);
    }
    if trailing_slash || canonical.is_empty() {
        canonical.push('/');
    }
    Ok(Cow::Owned(canonical))
}

/// Whether an absolute path is canonical already: only plain path
/// characters, and no `.`, `..` or empty segment (but a trailing one).
/// One pass over the bytes: every cached request's path goes through it.
fn is_canonical(path: &[u8]) -> bool {
    let mut segment_start = 1;
    for index in 1..=path.len() {
        let byte = path.get(index).copied();
        if byte.is_some_and(|byte| byte != b'/') {
            if !is_path_char(byte.unwrap_or(0)) {
                return false;
            }
            continue;
        }
        let segment = &path[segment_start..index];
        let last = byte.is_none();
        if segment == b"." || segment == b".." || (segment.is_empty() && !last) {
            return false;
        }
        segment_start = index + 1;
    }
    true
}

/// One segment with unreserved characters decoded and every other escape
/// upper-cased; separators, `;` and bad escapes make it ambiguous.
fn decode_segment(raw: &str) -> Result<String, Ambiguous> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let high = bytes.get(i + 1).copied().and_then(hex_value);
            let low = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(Ambiguous);
            };
            let decoded = high << 4 | low;
            if matches!(decoded, b'/' | b'\\' | b';') {
                return Err(Ambiguous);
            }
            if is_unreserved(decoded) {
                out.push(char::from(decoded));
            } else {
                push_pct(&mut out, decoded);
            }
            i += 3;
            continue;
        }
        if matches!(byte, b'\\' | b';') {
            return Err(Ambiguous);
        }
        if is_path_char(byte) {
            out.push(char::from(byte));
        } else {
            push_pct(&mut out, byte);
        }
        i += 1;
    }
    Ok(out)
}

/// Appends `?` and the query as received: its bytes are URI characters
/// already; anything else (only a custom request view could hand it over)
/// is escaped, and `%` is kept, so the text stays what the origin gets.
pub(crate) fn push_exact_query(buf: &mut String, query: &str) {
    buf.push('?');
    for &byte in query.as_bytes() {
        if byte.is_ascii_graphic() {
            buf.push(char::from(byte));
        } else {
            push_pct(buf, byte);
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` component to bytes
/// (`+` is a space), without the lossy UTF-8 step that would merge
/// different byte strings.
fn decode_component(raw: &str) -> Vec<u8> {
    let plus_as_space: Vec<u8> = raw
        .bytes()
        .map(|byte| if byte == b'+' { b' ' } else { byte })
        .collect();
    percent_decode(&plus_as_space).collect()
}

/// Whether `query` is already in normalized form: non-empty pairs of
/// unreserved characters, at most one `=` each, sorted by name. Most
/// queries are, and they are copied as they are.
fn is_normalized_query(query: &str) -> bool {
    let mut previous: Option<&str> = None;
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        let valid = !pair.is_empty()
            && pair.bytes().filter(|&b| b == b'=').count() <= 1
            && pair.bytes().all(|b| b == b'=' || is_unreserved(b));
        if !valid || previous.is_some_and(|previous| previous > name) {
            return false;
        }
        previous = Some(name);
    }
    true
}

/// Appends the normalized query (`?` first, nothing when it has no
/// parameters): parameters decoded, sorted by name (repeated names keep
/// their order), empty pairs dropped, and re-encoded one canonical way.
pub(crate) fn push_normalized_query(buf: &mut String, query: &str) {
    if query.is_empty() {
        return;
    }
    if is_normalized_query(query) {
        buf.push('?');
        buf.push_str(query);
        return;
    }
    let mut params: Vec<(Vec<u8>, Option<Vec<u8>>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode_component(name), Some(decode_component(value))),
            None => (decode_component(pair), None),
        })
        .collect();
    // Stable: repeated names keep their order, which may carry meaning (lists).
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (index, (name, value)) in params.iter().enumerate() {
        buf.push(if index == 0 { '?' } else { '&' });
        let _ = write!(buf, "{}", percent_encode(name, QUERY_COMPONENT));
        if let Some(value) = value {
            let _ = write!(buf, "={}", percent_encode(value, QUERY_COMPONENT));
        }
    }
}

/// Whether `target` (a canonical path and query) differs from the raw
/// `path` and `query` the request arrived with.
pub(crate) fn differs(target: &str, path: &str, query: Option<&str>) -> bool {
    let Some(rest) = target.strip_prefix(path) else {
        return true;
    };
    match query {
        None => !rest.is_empty(),
        Some(query) => rest.strip_prefix('?') != Some(query),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(path: &str) -> Result<String, Ambiguous> {
        canonical_path(path).map(Cow::into_owned)
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_upper_cased_rfc3986_6_2_2() {
        assert_eq!(canonical("/api/m%65").unwrap(), "/api/me");
        assert_eq!(canonical("/a%7Eb").unwrap(), "/a~b");
        assert_eq!(canonical("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(canonical("/a b").unwrap(), "/a%20b");
        assert_eq!(canonical("/a%2e.b").unwrap(), "/a..b");
        assert_eq!(canonical("").unwrap(), "/");
        assert!(matches!(canonical_path("/api/me"), Ok(Cow::Borrowed(_))));
        assert!(matches!(canonical_path("/"), Ok(Cow::Borrowed(_))));
        assert!(matches!(canonical_path("/a/"), Ok(Cow::Borrowed(_))));
        assert!(matches!(canonical_path("/a/.b/..c"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn dot_segments_are_removed_rfc3986_5_2_4() {
        assert_eq!(canonical("/static/../api/me").unwrap(), "/api/me");
        assert_eq!(canonical("/a/./b").unwrap(), "/a/b");
        assert_eq!(canonical("/a/b/..").unwrap(), "/a/");
        assert_eq!(canonical("/a/.").unwrap(), "/a/");
        assert_eq!(canonical("/../..").unwrap(), "/");
        assert_eq!(canonical("/a/").unwrap(), "/a/");
    }

    #[test]
    fn paths_origins_disagree_on_are_ambiguous() {
        for path in [
            "/static/..%2Fapi/me",
            "/static/..%2fapi/me",
            "/a%5Cb",
            "/a\\b",
            "/static/%2e%2e/api/me",
            "/static/.%2E/api/me",
            "/a;jsessionid=1",
            "/a%3Bb",
            "//api/me",
            "/api//me",
            "/100%",
            "/a%zz",
            "*",
            "api/me",
        ] {
            assert_eq!(canonical(path), Err(Ambiguous), "{path}");
        }
    }

    #[test]
    fn exact_queries_keep_every_byte() {
        let mut buf = String::new();
        push_exact_query(&mut buf, "&&a=1&b=%2B+");
        assert_eq!(buf, "?&&a=1&b=%2B+");
    }

    #[test]
    fn normalized_queries_are_sorted_and_canonically_encoded() {
        let normalized = |q: &str| {
            let mut buf = String::new();
            push_normalized_query(&mut buf, q);
            buf
        };
        assert_eq!(normalized("q=b&a=1"), "?a=1&q=b");
        assert_eq!(normalized("q=a+b"), normalized("q=a%20b"));
        assert_eq!(normalized("q=%7e"), "?q=~");
        assert_eq!(normalized("q=%2B"), "?q=%2B");
        assert_eq!(normalized("&&a=1&"), "?a=1");
        assert_eq!(normalized("&&&"), "");
        assert_ne!(normalized("flag"), normalized("flag="));
        assert_eq!(normalized("t=2&a=0&t=1"), "?a=0&t=2&t=1");
        assert_ne!(normalized("q=%FF"), normalized("q=%FE"));
    }

    proptest::proptest! {
        /// Canonical paths are fixed points, whether the one-pass check or
        /// the segment-by-segment normalization reads them.
        #[test]
        fn canonical_paths_are_fixed_points(path in "/[a./%2Ef;~ ]{0,12}") {
            if let Ok(canonical) = canonical_path(&path) {
                proptest::prop_assert_eq!(canonical_path(&canonical), Ok(canonical.clone()));
            }
        }
    }

    #[test]
    fn differences_from_the_raw_target_are_seen() {
        assert!(!differs("/a?b=1", "/a", Some("b=1")));
        assert!(!differs("/a", "/a", None));
        assert!(!differs("/a?", "/a", Some("")));
        assert!(differs("/a", "/a", Some("")));
        assert!(differs("/a?a=1&b=2", "/a", Some("b=2&a=1")));
        assert!(differs("/api/me", "/api/m%65", None));
    }
}
