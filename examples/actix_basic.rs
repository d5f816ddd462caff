//! The demo on actix-web: the same app, rules and behaviour as
//! `axum_basic`, with cachet's actix-web middleware in front.
//!
//! ```sh
//! cargo run --example actix_basic --features actix            # listens on 127.0.0.1:3000
//! cargo run --example actix_basic --features actix -- 127.0.0.1:8080
//! ```

#[path = "shared/functions.rs"]
mod functions;
#[path = "shared/walkthrough.rs"]
mod walkthrough;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use cachet::actix::{admin, CacheInvalidation, HandlerCache, ResponseCache};
use cachet::admin::{Admin, AdminConfig};
use cachet::{Cache, Rule};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A "database" query that takes 50 ms.
async fn products() -> HttpResponse {
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    HttpResponse::Ok().json(["tea", "cake", "scones"])
}

/// Saving a product: the invalidation middleware then clears `/api/products`.
async fn save_product() -> &'static str {
    "saved\n"
}

/// A page for the user named by the `Authorization` header.
async fn me(req: HttpRequest) -> String {
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    let user = req
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("anonymous");
    format!("hello, {user}\n")
}

/// Not matched by any rule: always computed.
async fn time() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}\n", now.as_millis())
}

/// A cached function's result, or its error (never stored).
async fn rate(currency: web::Path<String>) -> HttpResponse {
    match functions::exchange_rate(currency.into_inner()).await {
        Ok(quote) => HttpResponse::Ok().json(quote),
        Err(why) => HttpResponse::NotFound().body(why),
    }
}

/// Five requests per client per 10 s.
async fn limited(req: HttpRequest, cache: web::Data<Cache>) -> HttpResponse {
    let client = req
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("anonymous");
    match functions::rate_limit(&cache.values(), client).await {
        (seen, true) => HttpResponse::Ok().body(format!("request {seen} of 5\n")),
        (_, false) => HttpResponse::TooManyRequests().body("slow down\n"),
    }
}

async fn news() -> String {
    functions::news()
}

async fn stats(cache: web::Data<Cache>) -> HttpResponse {
    HttpResponse::Ok().json(cache.stats())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    // Built once, outside `HttpServer::new`: every worker shares it.
    let cache = Cache::from_toml(include_str!("cachet.toml"))
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    // The handle #[cached] functions use (Django's `django.core.cache.cache`).
    cachet::install(cache.clone()).expect("installed once");
    // One resource's rule, written in code instead of cachet.toml.
    let news_rule = Rule::handler().cache("pages").ttl(Duration::from_secs(20));
    let news_cache = HandlerCache::new(&cache, &news_rule)
        .map_err(|error| std::io::Error::other(error.to_string()))?;

    let server = {
        let cache = cache.clone();
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(cache.clone()))
                .route("/stats", web::get().to(stats))
                // A local demo: the management API without a token; see
                // docs/operations.md.
                .service(admin::scope(Admin::new(
                    cache.clone(),
                    AdminConfig::new().no_auth(),
                )))
                // Before the /api scope, whose rules it does not need.
                .service(
                    web::resource("/api/news")
                        .wrap(news_cache.clone())
                        .route(web::get().to(news))
                        .route(web::head().to(news)),
                )
                .service(
                    web::scope("/api")
                        .wrap(ResponseCache::new(cache.clone()))
                        .wrap(CacheInvalidation::new(cache.clone()))
                        .route("/products", web::get().to(products))
                        .route("/products", web::head().to(products))
                        .route("/products", web::post().to(save_product))
                        .route("/me", web::get().to(me))
                        .route("/me", web::head().to(me))
                        .route("/time", web::get().to(time))
                        .route("/rates/{currency}", web::get().to(rate))
                        .route("/limited", web::get().to(limited)),
                )
        })
        .bind(&addr)?
    };
    let addr = server.addrs()[0];
    walkthrough::print("actix-web", addr);
    server.run().await
}
