//! [`AdminService`]: the management API as a Tower service, to mount with
//! axum's `Router::nest_service`.

use bytes::Bytes;
use cachet_admin::{Admin, MAX_BODY_BYTES};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_service::Service;

/// The management API of a cache (stats, health, metrics, keys, purges,
/// dumps, the dashboard) as a Tower service. It sees paths relative to its
/// mount point, which `Router::nest_service` gives it.
///
/// ```
/// use axum::Router;
/// use cachet_admin::{Admin, AdminConfig};
/// use cachet_core::Cache;
/// use cachet_tower::AdminService;
///
/// let cache = Cache::builder().build().unwrap();
/// let admin = Admin::new(cache, AdminConfig::new().token("s3cret"));
/// let app: Router = Router::new().nest_service("/_cachet", AdminService::new(admin));
/// ```
#[derive(Debug, Clone)]
pub struct AdminService {
    admin: Admin,
}

impl AdminService {
    /// The API `admin` as a service.
    pub fn new(admin: Admin) -> Self {
        Self { admin }
    }
}

impl<B> Service<Request<B>> for AdminService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let admin = self.admin.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let response = match Limited::new(body, MAX_BODY_BYTES).collect().await {
                Ok(collected) => {
                    let req = Request::from_parts(parts, collected.to_bytes());
                    admin.handle(req).await
                }
                Err(_) => {
                    let mut response = Response::new(Bytes::from_static(
                        b"{\"error\":\"the body is too large or could not be read\"}",
                    ));
                    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                    response
                }
            };
            Ok(response.map(Full::new))
        })
    }
}
