//! Load-test target for `docs/benchmarks.md` (`benches/load.sh`): the same
//! 1 KiB handler served bare, behind `CacheLayer`, and behind
//! `axum-response-cache` as a reference, in one process.
//!
//! ```sh
//! cargo run --release --example bench_server   # bare :3001, cachet :3002, axum-response-cache :3003
//! wrk -t1 -c32 -d10s http://127.0.0.1:3001/api/items
//! wrk -t1 -c32 -d10s http://127.0.0.1:3002/api/items
//! ```
//!
//! On :3002, `/api/items` is cached (shared), `/api/me` is cached per user
//! (the `Authorization` header's identity, hashed), and `/api/other`
//! matches no rule (passes through the layer). A query string makes a new
//! URL, for miss runs.

use axum::routing::get;
use axum::Router;
use cachet::{Cache, CacheLayer};
use std::time::Duration;

async fn items() -> ([(&'static str, &'static str); 1], &'static [u8]) {
    static BODY: [u8; 1024] = [b'x'; 1024];
    ([("content-type", "application/json")], &BODY)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = Cache::from_toml(
        r#"
        [[rules]]
        path = '^/api/items'
        ttl = "1h"

        [[rules]]
        path = '^/api/me$'
        ttl = "1h"
        vary_by_user = true
        "#,
    )?;
    let routes = || {
        Router::new()
            .route("/api/items", get(items))
            .route("/api/me", get(items))
            .route("/api/other", get(items))
    };
    let bare = routes();
    let cached = routes().layer(CacheLayer::new(cache));
    let reference = Router::new().route(
        "/api/items",
        get(items).layer(axum_response_cache::CacheLayer::with_lifespan(
            Duration::from_secs(3600),
        )),
    );

    let listen = |port| tokio::net::TcpListener::bind(("127.0.0.1", port));
    let (bare_listener, cached_listener, reference_listener) =
        tokio::try_join!(listen(3001), listen(3002), listen(3003))?;
    println!(
        "bare on http://127.0.0.1:3001, cachet on http://127.0.0.1:3002, \
         axum-response-cache on http://127.0.0.1:3003"
    );
    tokio::try_join!(
        axum::serve(bare_listener, bare),
        axum::serve(cached_listener, cached),
        axum::serve(reference_listener, reference)
    )?;
    Ok(())
}
