//! Two instances of one axum app, on 127.0.0.1:3000 and 127.0.0.1:3001,
//! sharing a Redis you start yourself: what one caches the other serves,
//! and a write on one purges both.
//!
//! ```sh
//! redis-server --port 6379 --save "" &          # or any Redis: set REDIS_URL
//! cargo run --example two_instances --features redis
//!
//! curl -si localhost:3000/api/products | grep -i cache-status   # fwd=uri-miss; stored
//! curl -si localhost:3001/api/products | grep -i cache-status   # hit (from Redis)
//! curl -si -X POST localhost:3001/api/products                  # a write on B...
//! curl -si localhost:3000/api/products | grep -i cache-status   # ...purged A: a miss
//! redis-cli --scan --pattern 'demo:*'                           # what Redis holds
//! ```
//!
//! Stop Redis meanwhile: both keep answering (from memory and the app), and
//! `curl localhost:3000/_cachet/health` says `degraded` until it is back.

use axum::routing::get;
use axum::{Json, Router};
use cachet::admin::{AdminConfig, AdminService};
use cachet::{CacheLayer, Identity, InvalidationLayer};
use std::time::Duration;

const CONFIG: &str = r#"
[redis]
url = "redis://127.0.0.1:6379/0"
prefix = "demo:"

[[rules]]
path = '^/api/products$'
ttl = "5m"
"#;

/// A "database" query that takes 50 ms.
async fn products() -> Json<Vec<&'static str>> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Json(vec!["tea", "cake", "scones"])
}

async fn save_product() -> &'static str {
    "saved\n"
}

async fn instance(addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    // `REDIS_URL` / `CACHET_REDIS_URL` override the section's url.
    let mut config = cachet::Config::from_toml(CONFIG)?;
    // Every instance must hash users alike (a real app reads it from
    // `[identity] secret_env`).
    config.cache = config
        .cache
        .identity(Identity::default().secret("the same secret on every instance"));
    // A local demo: the management API without a token.
    config.admin = AdminConfig::new().no_auth();
    let built = config.build()?;
    let cache = built.cache;
    let app = Router::new()
        .route("/api/products", get(products).post(save_product))
        .layer(CacheLayer::new(cache.clone()))
        .layer(InvalidationLayer::new(cache.clone()))
        .nest_service("/_cachet", AdminService::new(built.admin));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("instance on http://{addr} (admin API, local only: http://{addr}/_cachet/)");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b) = tokio::join!(instance("127.0.0.1:3000"), instance("127.0.0.1:3001"));
    a.and(b)
}
