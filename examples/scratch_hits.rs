#![allow(missing_docs)]
use bytes::Bytes;
use cachet::{Cache, CacheLayer};
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use tower::{Layer, Service, ServiceExt};
const BODY: &[u8] = &[b'x'; 1024];
type Request = http::Request<Full<Bytes>>;
fn origin(
) -> impl Service<Request, Response = http::Response<Full<Bytes>>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + 'static {
    tower::service_fn(|_req: Request| async {
        let mut response = http::Response::new(Full::new(Bytes::from_static(BODY)));
        response.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        Ok::<_, Infallible>(response)
    })
}
async fn send<S, B>(service: &S, request: Request) -> usize
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let response = service.clone().oneshot(request).await.unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .map_or(20000, |n| n.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = Cache::from_toml(
        "[caches.default]\nmax_bytes = \"256MiB\"\nttl = \"1h\"\n[[rules]]\npath = '^/api/'\n",
    )
    .unwrap();
    let bare = origin();
    let cached = CacheLayer::new(cache).layer(origin());
    rt.block_on(async {
        send(
            &cached,
            http::Request::get("/api/items")
                .body(Full::default())
                .unwrap(),
        )
        .await;
        let mut total = 0;
        for _ in 0..n {
            let req = http::Request::get("/api/items")
                .body(Full::default())
                .unwrap();
            total += if mode == "bare" {
                send(&bare, req).await
            } else {
                send(&cached, req).await
            };
        }
        println!("{total}");
    });
}
