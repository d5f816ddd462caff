//! Load-test target for `docs/benchmarks.md`: the same 1 KiB actix-web
//! handler served bare on one port and behind `ResponseCache` on another,
//! in one process, one worker each.
//!
//! ```sh
//! cargo run --release --example actix_bench_server   # bare on :3001, cached on :3002
//! wrk -t1 -c32 -d10s http://127.0.0.1:3001/api/items
//! wrk -t1 -c32 -d10s http://127.0.0.1:3002/api/items
//! ```

use actix_web::{web, App, HttpResponse, HttpServer};
use cachet::actix::ResponseCache;
use cachet::Cache;

async fn items() -> HttpResponse {
    static BODY: [u8; 1024] = [b'x'; 1024];
    HttpResponse::Ok()
        .content_type("application/json")
        .body(&BODY[..])
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let cache = Cache::from_toml(
        r#"
        [[rules]]
        path = '^/api/'
        ttl = "1h"
        "#,
    )
    .map_err(|error| std::io::Error::other(error.to_string()))?;
    let bare = HttpServer::new(|| {
        App::new()
            .route("/api/items", web::get().to(items))
            .route("/api/other", web::get().to(items))
    })
    .workers(1)
    .bind("127.0.0.1:3001")?
    .run();
    let cached = HttpServer::new(move || {
        App::new()
            .wrap(ResponseCache::new(cache.clone()))
            .route("/api/items", web::get().to(items))
            .route("/api/other", web::get().to(items))
    })
    .workers(1)
    .bind("127.0.0.1:3002")?
    .run();
    println!("bare on http://127.0.0.1:3001, cached on http://127.0.0.1:3002");
    futures_util::future::try_join(bare, cached).await?;
    Ok(())
}
