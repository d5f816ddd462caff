//! The innermost service: forwards a request to the upstream with a pooled
//! hyper client — the upstream's URI and `Host`, `Via` — and answers
//! 502/504 itself when the upstream cannot. The client's headers were
//! prepared before the cache saw the request ([`crate::inbound`]).

use crate::config::ProxyConfig;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A response body from the upstream, or one the proxy made.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The client's address, put in the request's extensions by the server for
/// `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Headers that describe one connection (RFC 9110 §7.6.1), never forwarded.
pub(crate) const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

struct Settings {
    scheme: Scheme,
    authority: Authority,
    timeout: Duration,
    forwarded_headers: bool,
    preserve_host: bool,
    via: HeaderValue,
}

/// Forwards requests to one upstream. Never fails: an unreachable upstream
/// is a 502, a slow one a 504 — which the cache in front may answer from a
/// stale entry (`stale_if_error`).
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Incoming>,
    settings: Arc<Settings>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.settings.authority)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for `config`'s upstream.
    pub fn new(config: &ProxyConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let parts = config.upstream.clone().into_parts();
        let via = HeaderValue::try_from(format!("1.1 {}", config.via))
            .unwrap_or_else(|_| HeaderValue::from_static("1.1 cachet"));
        Self {
            client,
            settings: Arc::new(Settings {
                scheme: parts.scheme.unwrap_or(Scheme::HTTP),
                authority: parts.authority.expect("validated: the upstream has a host"),
                timeout: config.timeout,
                forwarded_headers: config.forwarded_headers,
                preserve_host: config.preserve_host,
                via,
            }),
        }
    }
}

impl tower::Service<Request<Incoming>> for Upstream {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let client = self.client.clone();
        let settings = Arc::clone(&self.settings);
        Box::pin(async move {
            let req = match outbound(req, &settings) {
                Ok(req) => req,
                Err(status) => return Ok(synthesized(status, &settings)),
            };
            let response = match tokio::time::timeout(settings.timeout, client.request(req)).await {
                Ok(Ok(response)) => response,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "upstream request failed");
                    return Ok(synthesized(StatusCode::BAD_GATEWAY, &settings));
                }
                Err(_) => {
                    tracing::warn!(timeout = ?settings.timeout, "upstream timed out");
                    return Ok(synthesized(StatusCode::GATEWAY_TIMEOUT, &settings));
                }
            };
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.append(header::VIA, settings.via.clone());
            Ok(Response::from_parts(parts, body.boxed()))
        })
    }
}

/// The request as it goes upstream: the upstream's URI, `Via` and (if
/// enabled) `X-Forwarded-*` from the connection added, `Host` kept or
/// replaced. The client's own forwarding headers were removed before the
/// cache saw the request (`strip_headers`).
fn outbound(req: Request<Incoming>, settings: &Settings) -> Result<Request<Incoming>, StatusCode> {
    let (mut parts, body) = req.into_parts();
    let client_host = parts.headers.get(header::HOST).cloned().or_else(|| {
        let authority = parts.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(settings.scheme.clone())
        .authority(settings.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    parts.headers.append(header::VIA, settings.via.clone());
    if settings.forwarded_headers {
        if let Some(ClientAddr(addr)) = parts.extensions.get::<ClientAddr>().copied() {
            append_forwarded_for(&mut parts.headers, addr);
        }
        parts
            .headers
            .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        if let Some(host) = &client_host {
            parts.headers.insert(X_FORWARDED_HOST, host.clone());
        }
    }
    let host = match (&client_host, settings.preserve_host) {
        (Some(host), true) => host.clone(),
        _ => HeaderValue::from_str(settings.authority.as_str())
            .map_err(|_| StatusCode::BAD_GATEWAY)?,
    };
    parts.headers.insert(header::HOST, host);
    // The upstream connection is HTTP/1.1 whatever the client spoke.
    parts.version = http::Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

/// Adds the client to `X-Forwarded-For`, after the proxies before this one
/// when `strip_headers` lets the header through.
fn append_forwarded_for(headers: &mut HeaderMap, addr: SocketAddr) {
    let ip = addr.ip().to_string();
    let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// Removes the hop-by-hop headers: the standard ones and those the
/// `Connection` header names (RFC 9110 §7.6.1).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
    // `Upgrade` only means something with `Connection: upgrade`, which the
    // proxy does not pass on.
    headers.remove(header::UPGRADE);
}

/// A response the proxy makes itself when the upstream cannot answer.
fn synthesized(status: StatusCode, settings: &Settings) -> Response<ProxyBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::VIA, settings.via.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("cache-control", "max-age=60"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["cache-control"]);
    }
}
