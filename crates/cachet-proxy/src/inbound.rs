//! A client's request as the cache and the upstream will both see it,
//! prepared once, before the cache layer: hop-by-hop headers and those
//! `Connection` names removed (RFC 9110 §7.6.1), the configured unkeyed
//! headers removed ([`DEFAULT_STRIP_HEADERS`](crate::DEFAULT_STRIP_HEADERS)),
//! and the forwarding headers set from the connection itself. Nothing the
//! key was made from is dropped after it, and nothing a client sent reaches
//! the upstream unless the cache saw it.

use crate::config::ProxyConfig;
use crate::upstream::strip_hop_by_hop;
use http::header::{self, HeaderName, HeaderValue};
use http::Request;
use std::net::SocketAddr;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// How requests are prepared.
#[derive(Debug, Clone)]
pub(crate) struct Inbound {
    strip: Vec<HeaderName>,
    forwarded_headers: bool,
}

impl Inbound {
    pub(crate) fn new(config: &ProxyConfig) -> Self {
        Self {
            strip: config.strip_headers.clone(),
            forwarded_headers: config.forwarded_headers,
        }
    }

    /// Prepares `req`, which came from `client`.
    pub(crate) fn prepare<B>(&self, req: &mut Request<B>, client: SocketAddr) {
        let host = req.headers().get(header::HOST).cloned().or_else(|| {
            let authority = req.uri().authority()?;
            HeaderValue::from_str(authority.as_str()).ok()
        });
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        for name in &self.strip {
            headers.remove(name);
        }
        if !self.forwarded_headers {
            return;
        }
        // Appended to what is left: with the default list, nothing is.
        let ip = client.ip().to_string();
        let forwarded_for = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip,
        };
        if let Ok(value) = HeaderValue::try_from(forwarded_for) {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        match host {
            Some(host) => headers.insert(X_FORWARDED_HOST, host),
            None => headers.remove(X_FORWARDED_HOST),
        };
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

    fn prepared(inbound: &Inbound, headers: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut req = Request::get("/");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut req = req.body(()).unwrap();
        inbound.prepare(&mut req, "10.0.0.7:5000".parse().unwrap());
        let mut seen: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        seen.sort();
        seen
    }

    #[test]
    fn unkeyed_headers_go_and_forwarding_headers_come_from_the_connection() {
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
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            seen,
            pairs(&[
                ("accept", "text/html"),
                ("host", "shop.example"),
                ("x-forwarded-for", "10.0.0.7"),
                ("x-forwarded-host", "shop.example"),
                ("x-forwarded-proto", "http"),
            ])
        );
    }

    #[test]
    fn without_forwarding_headers_the_clients_are_removed_too() {
        let seen = prepared(
            &inbound("forwarded_headers = false\n"),
            &[
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-for", "1.2.3.4"),
            ],
        );
        assert!(seen.is_empty(), "{seen:?}");
    }

    #[test]
    fn the_list_is_configurable() {
        let seen = prepared(
            &inbound("forwarded_headers = false\nstrip_headers = [\"x-tenant\"]\n"),
            &[("x-tenant", "a"), ("x-forwarded-for", "1.2.3.4")],
        );
        assert_eq!(seen, [("x-forwarded-for".to_owned(), "1.2.3.4".to_owned())]);
    }
}
