//! What the shared-tier tests (Redis, Memcached) do alike: an origin that
//! counts its calls, a client that sends through a proxy as behind a load
//! balancer, `/health`, and waiting for what travels between processes.

use super::Running;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// An origin whose bodies count its calls; `GET` is cacheable for an hour.
pub async fn origin(calls: Arc<AtomicUsize>) -> SocketAddr {
    let count = move || {
        let calls = Arc::clone(&calls);
        async move {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            ([("cache-control", "max-age=3600")], format!("call #{n}"))
        }
    };
    let app = axum::Router::new().route("/page", get(count.clone()).post(count));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Status, `Cache-Status` and body.
pub async fn send(client: &HttpClient, method: &str, url: String) -> (u16, String, String) {
    // One site behind both proxies, as behind a load balancer: keys hold
    // the host, so both must see the same one.
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("host", "shop.example")
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let cache_status = response
        .headers()
        .get("cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        cache_status,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

pub async fn health(client: &HttpClient, proxy: &Running) -> String {
    let request = http::Request::get(format!("http://{}/health", proxy.admin))
        .body(Empty::new())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

/// Waits (messages between processes: a few seconds at most) until
/// `check` holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 5 s");
}
