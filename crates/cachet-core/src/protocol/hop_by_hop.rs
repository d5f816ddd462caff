//! Connection-specific header fields (RFC 9110 §7.6.1): they describe one
//! connection, so an intermediary neither forwards them nor stores them
//! (RFC 9111 §3.1) — the standard ones, and every field the message's own
//! `Connection` header names. One list for every path that stores or
//! forwards a message: the cache's stored responses and 304 updates, the
//! proxy's requests upstream and responses downstream.

use http::header::{self, HeaderMap, HeaderName};

/// The connection-specific fields every message loses, whatever its
/// `Connection` header says. `Upgrade` goes too: it only means something
/// with `Connection: upgrade`, which is not passed on.
pub const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether `name` is one of [`HOP_BY_HOP`].
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// Removes the connection-specific fields from `headers`: those the
/// `Connection` header names, then [`HOP_BY_HOP`].
///
/// ```
/// use cachet_core::adapter::strip_hop_by_hop;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("connection", "keep-alive, x-hop".parse().unwrap());
/// headers.insert("x-hop", "1".parse().unwrap());
/// headers.insert("transfer-encoding", "chunked".parse().unwrap());
/// headers.insert("cache-control", "max-age=60".parse().unwrap());
/// strip_hop_by_hop(&mut headers);
/// assert_eq!(headers.len(), 1);
/// assert!(headers.contains_key("cache-control"));
/// ```
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry no `Connection` with names, and none of the
    // list: one look at the names finds that before anything is removed.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn standard_fields_and_those_connection_names_go_rfc9110_7_6_1() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "x-other-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("x-other-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
            ("cache-control", "max-age=60"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["cache-control"]);
    }
}
