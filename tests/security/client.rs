//! The two fronts under attack, and a client that sends requests exactly as
//! written: raw targets, any header, a body on a GET.

use crate::origin::Origin;
use bytes::Bytes;
use cachet::{Cache, CacheLayer, InvalidationLayer};
use cachet_proxy::{Overrides, Proxy, ProxyConfig};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// The rules both fronts run: one per-user rule keyed by the `sessionid`
/// cookie, then shared ones.
pub(crate) const RULES: &str = r#"
[identity]
extension = false
headers = []
cookies = ["sessionid"]

[[rules]]
path = '^/api/me$'
vary_by_user = true
ttl = "1m"

[[rules]]
path = '^/api/'
ttl = "1m"

[[rules]]
path = '^/static/'
ttl = "1m"
"#;

/// What sits between the clients and the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    /// `cachet-proxy`, configured by `RULES` and `[proxy]` settings.
    Proxy,
    /// An axum server whose whole app is wrapped in the Tower layers.
    Tower,
}

pub(crate) const FRONTS: [Front; 2] = [Front::Proxy, Front::Tower];

/// A front started in front of a fresh origin.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) origin: Origin,
}

impl Front {
    /// Starts the front with `RULES` and `extra` TOML (a `[proxy]` section
    /// for the proxy, `[security]` for either).
    pub(crate) async fn start(self, extra: &str) -> Running {
        let origin = Origin::default();
        let config = format!("{RULES}\n{extra}");
        let addr = match self {
            Self::Proxy => {
                let upstream = origin.start().await;
                start_proxy(&config, upstream).await
            }
            Self::Tower => {
                let cache = Cache::from_toml(&config).unwrap();
                let app = tower::ServiceBuilder::new()
                    .layer(InvalidationLayer::new(cache.clone()))
                    .layer(CacheLayer::new(cache).rewrite_paths(true))
                    .service(origin.router());
                // The fallback takes every request as it is: routing is the
                // origin's, inside the layers.
                let app = axum::Router::new().fallback_service(app);
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                addr
            }
        };
        Running { addr, origin }
    }
}

/// Starts `cachet-proxy` on a free port in front of `upstream`.
pub(crate) async fn start_proxy(config: &str, upstream: SocketAddr) -> SocketAddr {
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some(format!("http://{upstream}")),
        clock: None,
    };
    let config = ProxyConfig::from_toml(config, &overrides).unwrap();
    let listener = TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let proxy = Proxy::new(&config);
    tokio::spawn(proxy.serve(listener, std::future::pending()));
    addr
}

/// A response as the client got it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn cache_status(&self) -> &str {
        self.headers
            .get("cache-status")
            .map_or("-", |value| value.to_str().unwrap())
    }
}

/// Sends `GET target` (a raw request target) with `headers` and `body` on
/// a new connection.
pub(crate) async fn get(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    send(addr, "GET", target, headers, body).await
}

/// Sends one request on a new HTTP/1.1 connection, exactly as given (plus
/// `Host` when `headers` has none).
pub(crate) async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut req = Request::builder().method(method).uri(target);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        req = req.header("host", addr.to_string());
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("answered in time")
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
