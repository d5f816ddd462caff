//! Two instances of one axum app, on 127.0.0.1:3000 and 127.0.0.1:3001,
//! sharing a Redis — or a Memcached — you start yourself: what one caches
//! the other serves, and a write on one purges both.
//!
//! ```sh
//! redis-server --port 6379 --save "" &          # or any Redis: set REDIS_URL
//! cargo run --example two_instances --features redis,memcached
//!
//! # or on Memcached (MEMCACHED_HOST / CACHET_MEMCACHED_SERVERS to point elsewhere):
//! memcached -p 11211 -l 127.0.0.1 -u nobody &
//! cargo run --example two_instances --features redis,memcached -- memcached
//!
//! curl -si localhost:3000/api/products | grep -i cache-status   # fwd=uri-miss; stored
//! curl -si localhost:3001/api/products | grep -i cache-status   # hit (from the shared tier)
//! curl -si -X POST localhost:3001/api/products                  # a write on B...
//! curl -si localhost:3000/api/products | grep -i cache-status   # ...purged A: a miss
//! curl -s localhost:3001/_cachet/keys                           # A's keys, listed on B
//! redis-cli --scan --pattern 'demo:*'                           # what Redis holds
//! ```
//!
//! On Redis a purge reaches the other instance in a millisecond; on
//! Memcached within its `poll_interval` (100 ms). Stop the server
//! meanwhile: both keep answering (from memory and the app), and
//! `curl localhost:3000/_cachet/health` says `degraded` until it is back.

use axum::routing::get;
use axum::{Json, Router};
use cachet::admin::{AdminConfig, AdminService};
use cachet::{CacheLayer, Identity, InvalidationLayer};
use std::time::Duration;

const RULES: &str = r#"
[[rules]]
path = '^/api/products$'
ttl = "5m"
"#;

/// The shared tier's section, by the first argument (`redis`, the default,
/// or `memcached`).
fn tier() -> Result<&'static str, String> {
    match std::env::args().nth(1).as_deref() {
        None | Some("redis") => {
            Ok("[redis]\nurl = \"redis://127.0.0.1:6379/0\"\nprefix = \"demo:\"\n")
        }
        Some("memcached") => {
            Ok("[memcached]\nservers = [\"127.0.0.1:11211\"]\nprefix = \"demo:\"\n")
        }
        Some(other) => Err(format!(
            "unknown tier `{other}`: say `redis` or `memcached`"
        )),
    }
}

/// A "database" query that takes 50 ms.
async fn products() -> Json<Vec<&'static str>> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    Json(vec!["tea", "cake", "scones"])
}

async fn save_product() -> &'static str {
    "saved\n"
}

async fn instance(addr: &str, tier: &str) -> Result<(), Box<dyn std::error::Error>> {
    // `REDIS_URL` / `CACHET_REDIS_URL` override the section's url, and
    // `CACHET_MEMCACHED_SERVERS` / `MEMCACHED_HOST` the servers.
    let mut config = cachet::Config::from_toml(&format!("{tier}{RULES}"))?;
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
    let tier = tier()?;
    let (a, b) = tokio::join!(
        instance("127.0.0.1:3000", tier),
        instance("127.0.0.1:3001", tier)
    );
    a.and(b)
}
