//! A client's request as the cache and the upstream will both see it,
//! prepared once, before the cache layer: refused when it names no single
//! host (RFC 9112 §3.2), hop-by-hop headers and those `Connection` names
//! removed (RFC 9110 §7.6.1), and the configured unkeyed headers removed
//! ([`DEFAULT_STRIP_HEADERS`](crate::DEFAULT_STRIP_HEADERS)).
//! Nothing the key was made from is dropped after it, and nothing a client
//! sent reaches the upstream unless the cache saw it. The forwarding
//! headers the proxy sets itself go on in the upstream client, on the way
//! to the origin only (a hit never needs them).

use crate::config::ProxyConfig;
use cachet_core::adapter::{request_host, strip_hop_by_hop, BadHost, HOP_BY_HOP};
use http::header::HeaderName;
use http::Request;
use std::collections::HashSet;

/// How requests are prepared.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    strip: Vec<HeaderName>,
    /// `strip` and the hop-by-hop fields: one hash lookup tells whether a
    /// request's field goes, where comparing it with each name took a few
    /// hundred instructions for every field of a browser's request.
    doomed: HashSet<HeaderName, ahash::RandomState>,
}

impl Inbound {
    pub(crate) fn new(config: &ProxyConfig) -> Self {
        let strip = config.strip_headers.clone();
        let doomed = strip.iter().cloned().chain(HOP_BY_HOP).collect();
        Self { strip, doomed }
    }

    /// Prepares `req`, or says why it must be answered 400: two `Host`
    /// lines, or a `Host` that names another host than the absolute-form
    /// target (or HTTP/2's `:authority`). Most requests carry none of the
    /// headers that go, so one pass over the names finds them before any
    /// is looked up.
    pub(crate) fn prepare<B>(&self, req: &mut Request<B>) -> Result<(), BadHost> {
        request_host(req)?;
        let headers = req.headers_mut();
        if headers.keys().any(|name| self.doomed.contains(name)) {
            strip_hop_by_hop(headers);
            for name in &self.strip {
                headers.remove(name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn inbound(extra: &str) -> Inbound {
        let text = format!("[proxy]\nupstream = \"http://127.0.0.1:1\"\n{extra}");
        Inbound::new(&ProxyConfig::from_toml(&text, &Overrides::default()).unwrap())
    }

    fn prepared(inbound: &Inbound, headers: &[(&str, &str)]) -> Vec<String> {
        let mut req = Request::get("/");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut req = req.body(()).unwrap();
        inbound.prepare(&mut req).unwrap();
        let mut seen: Vec<String> = req
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        seen.sort();
        seen
    }

    #[test]
    fn unkeyed_and_hop_by_hop_headers_go_before_the_cache() {
        let seen = prepared(
            &inbound(""),
            &[
                ("host", "shop.example"),
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-for", "1.2.3.4"),
                ("forwarded", "host=evil.example"),
                ("x-http-method-override", "DELETE"),
                ("x-original-url", "/admin"),
                ("connection", "accept-language"),
                ("accept-language", "de"),
                ("accept", "text/html"),
            ],
        );
        assert_eq!(seen, ["accept: text/html", "host: shop.example"]);
    }

    #[test]
    fn a_request_without_them_is_left_as_it_is() {
        let headers = [("host", "a"), ("accept", "*/*"), ("x-tenant", "t")];
        assert_eq!(
            prepared(&inbound(""), &headers),
            ["accept: */*", "host: a", "x-tenant: t"]
        );
    }

    #[test]
    fn a_request_naming_two_hosts_is_refused_rfc9112_3_2() {
        let inbound = inbound("");
        let mut twice = Request::get("/")
            .header("host", "a.example")
            .header("host", "b.example")
            .body(())
            .unwrap();
        assert_eq!(inbound.prepare(&mut twice), Err(BadHost::Repeated));
        let mut other = Request::get("http://a.example/")
            .header("host", "b.example")
            .body(())
            .unwrap();
        assert_eq!(inbound.prepare(&mut other), Err(BadHost::Disagrees));
    }

    #[test]
    fn the_list_is_configurable() {
        let seen = prepared(
            &inbound("strip_headers = [\"x-tenant\"]\n"),
            &[("x-tenant", "a"), ("x-forwarded-for", "1.2.3.4")],
        );
        assert_eq!(seen, ["x-forwarded-for: 1.2.3.4"]);
    }
}
