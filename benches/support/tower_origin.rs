//! The 1 KiB handler and the request driver that `benches/hit_path.rs` and
//! `examples/hit_instructions.rs` both measure, so the criterion times and
//! the instruction counts describe the same exchange. Included with
//! `#[path]`: benches and examples share no library of their own.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use tower::{Service, ServiceExt};

const BODY: &[u8] = &[b'x'; 1024];

pub(crate) type Request = http::Request<Full<Bytes>>;

/// The inner service: 1 KiB of JSON for any request.
pub(crate) fn origin(
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

/// A GET of `uri` without headers.
pub(crate) fn request(uri: &str) -> Request {
    http::Request::get(uri).body(Full::default()).unwrap()
}

/// Sends `request` through `service` and reads the whole body; its length.
pub(crate) async fn send<S, B>(service: &S, request: Request) -> usize
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
