//! Load-test target for `docs/benchmarks.md`: the same 1 KiB handler served
//! bare on one port and behind `CacheLayer` on another, in one process.
//!
//! ```sh
//! cargo run --release --example bench_server      # bare on :3001, cached on :3002
//! wrk -t1 -c32 -d10s http://127.0.0.1:3001/api/items
//! wrk -t1 -c32 -d10s http://127.0.0.1:3002/api/items
//! ```

use axum::routing::get;
use axum::Router;
use cachet::{Cache, CacheLayer};

async fn items() -> ([(&'static str, &'static str); 1], &'static [u8]) {
    static BODY: [u8; 1024] = [b'x'; 1024];
    ([("content-type", "application/json")], &BODY)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::from_toml(
        r#"
        [[rules]]
        path = '^/api/'
        ttl = "1h"
        "#,
    )?;
    let routes = || {
        Router::new()
            .route("/api/items", get(items))
            .route("/api/other", get(items))
    };
    let bare = routes();
    let cached = routes().layer(CacheLayer::new(cache));

    let bare_listener = tokio::net::TcpListener::bind("127.0.0.1:3001").await?;
    let cached_listener = tokio::net::TcpListener::bind("127.0.0.1:3002").await?;
    println!("bare on http://127.0.0.1:3001, cached on http://127.0.0.1:3002");
    tokio::try_join!(
        axum::serve(bare_listener, bare),
        axum::serve(cached_listener, cached)
    )?;
    Ok(())
}
