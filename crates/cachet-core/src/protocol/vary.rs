//! Variants (RFC 9111 §4.1): responses that differ by request headers the
//! rule does not key on, as the response's `Vary` names them.
//!
//! The primary key holds a [`VariantIndex`](crate::store::entry::VariantIndex)
//! with the header names; each variant is stored under the primary key
//! extended with the index's generation and the request's values for those
//! headers — exactly as the origin received them: §4.1 lets a cache
//! normalize values it knows to be equivalent, but an origin that reads
//! `GZIP ,br` otherwise than `gzip, br` would then have its answer to one
//! spelling served to the other. A value split over several field lines,
//! which origins read differently, never selects a one-line variant and is
//! not stored at all ([`split_line`]).

use crate::identity::Identity;
use crate::protocol::storability::NotStorable;
use crate::request::RequestHead;
use crate::store::entry::VariantIndex;
use crate::store::key::{CacheKey, HeaderPart, KeyBuilder};
use http::header::{self, HeaderName};
use http::HeaderMap;

/// Headers whose values go into variant keys as text. Any other varied
/// header goes in as a keyed hash: it may carry a credential (`Cookie`,
/// `Authorization`, an API key), and keys are listed to operators.
const READABLE: [HeaderName; 5] = [
    header::ACCEPT,
    header::ACCEPT_CHARSET,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::ORIGIN,
];

/// The request headers a response varies on beyond those the rule keys on:
/// lower-cased, sorted, without duplicates. `Vary: *` cannot be matched by
/// any later request, and a name that is not a valid header name cannot be
/// honoured; neither response is stored.
pub(crate) fn response_vary(
    headers: &HeaderMap,
    keyed: &[HeaderName],
) -> Result<Vec<HeaderName>, NotStorable> {
    let mut names: Vec<HeaderName> = Vec::new();
    for line in headers.get_all(header::VARY) {
        for name in
            crate::protocol::cache_control::split_list(&String::from_utf8_lossy(line.as_bytes()))
        {
            if name == "*" {
                return Err(NotStorable::VaryAll);
            }
            // `HeaderName` lower-cases what it parses.
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| NotStorable::VaryInvalid)?;
            if !keyed.contains(&name) {
                names.push(name);
            }
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Ok(names)
}

/// The key of the variant of `primary` that `req` selects under `index`.
pub(crate) fn variant_key(
    primary: &CacheKey,
    index: &VariantIndex,
    req: &dyn RequestHead,
    identity: &Identity,
) -> CacheKey {
    let mut key = KeyBuilder::variant_of(primary, index.generation());
    for name in index.names() {
        let mut lines: Vec<&[u8]> = Vec::new();
        req.header_values(name, &mut |line| lines.push(line));
        key = match as_received(&lines) {
            None => key.vary(name.as_str(), HeaderPart::Absent),
            Some(value) if READABLE.contains(name) => {
                key.vary(name.as_str(), HeaderPart::Plain(&value))
            }
            Some(value) => key.vary(
                name.as_str(),
                HeaderPart::Hashed(identity.hash_header(name, &value)),
            ),
        };
    }
    key.finish()
}

/// A varied header's lines as the key holds them: one line as received, and
/// several joined with a line feed, which no single line can hold, so that a
/// split request never selects the variant stored for the one-line spelling
/// (origins read the two differently; see the module docs). `None` when the
/// header is absent.
fn as_received(lines: &[&[u8]]) -> Option<Vec<u8>> {
    let (first, rest) = lines.split_first()?;
    let mut value = first.trim_ascii().to_vec();
    for line in rest {
        value.push(b'\n');
        value.extend_from_slice(line.trim_ascii());
    }
    Some(value)
}

/// The first of `names` that `req` sends in more than one field line: a
/// response that varies on it is not stored (see the module docs).
pub(crate) fn split_line<'n>(
    req: &dyn RequestHead,
    names: &'n [HeaderName],
) -> Option<&'n HeaderName> {
    names.iter().find(|name| {
        let mut lines = 0;
        req.header_values(name, &mut |_| lines += 1);
        lines > 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{header_map, request};
    use std::sync::Arc;
    use std::time::SystemTime;

    fn names(vary: &[(&str, &str)]) -> Result<Vec<String>, NotStorable> {
        let keyed = [header::ACCEPT_LANGUAGE];
        response_vary(&header_map(vary), &keyed)
            .map(|names| names.iter().map(|n| n.as_str().to_owned()).collect())
    }

    fn key_for(index: &VariantIndex, headers: &[(&str, &str)]) -> String {
        let primary = CacheKey::from_raw("/a GET");
        let identity = Identity::default().secret("test");
        variant_key(&primary, index, &request(headers), &identity)
            .as_str()
            .to_owned()
    }

    fn index(names: &[HeaderName]) -> VariantIndex {
        VariantIndex::new(Arc::from(names), 7, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn vary_names_are_normalized_and_keyed_ones_dropped_rfc9111_4_1() {
        assert_eq!(
            names(&[
                ("vary", " Accept-Encoding ,ACCEPT-language"),
                ("vary", "accept-encoding, Cookie")
            ]),
            Ok(vec!["accept-encoding".to_owned(), "cookie".to_owned()])
        );
        assert_eq!(names(&[("vary", "accept-language")]), Ok(vec![]));
        assert_eq!(names(&[]), Ok(vec![]));
        assert_eq!(names(&[("vary", "accept, *")]), Err(NotStorable::VaryAll));
        assert_eq!(names(&[("vary", "a b")]), Err(NotStorable::VaryInvalid));
    }

    #[test]
    fn variant_values_are_keyed_as_the_origin_receives_them_rfc9111_4_1() {
        let index = index(&[header::ACCEPT_ENCODING]);
        let tidy = key_for(&index, &[("accept-encoding", "gzip, br")]);
        assert_eq!(
            tidy,
            "/a GET g=0000000000000007 v:accept-encoding=8:gzip, br"
        );
        for other in ["GZIP, br", "gzip,br", "br, gzip"] {
            assert_ne!(
                key_for(&index, &[("accept-encoding", other)]),
                tidy,
                "{other}"
            );
        }
        let split = [("accept-encoding", "gzip"), ("accept-encoding", "br")];
        assert_ne!(
            key_for(&index, &split),
            tidy,
            "a split request selects no one-line variant"
        );
        assert_eq!(
            split_line(&request(&split), &[header::ACCEPT, header::ACCEPT_ENCODING]),
            Some(&header::ACCEPT_ENCODING)
        );
        assert_eq!(
            split_line(
                &request(&[("accept-encoding", "gzip, br")]),
                &[header::ACCEPT_ENCODING]
            ),
            None
        );
    }

    #[test]
    fn absent_differs_from_empty_rfc9111_4_1() {
        let index = index(&[header::ACCEPT_ENCODING]);
        let absent = key_for(&index, &[]);
        let empty = key_for(&index, &[("accept-encoding", "")]);
        assert!(absent.ends_with("v:accept-encoding=!"), "{absent}");
        assert!(empty.ends_with("v:accept-encoding=0:"), "{empty}");
    }

    #[test]
    fn credential_headers_are_hashed_never_stored() {
        let index = index(&[header::COOKIE]);
        let key = key_for(&index, &[("cookie", "session=secret-token")]);
        assert!(!key.contains("secret-token"), "{key}");
        assert!(key.contains("v:cookie=#"), "{key}");
        assert_ne!(key, key_for(&index, &[("cookie", "session=other")]));
    }

    #[test]
    fn the_generation_separates_indexes() {
        let names = [header::ACCEPT];
        let old = VariantIndex::new(Arc::from(&names[..]), 1, SystemTime::UNIX_EPOCH);
        let new = VariantIndex::new(Arc::from(&names[..]), 2, SystemTime::UNIX_EPOCH);
        assert_ne!(
            key_for(&old, &[("accept", "x")]),
            key_for(&new, &[("accept", "x")])
        );
    }
}
