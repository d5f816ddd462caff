//! The same origin and the same cache behind axum (Tower layers) and
//! behind actix-web (middleware), each driven in process.

use crate::origin::{Origin, OriginBody, OriginReply, OriginRequest};
use crate::table::{Reply, Req};
use cachet::clock::MockClock;
use cachet::Cache;

/// A cache built from `rules` on a mock clock, with a fixed identity key.
pub fn cache(rules: &str) -> (Cache, MockClock) {
    let clock = MockClock::new();
    let cache = cachet::CacheBuilder::from_toml(rules)
        .unwrap_or_else(|error| panic!("scenario rules: {error}"))
        .identity(cachet::Identity::default().secret("conformance"))
        .clock(clock.clone())
        .build()
        .unwrap();
    (cache, clock)
}

/// Where a handler's rule sits in a router instead of matching paths: a
/// configured rule's regex as a route (`^/api/me$` is `/api/me`, `^/api/`
/// everything under `/api/`), and the rule itself.
pub struct Mount {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub rule: cachet::Rule,
}

/// The rules of `cache` as handler routes, in order (first match wins, as
/// routers give exact routes precedence here).
pub fn mounts(cache: &Cache) -> Vec<Mount> {
    cache
        .rules()
        .map(|rule| {
            let path = rule
                .path()
                .strip_prefix('^')
                .expect("anchored scenario rules");
            let (exact, prefix) = match path.strip_suffix('$') {
                Some(exact) => (Some(exact.to_owned()), None),
                None => (None, Some(path.trim_end_matches('/').to_owned())),
            };
            Mount {
                exact,
                prefix,
                rule: rule.clone(),
            }
        })
        .collect()
}

/// An app under test: the origin, wrapped in the cache and invalidation.
pub trait App {
    async fn send(&self, req: &Req) -> Reply;
}

pub mod tower {
    use super::*;
    use ::tower::{Layer, ServiceExt};
    use axum::body::Body;
    use cachet::{CacheLayer, InvalidationLayer};
    use http_body::Body as _;
    use http_body_util::BodyExt;

    pub struct TowerApp {
        router: axum::Router,
    }

    impl TowerApp {
        pub fn new(cache: &Cache, origin: Origin) -> Self {
            let handler = move |req: http::Request<Body>| {
                let origin = origin.clone();
                async move { into_response(origin.answer(origin_request(&req)).await) }
            };
            let router = axum::Router::new().fallback(handler);
            let service = InvalidationLayer::new(cache.clone())
                .layer(CacheLayer::new(cache.clone()).layer(router));
            Self {
                router: axum::Router::new().fallback_service(service),
            }
        }
    }

    fn origin_request(req: &http::Request<Body>) -> OriginRequest {
        let headers = req.headers().iter();
        OriginRequest::new(
            req.method().as_str(),
            req.uri().path(),
            headers.map(|(n, v)| (n.as_str(), v.as_bytes())),
        )
    }

    fn into_response(reply: OriginReply) -> http::Response<Body> {
        let body = match reply.body {
            OriginBody::Full(bytes) => Body::from(bytes),
            OriginBody::Stream(chunks) => Body::from_stream(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, std::io::Error>),
            )),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
        for (name, value) in reply.headers {
            response.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(&value).unwrap(),
            );
        }
        response
    }

    impl TowerApp {
        /// The origin behind one `HandlerLayer` per rule, each on its
        /// route; other paths reach the origin uncached.
        pub fn per_handler(cache: &Cache, origin: Origin) -> Self {
            let handler = move |req: http::Request<Body>| {
                let origin = origin.clone();
                async move { into_response(origin.answer(origin_request(&req)).await) }
            };
            let mut router = axum::Router::new();
            for mount in mounts(cache) {
                let layer = cachet::route(cache, &mount.rule).unwrap();
                let route = axum::routing::any(handler.clone()).layer(layer);
                router = match (mount.exact, mount.prefix) {
                    (Some(exact), _) => router.route(&exact, route),
                    (None, Some(prefix)) => router.route(&format!("{prefix}/{{*rest}}"), route),
                    (None, None) => unreachable!(),
                };
            }
            Self {
                router: router.fallback(handler),
            }
        }
    }

    impl App for TowerApp {
        async fn send(&self, req: &Req) -> Reply {
            let mut request = http::Request::builder().method(req.method).uri(&req.uri);
            for (name, value) in &req.headers {
                request = request.header(*name, value.as_slice());
            }
            let request = request.body(Body::empty()).unwrap();
            let response = self.router.clone().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let length = body.size_hint().exact();
            let body = body.collect().await.unwrap().to_bytes();
            Reply::new(
                parts.status.as_u16(),
                parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
                length,
                req.method,
                body,
            )
        }
    }
}

pub mod actix {
    use super::*;
    use actix_web::body::{BodySize, MessageBody};
    use actix_web::dev::{Service, ServiceResponse};
    use actix_web::{test, web, App as ActixWebApp, HttpRequest, HttpResponse};
    use cachet_actix::{CacheInvalidation, ResponseCache};

    pub struct ActixApp<S> {
        service: S,
    }

    pub async fn app(
        cache: &Cache,
        origin: Origin,
    ) -> ActixApp<
        impl Service<
            actix_http::Request,
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
        >,
    > {
        let service = test::init_service(
            ActixWebApp::new()
                .app_data(web::Data::new(origin))
                .wrap(ResponseCache::new(cache.clone()))
                .wrap(CacheInvalidation::new(cache.clone()))
                .default_service(web::to(handler)),
        )
        .await;
        ActixApp { service }
    }

    /// The origin behind one `HandlerCache` per rule, each on its
    /// resource; other paths reach the origin uncached.
    pub async fn per_handler(
        cache: &Cache,
        origin: Origin,
    ) -> ActixApp<
        impl Service<
            actix_http::Request,
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
        >,
    > {
        let mut app = ActixWebApp::new().app_data(web::Data::new(origin));
        for mount in mounts(cache) {
            let path = match (mount.exact, mount.prefix) {
                (Some(exact), _) => exact,
                (None, Some(prefix)) => format!("{prefix}/{{rest:.*}}"),
                (None, None) => unreachable!(),
            };
            let cached = cachet_actix::HandlerCache::new(cache, &mount.rule).unwrap();
            app = app.service(
                web::resource(path)
                    .wrap(cached)
                    .route(web::route().to(handler)),
            );
        }
        let service = test::init_service(app.default_service(web::to(handler))).await;
        ActixApp { service }
    }

    async fn handler(req: HttpRequest, origin: web::Data<Origin>) -> HttpResponse {
        let headers = req.headers().iter();
        let request = OriginRequest::new(
            req.method().as_str(),
            req.path(),
            headers.map(|(n, v)| (n.as_str(), v.as_bytes())),
        );
        let reply = origin.answer(request).await;
        let mut response =
            HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
        for (name, value) in reply.headers {
            response.append_header((name, value));
        }
        match reply.body {
            OriginBody::Full(bytes) => response.body(bytes),
            OriginBody::Stream(chunks) => response.streaming(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, actix_web::Error>),
            )),
        }
    }

    impl<S, B> App for ActixApp<S>
    where
        S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
        B: MessageBody,
    {
        async fn send(&self, req: &Req) -> Reply {
            let mut request = test::TestRequest::default()
                .method(actix_web::http::Method::from_bytes(req.method.as_bytes()).unwrap())
                .uri(&req.uri);
            for (name, value) in &req.headers {
                request = request.append_header((
                    *name,
                    actix_web::http::header::HeaderValue::from_bytes(value).unwrap(),
                ));
            }
            // The app turns handler errors into responses; an `Err` here
            // would be the middleware's own failure.
            let response = test::call_service(&self.service, request.to_request()).await;
            let status = response.status().as_u16();
            let headers: Vec<_> = response
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            // What actix-web writes as `Content-Length`.
            let length = match response.response().body().size() {
                BodySize::None => None,
                BodySize::Sized(n) => Some(n),
                BodySize::Stream => None,
            };
            let body = test::read_body(response).await;
            Reply::new(
                status,
                headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())),
                length,
                req.method,
                body,
            )
        }
    }
}
