//! An origin that behaves as Django, Rails, Express and Go applications
//! do, which is what makes caches in front of them exploitable: it
//! percent-decodes the whole path (`%2F` included) and resolves dot
//! segments before routing, honours `X-HTTP-Method-Override`, merges a GET
//! body into its parameters, trims cookie names, answers 414 to long
//! targets, and reflects `X-Forwarded-Host` and `Accept-Language`. Its
//! errors say `public, max-age=3600`, so only the cache's own policy keeps
//! them from being shared.

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// The origin's handle: how many requests it answered.
#[derive(Clone, Default)]
pub(crate) struct Origin {
    calls: Arc<AtomicUsize>,
}

impl Origin {
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The origin as an axum router (every path goes to one handler that
    /// routes the way the frameworks do).
    pub(crate) fn router(&self) -> axum::Router {
        let origin = self.clone();
        axum::Router::new().fallback(move |req: Request<Body>| {
            let origin = origin.clone();
            async move { origin.answer(req).await }
        })
    }

    /// Serves it on a free port of 127.0.0.1.
    pub(crate) async fn start(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = self.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    async fn answer(&self, req: Request<Body>) -> Response<Body> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (parts, body) = req.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        if target.len() > 4096 {
            return reply(StatusCode::URI_TOO_LONG, "target too long", &[ERROR_CC]);
        }
        let path = resolve_path(parts.uri.path());
        let method = parts
            .headers
            .get("x-http-method-override")
            .and_then(|m| m.to_str().ok())
            .unwrap_or(parts.method.as_str())
            .to_ascii_uppercase();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut params: Vec<(String, String)> = form(parts.uri.query().unwrap_or(""));
        params.extend(form(&String::from_utf8_lossy(&body)));
        let param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let user = session(&parts.headers).unwrap_or_else(|| "anonymous".to_owned());
        match (method.as_str(), path.as_str()) {
            ("GET", "/api/me") => reply(StatusCode::OK, &format!("profile of {user}"), &[]),
            ("GET", "/api/feed") => reply(StatusCode::OK, &format!("feed for {user}"), &[]),
            ("POST", "/api/feed") => reply(StatusCode::NO_CONTENT, "", &[]),
            ("GET", "/api/search") => {
                let q = param("q").unwrap_or_default();
                reply(StatusCode::OK, &format!("results for {q}"), &[])
            }
            ("GET", "/api/page") => {
                let lang = header(&parts.headers, "accept-language").unwrap_or("en");
                let host = header(&parts.headers, "x-forwarded-host")
                    .or_else(|| header(&parts.headers, "host"))
                    .unwrap_or("-");
                let body = format!("lang={lang} link=http://{host}/next");
                reply(StatusCode::OK, &body, &[("vary", "Accept-Language")])
            }
            ("GET", item) if item.starts_with("/api/items/") => {
                reply(StatusCode::OK, &format!("item {}", &item[11..]), &[])
            }
            (_, item) if item.starts_with("/api/items/") => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                &[ERROR_CC],
            ),
            ("GET", file) if file.starts_with("/static/") => {
                reply(StatusCode::OK, &format!("static {file}"), &[])
            }
            _ => reply(StatusCode::NOT_FOUND, "not found", &[]),
        }
    }
}

const ERROR_CC: (&str, &str) = ("cache-control", "public, max-age=3600");

fn reply(status: StatusCode, body: &str, headers: &[(&str, &str)]) -> Response<Body> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, *value);
    }
    response.body(Body::from(body.to_owned())).unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The path the application routes on for a raw request path.
pub(crate) fn resolve_path(raw: &str) -> String {
    resolve(&decode(raw))
}

/// Every escape decoded, `%2F` included, as `PATH_INFO` is.
fn decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// Dot segments resolved, backslashes read as slashes, empty segments
/// merged — the path the application routes on.
fn resolve(path: &str) -> String {
    let path = path.replace('\\', "/");
    // `;` parameters are dropped first, as servlet containers do.
    let raw: Vec<&str> = path
        .split('/')
        .map(|segment| segment.split(';').next().unwrap_or(""))
        .collect();
    let mut segments: Vec<&str> = Vec::new();
    for segment in &raw {
        match *segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut resolved = format!("/{}", segments.join("/"));
    let trailing = matches!(raw.last(), Some(&("" | "." | "..")));
    if trailing && !segments.is_empty() {
        resolved.push('/');
    }
    resolved
}

fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| decode(&s.replace('+', " "));
            (decode(name), decode(value))
        })
        .collect()
}

/// The `sessionid` cookie, names trimmed, the last one winning (Django).
fn session(headers: &HeaderMap) -> Option<String> {
    let mut found = None;
    for line in headers.get_all("cookie") {
        for pair in line.to_str().unwrap_or("").split(';') {
            if let Some((name, value)) = pair.split_once('=') {
                if name.trim() == "sessionid" && !value.trim().is_empty() {
                    found = Some(value.trim().to_owned());
                }
            }
        }
    }
    found
}
