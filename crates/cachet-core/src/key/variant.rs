//! Variant keys (RFC 9111 §4.1): the primary key extended with the variant
//! index's generation and the request's values of the headers the stored
//! response varies on — exactly as the origin received them, since an
//! origin that reads `GZIP ,br` otherwise than `gzip, br` would otherwise
//! have its answer to one spelling served to the other. `Accept-Encoding`
//! and `Accept-Language` are the exception: the origin receives them in
//! one canonical spelling (`protocol::negotiation`), which the key holds,
//! so equivalent requests share a variant.

use super::{CacheKey, HeaderPart, KeyBuilder};
use crate::identity::Identity;
use crate::protocol::negotiation::canonical;
use crate::request::RequestHead;
use http::header::{self, HeaderName};

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

/// The key of the variant of `primary` that `req` selects among those of
/// a variant index of `generation` over the header `names`.
pub(crate) fn variant_key(
    primary: &CacheKey,
    generation: u64,
    names: &[HeaderName],
    req: &dyn RequestHead,
    identity: &Identity,
) -> CacheKey {
    let mut key = KeyBuilder::variant_of(primary, generation);
    for name in names {
        let mut lines: Vec<&[u8]> = Vec::new();
        req.header_values(name, &mut |line| lines.push(line));
        let value = canonical(name, &lines)
            .map(String::into_bytes)
            .or_else(|| as_received(&lines));
        key = match value {
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
/// (origins read the two differently). `None` when the
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::request;

    fn key_for(generation: u64, names: &[HeaderName], headers: &[(&str, &str)]) -> String {
        let primary = CacheKey::from_raw("/a GET");
        let identity = Identity::default().secret("test");
        variant_key(&primary, generation, names, &request(headers), &identity)
            .as_str()
            .to_owned()
    }

    #[test]
    fn variant_values_are_keyed_as_the_origin_receives_them_rfc9111_4_1() {
        let names = [header::ACCEPT];
        let tidy = key_for(7, &names, &[("accept", "text/html, */*")]);
        assert_eq!(tidy, "/a GET g=0000000000000007 v:accept=14:text/html, */*");
        for other in ["TEXT/html, */*", "text/html,*/*", "*/*, text/html"] {
            assert_ne!(key_for(7, &names, &[("accept", other)]), tidy, "{other}");
        }
        let split = [("accept", "text/html"), ("accept", "*/*")];
        assert_ne!(
            key_for(7, &names, &split),
            tidy,
            "a split request selects no one-line variant"
        );
    }

    #[test]
    fn equivalent_encodings_and_languages_share_a_variant_rfc9111_4_1() {
        let names = [header::ACCEPT_ENCODING];
        let tidy = key_for(7, &names, &[("accept-encoding", "br, gzip")]);
        assert_eq!(
            tidy,
            "/a GET g=0000000000000007 v:accept-encoding=8:br, gzip"
        );
        for other in [
            &[("accept-encoding", "GZIP, br")][..],
            &[("accept-encoding", "gzip,br")],
            &[("accept-encoding", "gzip"), ("accept-encoding", "br")],
        ] {
            assert_eq!(key_for(7, &names, other), tidy, "{other:?}");
        }
        assert_ne!(key_for(7, &names, &[("accept-encoding", "gzip")]), tidy);
        let names = [header::ACCEPT_LANGUAGE];
        assert_eq!(
            key_for(7, &names, &[("accept-language", "EN-us, fr;q=0.50")]),
            key_for(7, &names, &[("accept-language", "fr;q=0.5,en-US")])
        );
        assert_ne!(
            key_for(7, &names, &[("accept-language", "en, fr")]),
            key_for(7, &names, &[("accept-language", "fr, en")]),
            "order within one weight is kept"
        );
    }

    #[test]
    fn absent_differs_from_empty_rfc9111_4_1() {
        let names = [header::ACCEPT_ENCODING];
        let absent = key_for(7, &names, &[]);
        let empty = key_for(7, &names, &[("accept-encoding", "")]);
        assert!(absent.ends_with("v:accept-encoding=!"), "{absent}");
        assert!(empty.ends_with("v:accept-encoding=0:"), "{empty}");
    }

    #[test]
    fn credential_headers_are_hashed_never_stored() {
        let names = [header::COOKIE];
        let key = key_for(7, &names, &[("cookie", "session=secret-token")]);
        assert!(!key.contains("secret-token"), "{key}");
        assert!(key.contains("v:cookie=#"), "{key}");
        assert_ne!(key, key_for(7, &names, &[("cookie", "session=other")]));
    }

    #[test]
    fn the_generation_separates_indexes() {
        let names = [header::ACCEPT];
        assert_ne!(
            key_for(1, &names, &[("accept", "x")]),
            key_for(2, &names, &[("accept", "x")])
        );
    }
}
