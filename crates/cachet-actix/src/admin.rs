//! The management API on actix-web: [`scope`] mounts it as a `Scope`.

use crate::convert::{headers_from_actix, headers_to_actix, status_to_actix};
use actix_web::{web, HttpRequest, HttpResponse, Scope};
use cachet_admin::{Admin, DEFAULT_PATH, MAX_BODY_BYTES};

/// The management API `admin` (stats, health, metrics, keys, purges,
/// dumps, the dashboard) as a `Scope` at `/_cachet`; see `cachet_admin`
/// for the endpoints.
///
/// ```
/// use actix_web::App;
/// use cachet_actix::admin;
/// use cachet_admin::{Admin, AdminConfig};
/// use cachet_core::Cache;
///
/// let cache = Cache::builder().build().unwrap();
/// let app = App::new().service(admin::scope(Admin::new(cache, AdminConfig::new().token("s3cret"))));
/// ```
pub fn scope(admin: Admin) -> Scope {
    scope_at(DEFAULT_PATH, admin)
}

/// [`scope`] at another path.
pub fn scope_at(path: &str, admin: Admin) -> Scope {
    let prefix = path.trim_end_matches('/').to_owned();
    web::scope(&prefix)
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (admin, prefix) = (admin.clone(), prefix.clone());
            async move { handle(&admin, &prefix, &req, body).await }
        }))
}

async fn handle(admin: &Admin, prefix: &str, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
    let relative = req.path().strip_prefix(prefix).unwrap_or(req.path());
    let target = match req.query_string() {
        "" => relative.to_owned(),
        query => format!("{relative}?{query}"),
    };
    let mut request = http::Request::new(body);
    let converted = http::Method::from_bytes(req.method().as_str().as_bytes())
        .ok()
        .zip(http::Uri::try_from(target).ok());
    let Some((method, uri)) = converted else {
        return HttpResponse::BadRequest().finish();
    };
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers_from_actix(req.headers());
    let response = admin.handle(request).await;
    let mut answer = HttpResponse::with_body(status_to_actix(response.status()), ());
    *answer.headers_mut() = headers_to_actix(response.headers());
    answer.set_body(response.into_body()).map_into_boxed_body()
}
