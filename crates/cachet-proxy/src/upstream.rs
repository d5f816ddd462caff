//! The innermost service: forwards a request to the upstream with a pooled
//! hyper client — the upstream's URI and `Host`, `Via` — and answers
//! 502/504 itself when the upstream cannot, or 400 (closing the
//! connection) when it was the client's body that broke the request: not
//! valid chunked coding, or cut short (RFC 9112 §7.1). The client's
//! headers were prepared before the cache saw the request
//! ([`crate::inbound`]).

use crate::config::ProxyConfig;
use crate::ip_text::push_ip;
use bytes::Bytes;
use cachet_core::adapter::strip_hop_by_hop;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A response body from the upstream, or one the proxy made.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The client's address for `X-Forwarded-For`, when a server puts it in
/// the request's extensions. The proxy's own server tells each
/// connection's [`Upstream`] instead ([`Upstream::for_client`]), sparing
/// every request an extension map.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

struct Settings {
    client: Client<HttpConnector, ClientBody>,
    scheme: Scheme,
    authority: Authority,
    timeout: Duration,
    forwarded_headers: bool,
    preserve_host: bool,
    via: HeaderValue,
    /// `Via` for a response received in HTTP/1.0 (RFC 9110 §7.6.3 names
    /// the protocol each hop received).
    via_http10: HeaderValue,
}

/// Forwards requests to one upstream. Never fails: an unreachable upstream
/// is a 502, a slow one a 504 — which the cache in front may answer from a
/// stale entry (`stale_if_error`).
///
/// A clone shares the hyper client and the settings: the stack it is in
/// is cloned for every request, so it holds one pointer (and the address
/// of its connection's client).
#[derive(Clone)]
pub struct Upstream {
    settings: Arc<Settings>,
    /// The address of the client whose connection this serves, if one.
    client_addr: Option<SocketAddr>,
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
        let via_http10 = HeaderValue::try_from(format!("1.0 {}", config.via))
            .unwrap_or_else(|_| HeaderValue::from_static("1.0 cachet"));
        Self {
            settings: Arc::new(Settings {
                client,
                scheme: parts.scheme.unwrap_or(Scheme::HTTP),
                authority: parts.authority.expect("validated: the upstream has a host"),
                timeout: config.timeout,
                forwarded_headers: config.forwarded_headers,
                preserve_host: config.preserve_host,
                via,
                via_http10,
            }),
            client_addr: None,
        }
    }

    /// This upstream for one client's connection: `X-Forwarded-For` names
    /// `client` unless a request's [`ClientAddr`] says otherwise.
    pub fn for_client(&self, client_addr: SocketAddr) -> Self {
        Self {
            settings: Arc::clone(&self.settings),
            client_addr: Some(client_addr),
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
        let settings = Arc::clone(&self.settings);
        let client_addr = self.client_addr;
        Box::pin(async move {
            let broken = Arc::new(AtomicBool::new(false));
            let req = req.map(|body| ClientBody {
                body,
                broken: Arc::clone(&broken),
            });
            let req = match outbound(req, client_addr, &settings) {
                Ok(req) => req,
                Err(status) => return Ok(synthesized(status, &settings)),
            };
            let response = match tokio::time::timeout(
                settings.timeout,
                settings.client.request(req),
            )
            .await
            {
                Ok(Ok(response)) => response,
                Ok(Err(error)) if broken.load(Ordering::Relaxed) => {
                    tracing::info!(%error, "the client's request body is malformed: 400, upstream request aborted");
                    let mut response = synthesized(StatusCode::BAD_REQUEST, &settings);
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    return Ok(response);
                }
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
            let via = if parts.version == http::Version::HTTP_10 {
                &settings.via_http10
            } else {
                &settings.via
            };
            parts.headers.append(header::VIA, via.clone());
            // The client hears the proxy's own version, not the origin's
            // (RFC 9110 §6.2): an HTTP/1.0 origin must not downgrade the
            // client's connection or close it after every miss.
            parts.version = http::Version::HTTP_11;
            Ok(Response::from_parts(parts, body.boxed()))
        })
    }
}

/// The request as it goes upstream: the upstream's URI, `Via` and (if
/// enabled) `X-Forwarded-*` from the connection added, `Host` kept or
/// replaced. The client's own forwarding headers were removed before the
/// cache saw the request (`strip_headers`).
fn outbound(
    req: Request<ClientBody>,
    client_addr: Option<SocketAddr>,
    settings: &Settings,
) -> Result<Request<ClientBody>, StatusCode> {
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
        let told = parts.extensions.get::<ClientAddr>().map(|told| told.0);
        if let Some(addr) = told.or(client_addr) {
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
    let mut value = Vec::with_capacity(48);
    if let Some(earlier) = headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        value.extend_from_slice(earlier.as_bytes());
        value.extend_from_slice(b", ");
    }
    push_ip(&mut value, addr.ip());
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

pin_project_lite::pin_project! {
    /// The client's request body on its way upstream, noting whether it
    /// failed: a body that is not valid chunked coding, or ends early, is
    /// the client's error, not the upstream's.
    pub struct ClientBody {
        #[pin]
        body: Incoming,
        broken: Arc<AtomicBool>,
    }
}

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody").finish_non_exhaustive()
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled {
            this.broken.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
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
    fn the_client_is_appended_to_x_forwarded_for() {
        let forwarded = |earlier: Option<&str>, client: &str| {
            let mut headers = HeaderMap::new();
            if let Some(earlier) = earlier {
                headers.insert(X_FORWARDED_FOR, HeaderValue::from_str(earlier).unwrap());
            }
            append_forwarded_for(&mut headers, client.parse().unwrap());
            headers[X_FORWARDED_FOR].to_str().unwrap().to_owned()
        };
        assert_eq!(forwarded(None, "127.0.0.1:4000"), "127.0.0.1");
        assert_eq!(
            forwarded(Some("203.0.113.9"), "10.0.0.7:4000"),
            "203.0.113.9, 10.0.0.7"
        );
        assert_eq!(forwarded(None, "[2001:db8::1]:4000"), "2001:db8::1");
    }
}
