//! The three ways to mount the management API, each serving on a free port
//! of 127.0.0.1, and the cache they manage, filled the same way.

use cachet::adapter::{self, Route};
use cachet::admin::{Admin, AdminConfig, AdminService};
use cachet::{Cache, CacheBuilder};
use std::net::SocketAddr;

/// The rules every mount's cache has: two named caches.
pub(crate) const RULES: &str = r#"
[caches.pages]
max_bytes = "8MiB"

[[rules]]
path = '^/api/'
ttl = "1m"

[[rules]]
path = '^/pages/'
cache = "pages"
ttl = "1m"
"#;

/// The token the tests' configurations use.
pub(crate) const TOKEN: &str = "s3cret-admin-token";

/// Where a mounted API answers: its address and path prefix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mount {
    pub(crate) addr: SocketAddr,
    pub(crate) prefix: &'static str,
}

/// The management API configured by `config` of a cache with [`RULES`].
pub(crate) fn admin(config: AdminConfig) -> Admin {
    let cache = CacheBuilder::from_toml(RULES).unwrap().build().unwrap();
    Admin::new(cache, config)
}

/// Stores `/api/items` (tagged `items`), `/api/users` and `/pages/home`,
/// through the same step API the adapters use.
pub(crate) async fn fill(cache: &Cache) {
    for (path, tag) in [
        ("/api/items", "items"),
        ("/api/users", "users"),
        ("/pages/home", "home"),
    ] {
        let req = http::Request::get(path)
            .header("host", "example.test")
            .body(())
            .unwrap();
        let Route::Cache(plan) = adapter::route(cache, &req) else {
            panic!("{path} is cached")
        };
        let origin = move |_req: http::Request<()>| async move {
            let body = http_body_util::Full::new(bytes::Bytes::from(format!("{path} body")));
            let mut response = http::Response::new(body);
            response
                .headers_mut()
                .insert("cache-tag", http::HeaderValue::from_static(tag));
            Ok::<_, std::convert::Infallible>(response)
        };
        adapter::serve(cache.clone(), plan.into(), origin, req)
            .await
            .unwrap();
    }
}

/// `AdminService` nested at `/_cachet` in an axum router.
pub(crate) async fn tower(admin: Admin) -> Mount {
    let app = axum::Router::new().nest_service("/_cachet", AdminService::new(admin));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Mount {
        addr,
        prefix: "/_cachet",
    }
}

/// `cachet_actix::admin::scope` in an actix-web server on its own thread.
pub(crate) fn actix(admin: Admin) -> Mount {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            actix_web::HttpServer::new(move || {
                actix_web::App::new().service(cachet_actix::admin::scope(admin.clone()))
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        });
    });
    Mount {
        addr,
        prefix: "/_cachet",
    }
}

/// `cachet-proxy`'s admin listener, configured by `[admin]` in the proxy's
/// own configuration; returns its cache too.
pub(crate) async fn proxy(admin_section: &str) -> (Mount, Cache) {
    let text = format!("{RULES}\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin_section}\n");
    let overrides = cachet_proxy::Overrides {
        listen: Some("127.0.0.1:0".into()),
        upstream: Some("http://127.0.0.1:9".into()),
        clock: None,
    };
    let config = cachet_proxy::ProxyConfig::from_toml(&text, &overrides).unwrap();
    let address = config.admin_listen.expect("[admin] listen is read");
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cache = config.cache.clone();
    tokio::spawn(cachet_proxy::serve_admin(
        &config,
        listener,
        std::future::pending(),
    ));
    (Mount { addr, prefix: "" }, cache)
}

/// Sets the variable the proxy's `[admin] token_env` names, once per test
/// binary (every test that reads it wants the same value).
pub(crate) fn token_variable() -> &'static str {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| std::env::set_var("CACHET_ADMIN_TEST_TOKEN", TOKEN));
    "CACHET_ADMIN_TEST_TOKEN"
}
