//! Cache keys: a readable string that is injective in its parts.
//!
//! A key reads like `/api/urls/?a=1&b=2 GET u=5f1c… h:accept-language=5:en-US`:
//!
//! - the canonical target (see [`Plan::target`](crate::Plan::target)): the path
//!   normalized per RFC 3986 (unreserved characters decoded, other escapes
//!   upper-cased, dot segments removed), and the query exactly as received
//!   — or, for rules with `normalize_query`, its parameters sorted by name
//!   in one canonical percent-encoding;
//! - the method (`GET` also for `HEAD` when the rule does not vary by method);
//! - `@` and the normalized host, when the cache keys by host (a reverse
//!   proxy for several virtual hosts);
//! - `u=` and the keyed hash of the user's identity (`u=-` for anonymous) when
//!   the rule varies by user;
//! - `h:NAME=` and each varied header's value, length-prefixed, or `!` when
//!   the request has no such header (absent is not the same as empty);
//! - for a variant of a response with `Vary` (RFC 9111 §4.1), `g=` and the
//!   variant index's generation, then `v:NAME=` and each varied header's
//!   normalized value, length-prefixed, `!` when absent, or `#` and a keyed
//!   hash for headers that may carry credentials ([`variant_key`]).
//!
//! The path and query never contain a space, and every later part is either a
//! fixed token or length-prefixed, so two different requests can never make
//! the same key. Keys start with the path so that path regexes (`^/api/`)
//! select keys directly.

mod variant;

pub(crate) use self::variant::variant_key;

use crate::identity::IdentityHash;
use crate::protocol::target::{canonical_path, push_exact_query, push_normalized_query, push_pct};
use std::fmt::{self, Write as _};

/// A cache key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a key read back from a store or given by an operator.
    pub fn from_raw(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The same key with `method` in place of `from`, the method that
    /// follows the target's `target_len` bytes; `None` if another does.
    pub(crate) fn with_method(&self, target_len: usize, from: &str, method: &str) -> Option<Self> {
        let (target, rest) = self.0.split_at_checked(target_len)?;
        let rest = rest.strip_prefix(' ')?.strip_prefix(from)?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        Some(Self(format!("{target} {method}{rest}")))
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({:?})", &*self.0)
    }
}

/// Builds a [`CacheKey`] part by part, in the order the parts are written:
/// `/api/./items?b=2&a=1` with a `GET` and two varied headers is
/// `/api/items?b=2&a=1 GET h:accept-language=5:en-US h:x-tenant=!` (see the
/// `parts_in_order` test).
#[derive(Debug)]
pub(crate) struct KeyBuilder {
    buf: String,
}

impl KeyBuilder {
    /// [`for_target`](Self::for_target) with the query as received: the
    /// tests' shorthand.
    #[cfg(test)]
    pub(crate) fn new(path: &str, query: Option<&str>) -> Self {
        Self::for_target(path, query, false)
    }

    /// Starts a key with the canonical path and the query, normalized
    /// (sorted parameters, one encoding) when `normalize_query` is on.
    pub(crate) fn for_target(path: &str, query: Option<&str>, normalize_query: bool) -> Self {
        match canonical_path(path) {
            Ok(canonical) => Self::for_canonical(&canonical, query, normalize_query),
            Err(_) => {
                let mut escaped = String::with_capacity(path.len());
                push_escaped(&mut escaped, path.as_bytes(), true);
                Self::for_canonical(&escaped, query, normalize_query)
            }
        }
    }

    /// [`for_target`](Self::for_target) for a path already canonical.
    pub(crate) fn for_canonical(path: &str, query: Option<&str>, normalize_query: bool) -> Self {
        let mut buf = String::with_capacity(path.len() + query.map_or(0, str::len) + 48);
        buf.push_str(path);
        match query {
            Some(query) if normalize_query => push_normalized_query(&mut buf, query),
            Some(query) => push_exact_query(&mut buf, query),
            None => {}
        }
        Self { buf }
    }

    /// How long the key is so far, in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The key so far: the target, right after [`for_target`](Self::for_target).
    pub(crate) fn as_str(&self) -> &str {
        &self.buf
    }

    /// Adds the method (a token such as `GET`).
    #[must_use]
    pub(crate) fn method(mut self, method: &str) -> Self {
        self.buf.push(' ');
        push_escaped(&mut self.buf, method.as_bytes(), true);
        self
    }

    /// Adds the host the request was for, normalized by the caller
    /// (`Example.COM:80` is `example.com`; a trailing dot stays), or `@-`
    /// when the request names none.
    #[must_use]
    pub(crate) fn host(mut self, host: Option<&str>) -> Self {
        self.buf.push_str(" @");
        match host.filter(|host| !host.is_empty()) {
            None => self.buf.push('-'),
            // Normalized: no space, nothing that could start another part.
            Some(host) => self.buf.push_str(host),
        }
        self
    }

    /// Adds the user part: a hashed identity, or the anonymous marker.
    #[must_use]
    pub(crate) fn user(mut self, identity: Option<IdentityHash>) -> Self {
        match identity {
            Some(hash) => {
                self.buf.push_str(" u=");
                hash.push_hex(&mut self.buf);
            }
            None => self.buf.push_str(" u=-"),
        }
        self
    }

    /// Adds a varied request header: its (combined) value, or `None` when the
    /// request does not have the header.
    #[must_use]
    pub(crate) fn header(self, name: &str, value: Option<&[u8]>) -> Self {
        self.header_part(name, value.map_or(HeaderPart::Absent, HeaderPart::Plain))
    }

    /// Adds a header the rule keys on, in one of its key forms.
    #[must_use]
    pub(crate) fn header_part(mut self, name: &str, value: HeaderPart<'_>) -> Self {
        self.buf.push_str(" h:");
        self.buf.push_str(name);
        self.buf.push('=');
        self.push_value(value);
        self
    }

    /// Continues a primary key with a variant's parts (RFC 9111 §4.1).
    pub(crate) fn variant_of(primary: &CacheKey, generation: u64) -> Self {
        let mut buf = String::with_capacity(primary.0.len() + 64);
        buf.push_str(&primary.0);
        let _ = write!(buf, " g={generation:016x}");
        Self { buf }
    }

    /// Adds a header a response varies on, in one of its key forms.
    #[must_use]
    pub(crate) fn vary(mut self, name: &str, value: HeaderPart<'_>) -> Self {
        self.buf.push_str(" v:");
        self.buf.push_str(name);
        self.buf.push('=');
        self.push_value(value);
        self
    }

    fn push_value(&mut self, value: HeaderPart<'_>) {
        match value {
            HeaderPart::Absent => self.buf.push('!'),
            HeaderPart::Hashed(hash) => {
                self.buf.push('#');
                hash.push_hex(&mut self.buf);
            }
            HeaderPart::Plain(value) => {
                let mut escaped = String::with_capacity(value.len());
                push_escaped(&mut escaped, value, false);
                let _ = write!(self.buf, "{}:{escaped}", escaped.len());
            }
        }
    }

    /// The finished key.
    pub(crate) fn finish(self) -> CacheKey {
        CacheKey(self.buf)
    }
}

/// How a header value goes into a key: absent (`!`), as a keyed hash
/// (`#` and 32 hex digits, for values that may be credentials) or as its
/// length-prefixed text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HeaderPart<'a> {
    Absent,
    Hashed(IdentityHash),
    Plain(&'a [u8]),
}

/// Combines the values of one header the way a recipient may (RFC 9110 §5.3):
/// each value trimmed of surrounding whitespace, joined with `", "`. `None`
/// when the header is absent.
pub(crate) fn combine_header_values(values: &[&[u8]]) -> Option<Vec<u8>> {
    let (first, rest) = values.split_first()?;
    let mut combined = first.trim_ascii().to_vec();
    for value in rest {
        combined.extend_from_slice(b", ");
        combined.extend_from_slice(value.trim_ascii());
    }
    Some(combined)
}

/// Visible ASCII (and, unless `escape_space`, the space) stays; `%`, controls
/// and non-ASCII bytes become `%XX`.
fn push_escaped(buf: &mut String, bytes: &[u8], escape_space: bool) {
    for &byte in bytes {
        let keep = byte.is_ascii_graphic() && byte != b'%' || byte == b' ' && !escape_space;
        if keep {
            buf.push(char::from(byte));
        } else {
            push_pct(buf, byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::host::normalize_host;

    #[test]
    fn parts_in_order() {
        let key = KeyBuilder::for_target("/api/./items", Some("b=2&a=1"), false)
            .method("GET")
            .header("accept-language", Some(b"en-US"))
            .header("x-tenant", None)
            .finish();
        assert_eq!(
            key.as_str(),
            "/api/items?b=2&a=1 GET h:accept-language=5:en-US h:x-tenant=!"
        );
    }

    #[test]
    fn hosts_are_normalized_and_kept_apart() {
        let key = |host: Option<&str>| {
            let host = host.map(|host| normalize_host(host.as_bytes()).unwrap());
            KeyBuilder::new("/a", None)
                .method("GET")
                .host(host.as_deref())
                .finish()
        };
        assert_eq!(key(Some("Example.COM:80")).as_str(), "/a GET @example.com");
        assert_ne!(key(Some("example.com.")), key(Some("example.com")));
        assert_eq!(key(Some("example.com")), key(Some("EXAMPLE.com:80")));
        assert_ne!(key(Some("a.example")), key(Some("b.example")));
        assert_ne!(key(Some("example.com:8080")), key(Some("example.com")));
        assert_eq!(key(None).as_str(), "/a GET @-");
        assert_eq!(key(Some("")), key(None));
    }
    use proptest::prelude::*;

    fn path_query(path: &str, query: Option<&str>) -> String {
        KeyBuilder::new(path, query).finish().as_str().to_owned()
    }

    #[test]
    fn queries_are_kept_exactly_unless_normalized() {
        assert_eq!(path_query("/s", Some("q=b&a=1")), "/s?q=b&a=1");
        assert_eq!(path_query("/s", Some("&&a=1&")), "/s?&&a=1&");
        assert_ne!(
            path_query("/s", Some("&&a=1")),
            path_query("/s", Some("a=1"))
        );
        assert_ne!(path_query("/s", Some("")), path_query("/s", None));
        let normalized = |q: &str| {
            KeyBuilder::for_target("/s", Some(q), true)
                .finish()
                .as_str()
                .to_owned()
        };
        assert_eq!(normalized("q=b&a=1"), "/s?a=1&q=b");
        assert_eq!(normalized("&&a=1&"), "/s?a=1");
    }

    #[test]
    fn query_values_differ_from_one_another() {
        assert_ne!(path_query("/s", Some("q=a")), path_query("/s", Some("q=b")));
    }

    #[test]
    fn paths_are_canonical_and_ambiguous_ones_kept_escaped() {
        assert_eq!(path_query("/a%7Eb", None), "/a~b");
        assert_eq!(path_query("/static/../api/me", None), "/api/me");
        assert_eq!(path_query("/a%2fb", None), "/a%252fb");
        assert_ne!(path_query("/a%2Fb", None), path_query("/a/b", None));
        assert_eq!(path_query("/a b", None), "/a%20b");
        assert_eq!(path_query("", None), "/");
    }

    #[test]
    fn crafted_collisions_are_distinct() {
        let key = |a: &[u8], b: &[u8]| {
            KeyBuilder::new("/", None)
                .method("GET")
                .header("x-a", Some(a))
                .header("x-b", Some(b))
                .finish()
        };
        assert_ne!(key(b"a|bc", b""), key(b"a", b"bc"));
        assert_ne!(key(b"a", b"bc"), key(b"ab", b"c"));
        assert_ne!(key(b"1:x h:x-b=1:y", b"z"), key(b"1:x", b"y h:x-b=1:z"));
        let absent = KeyBuilder::new("/", None).header("x-a", None).finish();
        let empty = KeyBuilder::new("/", None).header("x-a", Some(b"")).finish();
        assert_ne!(absent, empty);
        let anon = KeyBuilder::new("/", None).user(None).finish();
        let shared = KeyBuilder::new("/", None).finish();
        assert_ne!(anon, shared);
    }

    #[test]
    fn header_values_combine_trimmed() {
        assert_eq!(
            combine_header_values(&[b" en ", b"fr"]),
            Some(b"en, fr".to_vec())
        );
        assert_eq!(combine_header_values(&[]), None);
        assert_eq!(combine_header_values(&[b""]), Some(Vec::new()));
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Parts {
        path: String,
        query: Option<String>,
        method: String,
        headers: Vec<Option<Vec<u8>>>,
    }

    /// Header values made of the key's own delimiters, to provoke collisions.
    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::sample::select(vec![b'1', b':', b'h', b' ', b'=', b'x', b'!', b'%', 0xff]),
            0..8,
        )
    }

    fn parts() -> impl Strategy<Value = Parts> {
        (
            "/[a-z%/ ]{0,6}",
            proptest::option::of("[a-z=&%+ ]{0,6}"),
            prop_oneof![Just("GET".to_owned()), Just("HEAD".to_owned())],
            proptest::collection::vec(proptest::option::of(header_value()), 2),
        )
            .prop_map(|(path, query, method, headers)| Parts {
                path,
                query,
                method,
                headers,
            })
    }

    fn build(parts: &Parts) -> CacheKey {
        let mut builder =
            KeyBuilder::new(&parts.path, parts.query.as_deref()).method(&parts.method);
        for (index, value) in parts.headers.iter().enumerate() {
            builder = builder.header(["x-a", "x-b"][index], value.as_deref());
        }
        builder.finish()
    }

    proptest! {
        /// Equal keys imply equal method and headers (those are never merged
        /// by normalization), and equal normalized path and query.
        #[test]
        fn keys_are_injective_in_method_and_headers(a in parts(), b in parts()) {
            if build(&a) == build(&b) {
                prop_assert_eq!(&a.method, &b.method);
                prop_assert_eq!(&a.headers, &b.headers);
                prop_assert_eq!(
                    KeyBuilder::new(&a.path, a.query.as_deref()).finish(),
                    KeyBuilder::new(&b.path, b.query.as_deref()).finish()
                );
            }
        }

        /// The path-and-query part never contains a space, so it cannot
        /// bleed into the parts after it.
        #[test]
        fn path_and_query_never_contain_a_space(p in "\\PC{0,12}", q in proptest::option::of("\\PC{0,12}")) {
            let key = KeyBuilder::new(&p, q.as_deref()).finish();
            prop_assert!(!key.as_str().contains(' '));
        }
    }
}
