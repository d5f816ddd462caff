//! The demo: an axum app with cachet in front, on the in-memory store.
//!
//! ```sh
//! cargo run --example axum_basic            # listens on 127.0.0.1:3000
//! cargo run --example axum_basic -- 127.0.0.1:8080
//! ```

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use cachet::{Cache, CacheLayer, InvalidationLayer, StatsSnapshot};
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

async fn stats(State(cache): State<Cache>) -> Json<StatsSnapshot> {
    Json(cache.stats())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let cache = Cache::from_toml(include_str!("cachet.toml"))?;

    let app = Router::new()
        .route("/api/products", get(products).post(save_product))
        .route("/api/me", get(me))
        .route("/api/time", get(time))
        .layer(CacheLayer::new(cache.clone()))
        .layer(InvalidationLayer::new(cache.clone()))
        .route("/stats", get(stats))
        .with_state(cache);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    println!("cachet demo listening on http://{addr}\n");
    println!("A miss (50 ms at the origin), then a hit from memory:");
    println!("  curl -si http://{addr}/api/products | grep -iE 'cache-status|age|^\\['");
    println!("  curl -si http://{addr}/api/products | grep -iE 'cache-status|age|^\\['\n");
    println!("After 30 s the page is stale: served at once, refreshed in the background:");
    println!("  sleep 31; curl -si http://{addr}/api/products | grep -i cache-status\n");
    println!("A POST clears the entry; the next GET is a miss again:");
    println!("  curl -s -X POST http://{addr}/api/products");
    println!("  curl -si http://{addr}/api/products | grep -i cache-status\n");
    println!("Per-user entries: alice and bob never see each other's page:");
    println!("  curl -s -H 'Authorization: alice' http://{addr}/api/me");
    println!("  curl -s -H 'Authorization: bob' http://{addr}/api/me");
    println!(
        "  curl -sI -H 'Authorization: alice' http://{addr}/api/me   # HEAD from the GET entry\n"
    );
    println!("Uncached, always fresh:");
    println!("  curl -si http://{addr}/api/time\n");
    println!("Hit/miss statistics:");
    println!("  curl -s http://{addr}/stats\n");
    axum::serve(listener, app).await?;
    Ok(())
}
