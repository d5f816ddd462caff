//! The host a request is for (RFC 9112 §3.2, RFC 9113 §8.3.1): its one
//! `Host` field, or the authority of an absolute-form target (HTTP/2's
//! `:authority`), which must agree when both are there — and the spelling
//! of it that keys hold and origins receive.

use crate::request::RequestHead;
use http::header;
use std::borrow::Cow;

/// Why a request names no single host: a server answers it 400
/// (RFC 9112 §3.2); a cache never stores or answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHost {
    /// More than one `Host` field line.
    Repeated,
    /// A `Host` that names another host than the absolute-form target (or
    /// HTTP/2's `:authority`).
    Disagrees,
}

impl std::fmt::Display for BadHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Repeated => "more than one Host header",
            Self::Disagrees => "a Host header that disagrees with the request target",
        })
    }
}

impl std::error::Error for BadHost {}

/// The host `req` is for: its `Host` field, or else its target's
/// authority; `None` when it names none.
///
/// ```
/// use cachet_core::adapter::{request_host, BadHost};
/// let req = http::Request::get("http://a.example/").header("host", "b.example").body(()).unwrap();
/// assert_eq!(request_host(&req), Err(BadHost::Disagrees));
/// let req = http::Request::get("/").header("host", "a.example").body(()).unwrap();
/// assert_eq!(request_host(&req), Ok(Some(&b"a.example"[..])));
/// ```
pub fn request_host(req: &dyn RequestHead) -> Result<Option<&[u8]>, BadHost> {
    let mut lines = 0;
    let mut host = None;
    req.header_values(&header::HOST, &mut |value| {
        lines += 1;
        host = Some(value);
    });
    if lines > 1 {
        return Err(BadHost::Repeated);
    }
    match (host, req.authority()) {
        (Some(host), Some(authority)) if !same_host(host, authority) => Err(BadHost::Disagrees),
        (Some(host), _) => Ok(Some(host)),
        (None, authority) => Ok(authority),
    }
}

/// Whether two spellings name the same host, as keys compare them.
fn same_host(a: &[u8], b: &[u8]) -> bool {
    match (normalize_host(a), normalize_host(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.trim_ascii() == b.trim_ascii(),
    }
}

/// [`HOST_BYTES`]' flag of an upper-case letter.
const UPPER: u8 = 1;
/// [`HOST_BYTES`]' flag of a byte no host name, IP literal or port has.
const NOT_HOST: u8 = 2;

/// Each byte's flags (a table: one load a byte, where a `match` on
/// ranges branched on each).
static HOST_BYTES: [u8; 256] = {
    let mut table = [NOT_HOST; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = match byte as u8 {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b':' | b'[' | b']' => 0,
            b'A'..=b'Z' => UPPER,
            _ => NOT_HOST,
        };
        byte += 1;
    }
    table
};

/// A `Host` value as keys hold it and origins receive it: ASCII lower
/// case (RFC 3986 §6.2.2.1) and without the default port `:80`
/// (§6.2.3) — never longer than the value itself. A trailing dot stays:
/// `example.com.` is another origin to browsers (the WHATWG URL
/// standard), so it is another host to the cache too. `None` when the
/// value holds a byte no host name, IP literal or port has. Borrowed when
/// the value is already so spelled, as nearly every client spells it.
pub(crate) fn normalize_host(host: &[u8]) -> Option<Cow<'_, str>> {
    let host = host.trim_ascii();
    let mut class = 0;
    for &byte in host {
        class |= HOST_BYTES[usize::from(byte)];
    }
    if class & NOT_HOST != 0 {
        return None;
    }
    let upper = class & UPPER != 0;
    let host = host.strip_suffix(b":80").unwrap_or(host);
    // Only ASCII is left.
    let host = std::str::from_utf8(host).ok()?;
    Some(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(target: &str, hosts: &[&str]) -> Result<Option<String>, BadHost> {
        let mut req = http::Request::get(target);
        for host in hosts {
            req = req.header("host", *host);
        }
        let req = req.body(()).unwrap();
        request_host(&req).map(|host| host.map(|h| String::from_utf8_lossy(h).into_owned()))
    }

    #[test]
    fn one_host_or_a_400_rfc9112_3_2() {
        assert_eq!(host_of("/", &["a.example"]), Ok(Some("a.example".into())));
        assert_eq!(host_of("/", &[]), Ok(None));
        assert_eq!(
            host_of("/", &["a.example", "a.example"]),
            Err(BadHost::Repeated)
        );
        assert_eq!(
            host_of("http://a.example/", &[]),
            Ok(Some("a.example".into()))
        );
        assert_eq!(
            host_of("http://a.example/", &["A.example:80"]),
            Ok(Some("A.example:80".into()))
        );
        assert_eq!(
            host_of("http://a.example/", &["b.example"]),
            Err(BadHost::Disagrees)
        );
        assert_eq!(
            host_of("http://a.example/", &["a.example."]),
            Err(BadHost::Disagrees)
        );
    }

    #[test]
    fn case_and_the_default_port_are_one_spelling_a_trailing_dot_another() {
        assert_eq!(
            normalize_host(b"Example.COM:80").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_host(b"example.com.").as_deref(),
            Some("example.com.")
        );
        assert_eq!(normalize_host(b"[::1]:8080").as_deref(), Some("[::1]:8080"));
        assert_eq!(normalize_host(b"a b"), None);
        assert_eq!(normalize_host(b"").as_deref(), Some(""));
    }

    #[test]
    fn a_host_already_normal_is_borrowed() {
        assert!(matches!(
            normalize_host(b"shop.example:8080"),
            Some(Cow::Borrowed("shop.example:8080"))
        ));
        assert!(matches!(
            normalize_host(b" shop.example:80 "),
            Some(Cow::Borrowed("shop.example"))
        ));
        assert!(matches!(
            normalize_host(b"Shop.example"),
            Some(Cow::Owned(_))
        ));
    }

    proptest::proptest! {
        /// The one-pass form against the plain statement of the rule.
        #[test]
        fn normalizing_is_trim_check_lowercase_and_strip(host in proptest::collection::vec(
            proptest::sample::select(b" \t.-_:[]08aAzZ@/%\x80".to_vec()), 0..12,
        )) {
            let plain = {
                let trimmed = host.trim_ascii();
                let valid = |byte: &u8| byte.is_ascii_alphanumeric() || b".-_:[]".contains(byte);
                trimmed.iter().all(valid).then(|| {
                    let lower = trimmed.to_ascii_lowercase();
                    let lower = lower.strip_suffix(b":80").unwrap_or(&lower);
                    String::from_utf8(lower.to_vec()).unwrap()
                })
            };
            proptest::prop_assert_eq!(normalize_host(&host).map(Cow::into_owned), plain);
        }
    }
}
