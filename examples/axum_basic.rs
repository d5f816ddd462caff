//! The demo: an axum app with cachet in front, on the in-memory store.
//!
//! ```sh
//! cargo run --example axum_basic            # listens on 127.0.0.1:3000
//! cargo run --example axum_basic -- 127.0.0.1:8080
//! ```

#[path = "shared/functions.rs"]
mod functions;
#[path = "shared/walkthrough.rs"]
mod walkthrough;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cachet::admin::{Admin, AdminConfig, AdminService};
use cachet::stats::StatsSnapshot;
use cachet::{Cache, CacheLayer, InvalidationLayer, Rule};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A "database" query that takes 50 ms.
async fn products() -> Json<Vec<&'static str>> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Json(vec!["tea", "cake", "scones"])
}

/// Saving a product: the invalidation layer then clears `/api/products`.
async fn save_product() -> &'static str {
    "saved\n"
}

/// A page for the user named by the `Authorization` header.
async fn me(headers: HeaderMap) -> String {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let user = headers
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
async fn rate(Path(currency): Path<String>) -> Response {
    match functions::exchange_rate(currency).await {
        Ok(quote) => Json(quote).into_response(),
        Err(why) => (StatusCode::NOT_FOUND, why).into_response(),
    }
}

/// Five requests per client per 10 s.
async fn limited(State(cache): State<Cache>, headers: HeaderMap) -> (StatusCode, String) {
    let client = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("anonymous");
    match functions::rate_limit(&cache.values(), client).await {
        (seen, true) => (StatusCode::OK, format!("request {seen} of 5\n")),
        (_, false) => (StatusCode::TOO_MANY_REQUESTS, "slow down\n".into()),
    }
}

async fn news() -> String {
    functions::news()
}

async fn stats(State(cache): State<Cache>) -> Json<StatsSnapshot> {
    Json(cache.stats())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let cache = Cache::from_toml(include_str!("cachet.toml"))?;
    // The handle #[cached] functions use (Django's `django.core.cache.cache`).
    cachet::install(cache.clone()).expect("installed once");
    // One handler's rule, written in code instead of cachet.toml.
    let news_rule = Rule::handler().cache("pages").ttl(Duration::from_secs(20));

    let app = Router::new()
        .route("/api/products", get(products).post(save_product))
        .route("/api/me", get(me))
        .route("/api/time", get(time))
        .route("/api/rates/{currency}", get(rate))
        .route("/api/limited", get(limited))
        .layer(CacheLayer::new(cache.clone()))
        .layer(InvalidationLayer::new(cache.clone()))
        // Added after the layers above: only its own rule applies.
        .route(
            "/api/news",
            get(news).layer(cachet::route(&cache, &news_rule)?),
        )
        .route("/stats", get(stats))
        // A local demo: the management API without a token. Give it one
        // (`[admin] token_env`) anywhere else; see docs/operations.md.
        .nest_service(
            "/_cachet",
            AdminService::new(Admin::new(cache.clone(), AdminConfig::new().no_auth())),
        )
        .with_state(cache);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    walkthrough::print("axum", addr);
    axum::serve(listener, app).await?;
    Ok(())
}
