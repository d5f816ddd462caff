//! Variants (RFC 9111 §4.1): responses that differ by request headers the
//! rule does not key on, as the response's `Vary` names them.
//!
//! The primary key holds a variant index with the header names this module
//! reads from the response; each variant is stored under a key of its own
//! (the `key` module's `variant_key`), from the request's values exactly as
//! the origin received them: §4.1 lets a cache normalize values it knows to
//! be equivalent, but an origin that reads `GZIP ,br` otherwise than
//! `gzip, br` would then have its answer to one spelling served to the
//! other. A value split over several field lines, which origins read
//! differently, never selects a one-line variant and is not stored at all
//! ([`split_line`]).

use crate::protocol::negotiation::canonical;
use crate::protocol::storability::NotStorable;
use crate::request::RequestHead;
use http::header::{self, HeaderName};
use http::HeaderMap;

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

/// The first of `names` that `req` sends in more than one field line: a
/// response that varies on it is not stored (see the module docs) —
/// unless the lines have a canonical spelling, which the origin receives
/// as one line (`protocol::negotiation`).
pub(crate) fn split_line<'n>(
    req: &dyn RequestHead,
    names: &'n [HeaderName],
) -> Option<&'n HeaderName> {
    names.iter().find(|name| {
        let mut lines: Vec<&[u8]> = Vec::new();
        req.header_values(name, &mut |line| lines.push(line));
        lines.len() > 1 && canonical(name, &lines).is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{header_map, request};

    fn names(vary: &[(&str, &str)]) -> Result<Vec<String>, NotStorable> {
        let keyed = [header::ACCEPT_LANGUAGE];
        response_vary(&header_map(vary), &keyed)
            .map(|names| names.iter().map(|n| n.as_str().to_owned()).collect())
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
    fn a_value_split_over_lines_is_found_rfc9111_4_1() {
        let split = [("accept", "text/html"), ("accept", "*/*")];
        assert_eq!(
            split_line(&request(&split), &[header::ACCEPT, header::ACCEPT_ENCODING]),
            Some(&header::ACCEPT)
        );
        // Accept-Encoding's lines are sent upstream as one canonical line.
        let split = [("accept-encoding", "gzip"), ("accept-encoding", "br")];
        assert_eq!(
            split_line(&request(&split), &[header::ACCEPT_ENCODING]),
            None
        );
        let odd = [
            ("accept-encoding", "gzip;level=1"),
            ("accept-encoding", "br"),
        ];
        assert_eq!(
            split_line(&request(&odd), &[header::ACCEPT_ENCODING]),
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
}
