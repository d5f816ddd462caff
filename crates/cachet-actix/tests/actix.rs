//! actix-web specifics: scopes, `web::Data<Cache>`, a `UserId` set by the
//! app's own middleware, errors from the inner service, and a real server
//! over 127.0.0.1 (background refreshes and `HEAD` on the wire).
//!
//! The shared behaviour is in the workspace's conformance table.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::error::ErrorServiceUnavailable;
use actix_web::{test, web, App, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use cachet_actix::{CacheInvalidation, ResponseCache};
use cachet_core::clock::MockClock;
use cachet_core::{Cache, CacheBuilder, UserId};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A mock clock, a cache of `rules` on it, and an origin-call counter.
fn fixture(rules: &str) -> (MockClock, Cache, Arc<AtomicUsize>) {
    let clock = MockClock::new();
    let cache = CacheBuilder::from_toml(rules)
        .unwrap()
        .clock(clock.clone())
        .build()
        .unwrap();
    (clock, cache, Arc::new(AtomicUsize::new(0)))
}

/// A handler answering `PATH #N`, `N` counting its calls.
fn counting(
    calls: &Arc<AtomicUsize>,
) -> impl Fn(HttpRequest) -> std::future::Ready<HttpResponse> + Clone {
    let calls = Arc::clone(calls);
    move |req: HttpRequest| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        let user = req
            .extensions()
            .get::<UserId>()
            .map(|u| format!(" {}", u.as_str()))
            .unwrap_or_default();
        std::future::ready(HttpResponse::Ok().body(format!("{}{user} #{n}", req.path())))
    }
}

async fn get<S, B>(app: &S, uri: &str) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, test::TestRequest::get().uri(uri).to_request()).await;
    let status = response
        .headers()
        .get("cache-status")
        .map_or("-", |v| v.to_str().unwrap())
        .to_owned();
    let body = test::read_body(response).await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[actix_web::test]
async fn caches_within_a_scope_only() {
    let (_, cache, calls) = fixture("[[rules]]\npath = '/items$'\n");
    let app = test::init_service(
        App::new()
            .service(
                web::scope("/api")
                    .wrap(ResponseCache::new(cache.clone()))
                    .route("/items", web::get().to(counting(&calls))),
            )
            .route("/items", web::get().to(counting(&calls))),
    )
    .await;
    assert_eq!(get(&app, "/api/items").await.1, "/api/items #1");
    assert!(get(&app, "/api/items").await.0.starts_with("cachet; hit"));
    // The same rule matches, but the scope's middleware does not run here.
    assert_eq!(
        get(&app, "/items").await,
        ("-".to_owned(), "/items #2".to_owned())
    );
    assert_eq!(get(&app, "/items").await.1, "/items #3");
}

#[actix_web::test]
async fn handlers_reach_the_cache_through_web_data() {
    let (_, cache, calls) = fixture("[[rules]]\npath = '^/api/'\n");
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(cache.clone()))
            .wrap(ResponseCache::new(cache.clone()))
            .route("/api/items", web::get().to(counting(&calls)))
            .route(
                "/admin/purge",
                web::post().to(|cache: web::Data<Cache>| async move {
                    let purged = cache
                        .delete_matching(&regex::Regex::new("^/api/").unwrap())
                        .await
                        .unwrap();
                    HttpResponse::Ok().body(format!(
                        "purged {purged}; {} hit(s)",
                        cache.stats().caches["default"].hits
                    ))
                }),
            ),
    )
    .await;
    get(&app, "/api/items").await;
    get(&app, "/api/items").await;
    let purge = test::call_and_read_body(
        &app,
        test::TestRequest::post().uri("/admin/purge").to_request(),
    )
    .await;
    assert_eq!(purge, "purged 1; 1 hit(s)");
    assert_eq!(get(&app, "/api/items").await.1, "/api/items #2");
}

#[actix_web::test]
async fn a_user_id_from_the_apps_middleware_keys_per_user_entries() {
    let (_, cache, calls) = fixture("[[rules]]\npath = '^/api/me$'\nvary_by_user = true\n");
    let app = test::init_service(
        App::new()
            .wrap(ResponseCache::new(cache.clone()))
            // Wrapped after the cache, so it runs first: the identity is
            // there when the cache keys the request.
            .wrap_fn(|req, service| {
                if let Some(user) = req.headers().get("x-session").and_then(|v| v.to_str().ok()) {
                    req.extensions_mut().insert(UserId::new(user));
                }
                service.call(req)
            })
            .route("/api/me", web::get().to(counting(&calls))),
    )
    .await;
    let as_user = |user: &'static str| {
        test::TestRequest::get()
            .uri("/api/me")
            .insert_header(("x-session", user))
            .to_request()
    };
    assert_eq!(
        test::call_and_read_body(&app, as_user("alice")).await,
        "/api/me alice #1"
    );
    assert_eq!(
        test::call_and_read_body(&app, as_user("bob")).await,
        "/api/me bob #2"
    );
    assert_eq!(
        test::call_and_read_body(&app, as_user("alice")).await,
        "/api/me alice #1"
    );
    assert_eq!(
        test::call_and_read_body(&app, as_user("bob")).await,
        "/api/me bob #2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[actix_web::test]
async fn an_error_from_the_inner_service_passes_through_or_carries_the_stale_entry() {
    let (clock, cache, calls) =
        fixture("[[rules]]\npath = '^/api/'\nttl = \"10s\"\nstale_if_error = \"1m\"\n");
    let app = test::init_service(
        App::new()
            // Inside the cache: fails requests that ask for it.
            .wrap_fn(|req, service| {
                let fail = req.headers().contains_key("x-fail");
                let call = service.call(req);
                async move {
                    if fail {
                        return Err(ErrorServiceUnavailable("the database is down"));
                    }
                    call.await
                }
            })
            .wrap(ResponseCache::new(cache.clone()))
            .route("/api/items", web::get().to(counting(&calls))),
    )
    .await;
    let failing = || {
        test::TestRequest::get()
            .uri("/api/items")
            .insert_header(("x-fail", "1"))
            .to_request()
    };
    // Nothing stored: the inner service's own error.
    let error = test::try_call_service(&app, failing()).await.unwrap_err();
    assert_eq!(error.to_string(), "the database is down");
    assert_eq!(error.error_response().status(), 503);

    assert_eq!(get(&app, "/api/items").await.1, "/api/items #1");
    clock.advance(Duration::from_secs(15));
    // Stale within stale-if-error: the error carries the stale response.
    let error = test::try_call_service(&app, failing()).await.unwrap_err();
    let response = error.error_response();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("cache-status").unwrap(),
        "cachet; fwd=stale; ttl=-5; detail=stale-if-error"
    );
    assert_eq!(
        actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap(),
        "/api/items #1"
    );
}

#[actix_web::test]
async fn a_refresh_waits_until_the_stale_response_is_let_go() {
    let (clock, cache, calls) =
        fixture("[[rules]]\npath = '^/api/'\nttl = \"10s\"\nstale_while_revalidate = \"1m\"\n");
    let app = test::init_service(
        App::new()
            .wrap(ResponseCache::new(cache.clone()))
            // Outside the cache: holds each response (and so a handle on
            // its request) across a few turns of the executor.
            .wrap_fn(|req, service| {
                let call = service.call(req);
                async move {
                    let response = call.await?;
                    for _ in 0..3 {
                        actix_web::rt::task::yield_now().await;
                    }
                    Ok(response)
                }
            })
            .route("/api/news", web::get().to(counting(&calls))),
    )
    .await;
    assert_eq!(get(&app, "/api/news").await.1, "/api/news #1");
    clock.advance(Duration::from_secs(15));
    let (status, body) = get(&app, "/api/news").await;
    assert_eq!(body, "/api/news #1");
    assert!(status.contains("stale-while-revalidate"), "{status}");
    for _ in 0..10 {
        actix_web::rt::task::yield_now().await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "refreshed once the response was read"
    );
    assert_eq!(get(&app, "/api/news").await.1, "/api/news #2");
}

/// One HTTP/1.1 exchange over a fresh connection: the status line and
/// headers (lower-cased names), and the body.
async fn wire(addr: std::net::SocketAddr, method: &str, path: &str) -> (Vec<String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let head = head.lines().map(|line| match line.split_once(": ") {
        Some((name, value)) => format!("{}: {value}", name.to_ascii_lowercase()),
        None => line.to_owned(),
    });
    (head.collect(), body.to_owned())
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    head.iter()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
}

#[actix_web::test]
async fn a_real_server_refreshes_in_the_background_and_answers_head_from_get() {
    let (clock, cache, calls) = fixture("[[rules]]\npath = '^/api/'\nttl = \"10s\"\nstale_while_revalidate = \"1m\"\nvary_by_method = false\n");
    let (called, mut origin_calls) = tokio::sync::mpsc::unbounded_channel();
    let server = {
        let (cache, calls) = (cache.clone(), Arc::clone(&calls));
        HttpServer::new(move || {
            let (calls, called) = (Arc::clone(&calls), called.clone());
            App::new()
                .wrap(ResponseCache::new(cache.clone()))
                .wrap(CacheInvalidation::new(cache.clone()))
                .default_service(web::to(move |req: HttpRequest| {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    called.send(n).unwrap();
                    std::future::ready(HttpResponse::Ok().body(format!(
                        "{} {} #{n}",
                        req.method(),
                        req.path()
                    )))
                }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap()
    };
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let (head, body) = wire(addr, "GET", "/api/news").await;
    assert_eq!(
        (head[0].as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "GET /api/news #1")
    );
    assert_eq!(origin_calls.recv().await, Some(1));

    // HEAD from the GET entry: no body, the GET body's length.
    let (head, body) = wire(addr, "HEAD", "/api/news").await;
    assert_eq!(header(&head, "content-length"), Some("16"));
    assert!(header(&head, "cache-status")
        .unwrap()
        .starts_with("cachet; hit"));
    assert_eq!(body, "");

    // Stale: answered at once from the entry, refreshed once the answer is
    // sent, through actix-web's own dispatcher.
    clock.advance(Duration::from_secs(15));
    let (head, body) = wire(addr, "GET", "/api/news").await;
    assert_eq!(body, "GET /api/news #1");
    assert_eq!(header(&head, "content-length"), Some("16"));
    assert_eq!(
        head.iter()
            .filter(|line| line.starts_with("content-length"))
            .count(),
        1
    );
    assert_eq!(
        header(&head, "cache-status"),
        Some("cachet; hit; fwd=stale; ttl=-5; detail=stale-while-revalidate")
    );
    let refreshed = tokio::time::timeout(Duration::from_secs(10), origin_calls.recv()).await;
    assert_eq!(
        refreshed.unwrap(),
        Some(2),
        "the refresh reached the origin"
    );
    // The refresh stores before the fetch lands; read until it is there.
    let mut body = String::new();
    for _ in 0..100 {
        body = wire(addr, "GET", "/api/news").await.1;
        if body != "GET /api/news #1" {
            break;
        }
        actix_web::rt::task::yield_now().await;
    }
    assert_eq!(body, "GET /api/news #2");

    let (_, body) = wire(addr, "DELETE", "/api/news").await;
    assert_eq!(body, "DELETE /api/news #3");
    assert_eq!(wire(addr, "GET", "/api/news").await.1, "GET /api/news #4");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    handle.stop(true).await;
}

#[actix_web::test]
async fn a_normalized_query_is_handed_over_and_odd_paths_bypass() {
    let (_clock, cache, _calls) = fixture("[[rules]]\npath = '^/api/'\nnormalize_query = true\n");
    let app = test::init_service(App::new().wrap(ResponseCache::new(cache)).service(
        web::scope("/api").route(
            "/items",
            web::get().to(
                |req: HttpRequest, query: web::Query<Vec<(String, String)>>| async move {
                    let seen: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    HttpResponse::Ok().body(format!(
                        "{}?{} {}",
                        req.path(),
                        req.query_string(),
                        seen.join(",")
                    ))
                },
            ),
        ),
    ))
    .await;
    let (status, body) = get(&app, "/api/items?b=2&a=1&&").await;
    assert!(status.contains("stored"), "{status}");
    assert_eq!(body, "/api/items?a=1&b=2 a=1,b=2");
    assert!(get(&app, "/api/items?a=1&b=%32").await.0.contains("hit"));
    // actix-web routes on the path as sent: a non-canonical one bypasses.
    let (status, _) = get(&app, "/api/./items?a=1&b=2").await;
    assert!(status.contains("fwd=bypass"), "{status}");
}

/// Every header of a response, as `name: value` lines in order of name.
fn header_lines(headers: &actix_web::http::header::HeaderMap) -> Vec<String> {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
        .collect();
    lines.sort();
    lines
}

#[actix_web::test]
async fn hits_after_the_first_answer_from_the_converted_headers_alike() {
    // The first hit converts the entry's headers to actix-web's types, the
    // next ones clone them and add only what each hit sets: they must
    // answer exactly as the first did, the stored headers and a stored
    // `X-Cache` (the origin's: cachet writes none here) included. The
    // status values are remembered per thread once converted: a later hit
    // with another `Age` must not get the remembered one.
    let (clock, cache, _) = fixture("[[rules]]\npath = '^/'\nttl = 600\n");
    let app = test::init_service(App::new().wrap(ResponseCache::new(cache.clone())).route(
        "/page",
        web::get().to(|| async {
            HttpResponse::Ok()
                .insert_header(("x-cache", "origin"))
                .insert_header(("x-custom", "a"))
                .append_header(("x-custom", "b"))
                .body("page")
        }),
    ))
    .await;
    let request = || test::TestRequest::get().uri("/page").to_request();
    let miss = test::call_service(&app, request()).await;
    assert!(header_lines(miss.headers()).contains(&"x-cache: origin".to_owned()));
    let mut hits = Vec::new();
    for _ in 0..3 {
        let hit = test::call_service(&app, request()).await;
        hits.push(header_lines(hit.headers()));
        assert_eq!(test::read_body(hit).await, "page");
    }
    assert_eq!(hits[0], hits[1]);
    assert_eq!(hits[1], hits[2]);
    for line in [
        "age: 0",
        "cache-status: cachet; hit; ttl=600",
        "x-cache: origin",
        "x-custom: a",
        "x-custom: b",
    ] {
        assert!(
            hits[0].contains(&line.to_owned()),
            "{line} in {:?}",
            hits[0]
        );
    }
    clock.advance(Duration::from_secs(5));
    let later = test::call_service(&app, request()).await;
    let lines = header_lines(later.headers());
    assert!(lines.contains(&"age: 5".to_owned()), "{lines:?}");
    assert!(lines.contains(&"cache-status: cachet; hit; ttl=595".to_owned()));
    assert_eq!(
        lines.iter().filter(|line| line.starts_with("age:")).count(),
        1
    );
}

#[actix_web::test]
async fn head_hits_announce_the_stored_length_from_the_prepared_headers_too() {
    // A GET stores the entry; HEADs are answered from it, the first
    // converting its headers and the later ones from the converted form:
    // each announces the GET body's length and sends no body. actix-web
    // writes a sized body's length as `Content-Length` (the real server's
    // test above reads it off the wire), so the map holds none.
    let (_clock, cache, _) = fixture("[[rules]]\npath = '^/'\nttl = 600\n");
    let app = test::init_service(App::new().wrap(ResponseCache::new(cache.clone())).route(
        "/page",
        web::get().to(|| async { HttpResponse::Ok().body("page") }),
    ))
    .await;
    let get = test::TestRequest::get().uri("/page").to_request();
    assert_eq!(
        test::read_body(test::call_service(&app, get).await).await,
        "page"
    );
    for _ in 0..3 {
        let head = test::TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/page")
            .to_request();
        let hit = test::call_service(&app, head).await;
        let lines = header_lines(hit.headers());
        assert!(
            !lines.iter().any(|line| line.starts_with("content-length")),
            "{lines:?}"
        );
        assert!(lines
            .iter()
            .any(|line| line.starts_with("cache-status: cachet; hit")));
        let body = hit.into_body();
        assert_eq!(body.size(), actix_web::body::BodySize::Sized(4));
        assert!(actix_web::body::to_bytes(body).await.unwrap().is_empty());
    }
}
