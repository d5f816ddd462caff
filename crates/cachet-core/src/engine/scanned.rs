//! A request whose header names were read once: the cache looks up a dozen
//! headers on every request it routes (bypass conditions, directives,
//! credentials, preconditions, ranges), and most requests carry none of
//! them. [`Scanned`] answers those lookups from one pass over the names
//! instead of a map lookup each (in actix-web's map, a name parse each).

use crate::request::{RequestHead, UserId};
use http::header::{self, HeaderName};

/// The headers read on every routed request, one bit each (a `static`:
/// a `const` array would be built and dropped at every use).
static ASKED: [HeaderName; 13] = [
    header::HOST,              // 0: 4 bytes
    header::RANGE,             // 1: 5
    header::COOKIE,            // 2: 6
    header::PRAGMA,            // 3: 6
    header::UPGRADE,           // 4: 7
    header::IF_RANGE,          // 5: 8
    header::CONNECTION,        // 6: 10
    header::AUTHORIZATION,     // 7: 13
    header::CACHE_CONTROL,     // 8: 13
    header::IF_NONE_MATCH,     // 9: 13
    header::CONTENT_LENGTH,    // 10: 14
    header::IF_MODIFIED_SINCE, // 11: 17
    header::TRANSFER_ENCODING, // 12: 17
];

/// Bits of [`ASKED`]: a request's preconditions the cache evaluates
/// itself (`If-None-Match`, `If-Modified-Since`).
pub(crate) const PRECONDITIONS: u16 = 1 << 9 | 1 << 11;
/// Bit of [`ASKED`]: `Host`.
pub(crate) const HOST: u16 = 1 << 0;
/// Bit of [`ASKED`]: `Range`.
pub(crate) const RANGE: u16 = 1 << 1;
/// Bits of [`ASKED`]: the request's cache directives (`Cache-Control`,
/// `Pragma`).
pub(crate) const DIRECTIVES: u16 = 1 << 3 | 1 << 8;
/// Bits of [`ASKED`]: what may make a request skip the cache whatever its
/// rule (`Upgrade`, `Connection`, `Content-Length`, `Transfer-Encoding`).
pub(crate) const SKIPS: u16 = 1 << 4 | 1 << 6 | 1 << 10 | 1 << 12;

/// The index in [`ASKED`] of the header a request names `name` (lower
/// case, as both `http` versions spell names): its length and first byte
/// pick the one candidate, which is then compared whole.
fn asked(name: &str) -> Option<usize> {
    let bytes = name.as_bytes();
    let index = match (bytes.len(), bytes.first()?) {
        (4, b'h') => 0,
        (5, b'r') => 1,
        (6, b'c') => 2,
        (6, b'p') => 3,
        (7, b'u') => 4,
        (8, b'i') => 5,
        (10, b'c') => 6,
        (13, b'a') => 7,
        (13, b'c') => 8,
        (13, b'i') => 9,
        (14, b'c') => 10,
        (17, b'i') => 11,
        (17, b't') => 12,
        _ => return None,
    };
    let known = ASKED[index].as_str();
    // `http` spells a known name with one static string: the same pointer
    // is the same name, without reading it.
    (std::ptr::eq(known, name) || known == name).then_some(index)
}

/// One bit of 64 for a name not in [`ASKED`], from its length and two of
/// its bytes: the names a request has set theirs, so a name whose bit is
/// clear is surely not among them (a set one may be: then the request is
/// asked). A browser's request carries a dozen names the cache never asks
/// for; the factors are chosen so that none of 51 common request
/// headers shares a bit with a default bypass header (`X-Original-URL`,
/// …), which a test checks.
fn signature(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let (len, last) = (bytes.len(), bytes.last().copied().unwrap_or(0));
    let middle = bytes.get(len / 2).copied().unwrap_or(0);
    let mixed = len + 3 * usize::from(last) + 11 * usize::from(middle);
    1 << (mixed % 64)
}

/// What one pass over a request's header names found: which of [`ASKED`]
/// it has, and the [`signature`]s of its others. A plan keeps it, so that
/// the lookup after routing reads the request without a second pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    /// Bit `i`: the request has `ASKED[i]`.
    present: u16,
    /// The [`signature`]s of its headers not in `ASKED`, or-ed: zero when
    /// it has none.
    others: u64,
    /// Whether the names could be listed (else every lookup goes to `req`).
    listed: bool,
}

impl Scan {
    fn of(req: &dyn RequestHead) -> Self {
        let mut present = 0u16;
        let mut others = 0u64;
        let listed = req.header_names(&mut |name| match asked(name) {
            Some(index) => present |= 1 << index,
            None => others |= signature(name),
        });
        Self {
            present,
            others,
            listed,
        }
    }
}

/// `req`, with its [`Scan`]. A lookup of a header it lacks is answered
/// here; any other goes to `req`.
pub(crate) struct Scanned<'a> {
    req: &'a dyn RequestHead,
    scan: Scan,
}

impl<'a> Scanned<'a> {
    pub(crate) fn new(req: &'a dyn RequestHead) -> Self {
        Self {
            req,
            scan: Scan::of(req),
        }
    }

    /// `req` with the scan routing made of it, when it still holds: no
    /// step since has added a header name. Else scanned afresh.
    pub(crate) fn again(req: &'a dyn RequestHead, scan: Option<Scan>) -> Self {
        match scan {
            Some(scan) => Self { req, scan },
            None => Self::new(req),
        }
    }

    /// What the scan found.
    pub(crate) fn scan(&self) -> Scan {
        self.scan
    }

    /// Whether the request may have one of the [`ASKED`] headers whose
    /// `bits` are set: false only when its names were listed and none is
    /// among them.
    pub(crate) fn may_have(&self, bits: u16) -> bool {
        let scan = &self.scan;
        !scan.listed || scan.present & bits != 0
    }

    /// Whether the request surely has no header `name`.
    #[inline]
    fn lacks(&self, name: &HeaderName) -> bool {
        let scan = &self.scan;
        if !scan.listed {
            return false;
        }
        if scan.present == 0 && scan.others == 0 {
            return true; // no header at all
        }
        match asked(name.as_str()) {
            Some(index) => scan.present & (1 << index) == 0,
            None => scan.others == 0 || scan.others & signature(name.as_str()) == 0,
        }
    }
}

impl RequestHead for Scanned<'_> {
    fn method(&self) -> &str {
        self.req.method()
    }
    fn path(&self) -> &str {
        self.req.path()
    }
    fn query(&self) -> Option<&str> {
        self.req.query()
    }
    #[inline]
    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        if self.lacks(name) {
            return None;
        }
        self.req.header(name)
    }
    fn header_values<'b>(&'b self, name: &HeaderName, each: &mut dyn FnMut(&'b [u8])) {
        if !self.lacks(name) {
            self.req.header_values(name, each);
        }
    }
    fn user_id(&self) -> Option<UserId> {
        self.req.user_id()
    }
    fn header_names(&self, each: &mut dyn FnMut(&str)) -> bool {
        self.req.header_names(each)
    }
    fn authority(&self) -> Option<&[u8]> {
        self.req.authority()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `req` says about `name`, asked directly and through a scan.
    fn both(req: &http::Request<()>, name: &HeaderName) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let read = |head: &dyn RequestHead| {
            let mut values = Vec::new();
            head.header_values(name, &mut |value| values.push(value.to_vec()));
            assert_eq!(head.header(name), values.first().map(Vec::as_slice));
            values
        };
        (read(req), read(&Scanned::new(req)))
    }

    #[test]
    fn every_name_of_the_table_is_found_by_its_length_and_first_byte() {
        for (index, name) in ASKED.iter().enumerate() {
            assert_eq!(asked(name.as_str()), Some(index), "{name}");
        }
        for other in [
            "accept",
            "x-forwarded-for",
            "hose",
            "cookies",
            "",
            "if-match",
        ] {
            assert_eq!(asked(other), None, "{other}");
        }
        assert_eq!(asked(HeaderName::from_static("x-host").as_str()), None);
    }

    #[test]
    fn the_named_bits_are_their_headers() {
        let bit = |name: &HeaderName| 1u16 << asked(name.as_str()).unwrap();
        assert_eq!(
            PRECONDITIONS,
            bit(&header::IF_NONE_MATCH) | bit(&header::IF_MODIFIED_SINCE)
        );
        assert_eq!(HOST, bit(&header::HOST));
        assert_eq!(RANGE, bit(&header::RANGE));
        assert_eq!(
            DIRECTIVES,
            bit(&header::CACHE_CONTROL) | bit(&header::PRAGMA)
        );
        assert_eq!(
            SKIPS,
            bit(&header::UPGRADE)
                | bit(&header::CONNECTION)
                | bit(&header::CONTENT_LENGTH)
                | bit(&header::TRANSFER_ENCODING)
        );
        let plain = http::Request::get("/")
            .header("accept", "*/*")
            .body(())
            .unwrap();
        assert!(!Scanned::new(&plain).may_have(PRECONDITIONS | RANGE));
        let ranged = http::Request::get("/")
            .header("range", "bytes=0-1")
            .body(())
            .unwrap();
        assert!(Scanned::new(&ranged).may_have(RANGE));
        assert!(!Scanned::new(&ranged).may_have(PRECONDITIONS));
    }

    #[test]
    fn a_scan_answers_every_lookup_as_the_request_does() {
        let names: Vec<HeaderName> = ASKED
            .iter()
            .cloned()
            .chain(
                [
                    "x-http-method-override",
                    "x-original-url",
                    "x-rewrite-url",
                    "x-http-method",
                    "x-method-override",
                    "accept",
                    "accept-language",
                    "user-agent",
                    "x-other",
                ]
                .map(HeaderName::from_static),
            )
            .collect();
        let requests = [
            http::Request::get("/").body(()).unwrap(),
            http::Request::get("/")
                .header("host", "a")
                .body(())
                .unwrap(),
            http::Request::get("/")
                .header("cache-control", "no-cache")
                .header("cache-control", "max-age=0")
                .header("x-http-method-override", "PUT")
                .header("range", "bytes=0-1")
                .body(())
                .unwrap(),
            http::Request::get("/")
                .header("accept", "*/*")
                .body(())
                .unwrap(),
            browser().body(()).unwrap(),
            browser()
                .header("x-original-url", "/admin")
                .body(())
                .unwrap(),
        ];
        for req in &requests {
            for name in &names {
                let (direct, scanned) = both(req, name);
                assert_eq!(direct, scanned, "{name} in {:?}", req.headers());
            }
        }
    }

    /// A browser's navigation, as Firefox and Chromium send it.
    fn browser() -> http::request::Builder {
        [
            ("host", "shop.example"),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            ),
            ("accept", "text/html,application/xhtml+xml"),
            ("accept-language", "en-US,en;q=0.5"),
            ("accept-encoding", "gzip, deflate, br, zstd"),
            ("referer", "https://shop.example/"),
            ("upgrade-insecure-requests", "1"),
            ("sec-fetch-dest", "document"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-user", "?1"),
            ("sec-ch-ua", "\"Chromium\";v=\"128\""),
            ("sec-ch-ua-mobile", "?0"),
            ("sec-ch-ua-platform", "\"Linux\""),
            ("priority", "u=0, i"),
        ]
        .into_iter()
        .fold(http::Request::get("/"), |req, (name, value)| {
            req.header(name, value)
        })
    }

    #[test]
    fn common_names_leave_the_default_bypass_headers_unasked() {
        // What the signatures buy: for requests with these names the
        // default bypass headers are answered from the scan, unlooked-up.
        let bypass = crate::config::DEFAULT_BYPASS_HEADERS
            .iter()
            .fold(0, |bits, name| bits | signature(name));
        for name in [
            "user-agent",
            "accept",
            "accept-language",
            "accept-encoding",
            "referer",
            "upgrade-insecure-requests",
            "sec-fetch-dest",
            "sec-fetch-mode",
            "sec-fetch-site",
            "sec-fetch-user",
            "sec-ch-ua",
            "sec-ch-ua-mobile",
            "sec-ch-ua-platform",
            "priority",
            "origin",
            "dnt",
            "te",
            "content-type",
            "x-requested-with",
            "sec-gpc",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-real-ip",
            "forwarded",
            "via",
            "purpose",
            "sec-purpose",
            "x-request-id",
            "traceparent",
            "tracestate",
            "baggage",
            "sec-ch-ua-arch",
            "sec-ch-ua-model",
            "sec-ch-ua-full-version-list",
            "save-data",
            "device-memory",
            "viewport-width",
            "x-csrf-token",
            "x-api-key",
            "keep-alive",
            "access-control-request-method",
            "access-control-request-headers",
            "accept-charset",
            "expect",
            "max-forwards",
            "from",
            "x-amzn-trace-id",
            "cf-connecting-ip",
            "cdn-loop",
            "x-forwarded-port",
        ] {
            assert_eq!(signature(name) & bypass, 0, "{name}");
        }
        let req = browser().body(()).unwrap();
        let scanned = Scanned::new(&req);
        for name in crate::config::DEFAULT_BYPASS_HEADERS {
            assert!(scanned.lacks(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn a_request_that_cannot_list_its_names_is_always_asked() {
        struct Unlisted(http::Request<()>);
        impl RequestHead for Unlisted {
            fn method(&self) -> &str {
                "GET"
            }
            fn path(&self) -> &str {
                "/"
            }
            fn query(&self) -> Option<&str> {
                None
            }
            fn header(&self, name: &HeaderName) -> Option<&[u8]> {
                self.0.header(name)
            }
            fn header_values<'a>(&'a self, name: &HeaderName, each: &mut dyn FnMut(&'a [u8])) {
                self.0.header_values(name, each);
            }
            fn user_id(&self) -> Option<UserId> {
                None
            }
        }
        let req = Unlisted(
            http::Request::get("/")
                .header("x-other", "1")
                .body(())
                .unwrap(),
        );
        let scanned = Scanned::new(&req);
        assert_eq!(
            scanned.header(&HeaderName::from_static("x-other")),
            Some(&b"1"[..])
        );
    }
}
