//! Who a request is for, for rules with `vary_by_user = true`.
//!
//! The identity is read from a request extension ([`UserId`](crate::UserId)), a header, a
//! cookie or a closure, in the order configured, and reduced to a keyed
//! BLAKE3 hash. Raw credentials never reach a key, a log line or a store.

use crate::request::RequestHead;
use http::HeaderName;
use std::fmt;
use std::sync::Arc;

type CustomFn = dyn Fn(&dyn RequestHead) -> Option<String> + Send + Sync;

/// One place to read an identity from.
#[derive(Clone)]
enum Source {
    Extension,
    Header(HeaderName),
    Cookie(String),
    Custom(Arc<CustomFn>),
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Extension => f.write_str("Extension"),
            Self::Header(name) => write!(f, "Header({name})"),
            Self::Cookie(name) => write!(f, "Cookie({name})"),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How to tell users apart, and the secret their identities are hashed with.
///
/// The default reads the [`UserId`](crate::UserId) request extension, then the
/// `Authorization` header, with a random secret made at start-up. Instances
/// that share a store (Redis) must share the secret: set it with
/// [`Identity::secret`].
///
/// ```
/// use cachet_core::Identity;
/// let identity = Identity::none()
///     .extension()
///     .cookie("sessionid")
///     .custom(|req| {
///         let key = req.header(&http::HeaderName::from_static("x-api-key"))?;
///         Some(String::from_utf8_lossy(key).into_owned())
///     });
/// ```
#[derive(Clone)]
pub struct Identity {
    sources: Vec<Source>,
    key: [u8; 32],
    /// Whether `key` was made at random for this process (no secret set).
    random: bool,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::none().extension().header(http::header::AUTHORIZATION)
    }
}

impl Identity {
    /// No sources yet, and a random secret.
    pub fn none() -> Self {
        Self {
            sources: Vec::new(),
            key: random_secret("cachet identity fallback"),
            random: true,
        }
    }

    /// Reads the [`UserId`](crate::UserId) extension that the application's auth layer sets.
    #[must_use]
    pub fn extension(mut self) -> Self {
        self.sources.push(Source::Extension);
        self
    }

    /// Reads the header `name` (such as `authorization`).
    #[must_use]
    pub fn header(mut self, name: HeaderName) -> Self {
        self.sources.push(Source::Header(name));
        self
    }

    /// Reads the cookie `name` (such as `sessionid`).
    #[must_use]
    pub fn cookie(mut self, name: &str) -> Self {
        self.sources.push(Source::Cookie(name.to_owned()));
        self
    }

    /// Reads the identity with a closure.
    #[must_use]
    pub fn custom<F>(mut self, read: F) -> Self
    where
        F: Fn(&dyn RequestHead) -> Option<String> + Send + Sync + 'static,
    {
        self.sources.push(Source::Custom(Arc::new(read)));
        self
    }

    /// Sets the secret identities are hashed with. Instances sharing a store
    /// must use the same secret so that they compute the same keys.
    #[must_use]
    pub fn secret(mut self, secret: &str) -> Self {
        self.key = blake3::derive_key("cachet identity v1", secret.as_bytes());
        self.random = false;
        self
    }

    /// Whether no secret was set: the key was made at random at start-up,
    /// so what it hashed cannot be found again by another process.
    pub(crate) fn is_random(&self) -> bool {
        self.random
    }

    /// A key for `context` derived from the secret (a dump's seal).
    pub(crate) fn derive_key(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.key)
    }

    /// A fingerprint of the secret that reveals nothing of it: dumps carry
    /// it, so that one sealed under another secret is refused as such.
    pub(crate) fn fingerprint(&self) -> [u8; 16] {
        let hash = blake3::keyed_hash(&self.key, b"cachet secret fingerprint v1");
        let mut fingerprint = [0; 16];
        fingerprint.copy_from_slice(&hash.as_bytes()[..16]);
        fingerprint
    }

    /// The hashed identity of `req`, from the first source that has one.
    pub fn of(&self, req: &dyn RequestHead) -> Option<IdentityHash> {
        match self.resolve(req) {
            Resolved::User(hash) => Some(hash),
            Resolved::Anonymous | Resolved::Unresolved => None,
        }
    }

    /// Who `req` is for: a user, nobody, or — when it carries a credential
    /// (a configured identity header, any spelling of a configured identity
    /// cookie, or `Authorization`) from which no single identity comes —
    /// unresolved, and then it must neither be stored nor answered from a
    /// shared entry: the origin may still see a user in it.
    pub(crate) fn resolve(&self, req: &dyn RequestHead) -> Resolved {
        // Whether the request carries a credential no source resolved; an
        // `Authorization` is looked for only once none has.
        let mut credential = false;
        for source in &self.sources {
            // The source is hashed with the value, so a header that happens to
            // equal another user's id (from the extension) gives another hash.
            let hash = match source {
                Source::Extension => {
                    let Some(id) = req.user_id() else { continue };
                    self.hash(&[b"ext\0", id.as_str().as_bytes()])
                }
                Source::Header(name) => {
                    let (mut first, mut more) = (None, false);
                    req.header_values(name, &mut |value| {
                        more |= first.is_some();
                        first = first.or(Some(value));
                    });
                    match first {
                        None => continue,
                        Some(value) if !more && !value.trim_ascii().is_empty() => {
                            self.hash(&[b"hdr\0", name.as_str().as_bytes(), b"\0", value])
                        }
                        // Empty or repeated: origins pick different ones.
                        Some(_) => {
                            credential = true;
                            continue;
                        }
                    }
                }
                Source::Cookie(name) => match cookie_value(req, name) {
                    Cookie::Absent => continue,
                    Cookie::Ambiguous => {
                        credential = true;
                        continue;
                    }
                    Cookie::Value(value) => {
                        self.hash(&[b"cookie\0", name.as_bytes(), b"\0", &value])
                    }
                },
                Source::Custom(read) => {
                    let Some(id) = read(req) else { continue };
                    self.hash(&[b"custom\0", id.as_bytes()])
                }
            };
            return Resolved::User(hash);
        }
        if credential || req.header(&http::header::AUTHORIZATION).is_some() {
            Resolved::Unresolved
        } else {
            Resolved::Anonymous
        }
    }
}

/// A random 32-byte secret for keyed hashes. Without OS randomness it falls
/// back to one derived from the process and time (in `context`): still
/// unknown to clients, never a fixed value.
pub(crate) fn random_secret(context: &str) -> [u8; 32] {
    let mut secret = [0u8; 32];
    if getrandom::fill(&mut secret).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        secret = blake3::derive_key(context, seed.as_bytes());
    }
    secret
}

/// Who a request is for; see [`Identity::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// A user, hashed.
    User(IdentityHash),
    /// No credential at all: the shared entry.
    Anonymous,
    /// A credential without one clear identity: bypass the cache.
    Unresolved,
}

impl Identity {
    /// A keyed hash of a request header's value, for keys that must not
    /// hold the value itself (a `Vary: Cookie` variant, for one).
    pub(crate) fn hash_header(&self, name: &HeaderName, value: &[u8]) -> IdentityHash {
        self.hash(&[b"vary\0", name.as_str().as_bytes(), b"\0", value])
    }

    /// The keyed hash of `parts` one after the other, cut to 128 bits.
    /// Parts that fit one BLAKE3 chunk are joined on the stack and hashed
    /// in one call, which skips the streaming hasher's setup; the hash is
    /// the same either way, so keys never change with a value's length.
    fn hash(&self, parts: &[&[u8]]) -> IdentityHash {
        const CHUNK: usize = 1024;
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let hash = if len <= CHUNK {
            let mut joined = [0u8; CHUNK];
            let mut end = 0;
            for part in parts {
                joined[end..end + part.len()].copy_from_slice(part);
                end += part.len();
            }
            blake3::keyed_hash(&self.key, &joined[..end])
        } else {
            let mut hasher = blake3::Hasher::new_keyed(&self.key);
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize()
        };
        let mut short = [0u8; 16];
        short.copy_from_slice(&hash.as_bytes()[..16]);
        IdentityHash(short)
    }
}

/// What the `Cookie` headers hold for one cookie name.
#[derive(Debug, PartialEq, Eq)]
enum Cookie {
    /// No cookie of that name in any spelling.
    Absent,
    /// One value (repeated only with the same value).
    Value(Vec<u8>),
    /// An empty value, different values, or the name in another case or
    /// spelling: some origin may read a user from it, cachet cannot say who.
    Ambiguous,
}

/// Cookie `name` across the `Cookie` headers, parsed as RFC 6265 §5.4
/// servers do: pairs split on `;`, name and value trimmed of whitespace and
/// split on the first `=`, surrounding double quotes dropped from the value.
/// Frameworks disagree on duplicates (Django keeps the last, Express, Go and
/// Rack the first), so a name given twice with different values is
/// ambiguous, and so is a name that matches only case-insensitively.
fn cookie_value(req: &dyn RequestHead, name: &str) -> Cookie {
    let mut found = Cookie::Absent;
    req.header_values(&http::header::COOKIE, &mut |header| {
        for pair in header.split(|&byte| byte == b';') {
            let (pair_name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(eq) => (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()),
                None => (pair.trim_ascii(), &b""[..]),
            };
            if !pair_name.eq_ignore_ascii_case(name.as_bytes()) {
                continue;
            }
            let value = value
                .strip_prefix(b"\"")
                .and_then(|value| value.strip_suffix(b"\""))
                .unwrap_or(value);
            found = match std::mem::replace(&mut found, Cookie::Absent) {
                _ if pair_name != name.as_bytes() || value.is_empty() => Cookie::Ambiguous,
                Cookie::Absent => Cookie::Value(value.to_vec()),
                Cookie::Value(seen) if seen == value => Cookie::Value(seen),
                Cookie::Value(_) | Cookie::Ambiguous => Cookie::Ambiguous,
            };
        }
    });
    found
}

/// A 128-bit keyed hash of a user's identity. It renders as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityHash([u8; 16]);

impl IdentityHash {
    /// The hash as 32 lowercase hex digits, appended to `out` (the key
    /// builder's hot path; `Display` formatting is several times slower).
    pub(crate) fn push_hex(&self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Written on the stack and appended once: a `push` a digit checked
        // the string's room 32 times.
        let mut hex = [0u8; 32];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        // Never a silent fallback: an empty hash would key every user alike.
        out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
    }
}

impl fmt::Display for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = String::with_capacity(32);
        self.push_hex(&mut hex);
        f.write_str(&hex)
    }
}

impl fmt::Debug for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::UserId;

    fn request(headers: &[(&str, &str)], user: Option<&str>) -> http::Request<()> {
        let mut req = crate::test_support::request(headers);
        if let Some(user) = user {
            req.extensions_mut().insert(UserId::new(user));
        }
        req
    }

    #[test]
    fn the_first_source_with_a_value_wins() {
        let identity = Identity::default().secret("s");
        let by_ext = identity.of(&request(&[("authorization", "t")], Some("42")));
        let by_ext_only = identity.of(&request(&[], Some("42")));
        assert_eq!(by_ext, by_ext_only);
        let by_header = identity.of(&request(&[("authorization", "t")], None));
        assert!(by_header.is_some());
        assert_ne!(by_header, by_ext);
        assert_eq!(identity.of(&request(&[], None)), None);
    }

    #[test]
    fn a_header_equal_to_a_user_id_is_another_identity() {
        let identity = Identity::default().secret("s");
        let user = identity.of(&request(&[], Some("42")));
        let forged = identity.of(&request(&[("authorization", "42")], None));
        assert_ne!(user, forged);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let identity = Identity::none().cookie("sessionid").secret("s");
        let a = identity.of(&request(&[("cookie", "theme=dark; sessionid=abc")], None));
        let b = identity.of(&request(&[("cookie", "sessionid=abc")], None));
        let c = identity.of(&request(&[("cookie", "sessionid=abd")], None));
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            identity.of(&request(&[("cookie", "sessionid=")], None)),
            None
        );
        assert_eq!(
            identity.of(&request(&[("cookie", "other=abc")], None)),
            None
        );
    }

    #[test]
    fn cookies_are_parsed_as_servers_do_rfc6265_5_4() {
        let identity = Identity::none().cookie("sessionid").secret("s");
        let resolve = |cookie: &str| identity.resolve(&request(&[("cookie", cookie)], None));
        let user = resolve("sessionid=abc");
        assert!(matches!(user, Resolved::User(_)));
        for same in [
            "sessionid =abc",
            " sessionid= abc ;theme=dark",
            "sessionid=\"abc\"",
            "sessionid=abc; sessionid=abc",
        ] {
            assert_eq!(resolve(same), user, "{same}");
        }
        for unresolved in [
            "sessionid=",
            "sessionid",
            "SessionID=abc",
            "sessionid=abc; sessionid=xyz",
            "sessionid=abc; SESSIONID=xyz",
        ] {
            assert_eq!(resolve(unresolved), Resolved::Unresolved, "{unresolved}");
        }
        assert_eq!(resolve("theme=dark"), Resolved::Anonymous);
        // Cookies split over several headers (HTTP/2) are one jar.
        let split = request(
            &[("cookie", "sessionid=abc"), ("cookie", "sessionid=xyz")],
            None,
        );
        assert_eq!(identity.resolve(&split), Resolved::Unresolved);
    }

    #[test]
    fn a_credential_without_an_identity_is_unresolved() {
        let by_cookie = Identity::none().cookie("sessionid").secret("s");
        let bearer = request(&[("authorization", "Bearer t")], None);
        assert_eq!(by_cookie.resolve(&bearer), Resolved::Unresolved);
        let by_header = Identity::default().secret("s");
        let empty = request(&[("authorization", "")], None);
        assert_eq!(by_header.resolve(&empty), Resolved::Unresolved);
        let twice = request(&[("authorization", "a"), ("authorization", "b")], None);
        assert_eq!(by_header.resolve(&twice), Resolved::Unresolved);
        assert_eq!(by_header.resolve(&request(&[], None)), Resolved::Anonymous);
    }

    #[test]
    fn a_hash_is_the_streamed_hash_of_its_parts_at_any_length() {
        let identity = Identity::default().secret("s");
        for len in [0, 1, 1000, 1012, 1013, 1014, 5000] {
            let value = vec![b'v'; len];
            let parts: [&[u8]; 4] = [b"hdr\0", b"authorization", b"\0", &value];
            let mut hasher = blake3::Hasher::new_keyed(&identity.key);
            for part in parts {
                hasher.update(part);
            }
            let streamed = hasher.finalize();
            assert_eq!(
                identity.hash(&parts).0,
                streamed.as_bytes()[..16],
                "{len}-byte value"
            );
        }
    }

    #[test]
    fn secrets_change_the_hash_and_raw_ids_never_show() {
        let req = request(&[], Some("alice"));
        let one = Identity::default().secret("one").of(&req).unwrap();
        let two = Identity::default().secret("two").of(&req).unwrap();
        assert_ne!(one, two);
        assert_eq!(one.to_string().len(), 32);
        assert!(!one.to_string().contains("alice"));
        assert_eq!(format!("{:?}", UserId::new("alice")), "UserId(..)");
    }

    #[test]
    fn a_hash_renders_as_its_bytes_in_lowercase_hex() {
        let mut bytes = [0u8; 16];
        bytes[0] = 0x01;
        bytes[1] = 0xab;
        bytes[15] = 0xf0;
        let hash = IdentityHash(bytes);
        assert_eq!(hash.to_string(), format!("01ab{}f0", "0".repeat(26)));
        let mut out = String::from("k u=");
        hash.push_hex(&mut out);
        assert_eq!(out, format!("k u={hash}"));
    }

    #[test]
    fn custom_sources_read_the_request() {
        let identity = Identity::none()
            .custom(|req| {
                req.header(&HeaderName::from_static("x-key"))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .secret("s");
        assert!(identity.of(&request(&[("x-key", "k")], None)).is_some());
        assert!(identity.of(&request(&[], None)).is_none());
    }
}
