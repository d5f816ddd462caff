//! The origin behind both apps, written once: what it answers depends only
//! on the request, so the axum and actix-web apps serve the same bytes.
//!
//! Request headers drive it:
//! - `x-status: N` — the status (200 by default);
//! - `x-respond-NAME: VALUE` — a response header `NAME: VALUE`;
//! - `x-echo: a, b` — the body also shows those request headers;
//! - `x-etag: "v1"` — the response's `ETag`, and 304 when `If-None-Match`
//!   matches it;
//! - `x-body-bytes: N` — a body of `N` bytes, of known length;
//! - `x-stream-bytes: N` — a body of `N` bytes in four chunks, without a
//!   length;
//! - `x-delay-ms: N` — answers after `N` ms of Tokio's (paused) clock.
//!
//! Otherwise the body is `METHOD PATH #N`, `N` counting the origin's calls.

use bytes::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A request as the origin sees it.
pub struct OriginRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl OriginRequest {
    /// A request from each framework's own parts.
    pub fn new<'a>(
        method: &str,
        path: &str,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: headers
                .map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The origin's answer.
pub struct OriginReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: OriginBody,
}

pub enum OriginBody {
    Full(Bytes),
    /// Chunks sent without a length.
    Stream(Vec<Bytes>),
}

/// Counts its calls.
#[derive(Clone, Default)]
pub struct Origin {
    calls: Arc<AtomicUsize>,
}

impl Origin {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub async fn answer(&self, req: OriginRequest) -> OriginReply {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(millis) = req.header("x-delay-ms").and_then(|v| v.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        let mut headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.strip_prefix("x-respond-")?;
                Some((name.to_owned(), value.clone()))
            })
            .collect();
        let mut status = req
            .header("x-status")
            .and_then(|v| v.parse().ok())
            .unwrap_or(200);
        if let Some(etag) = req.header("x-etag") {
            headers.push(("etag".to_owned(), etag.to_owned()));
            if req.header("if-none-match") == Some(etag) {
                return OriginReply {
                    status: 304,
                    headers,
                    body: OriginBody::Full(Bytes::new()),
                };
            }
            status = 200;
        }
        let sized = |name| req.header(name).and_then(|v| v.parse::<usize>().ok());
        let body = if let Some(n) = sized("x-body-bytes") {
            OriginBody::Full(Bytes::from(vec![b'x'; n]))
        } else if let Some(n) = sized("x-stream-bytes") {
            let chunk = n.div_ceil(4);
            let bytes = Bytes::from(vec![b's'; n]);
            OriginBody::Stream(
                (0..n)
                    .step_by(chunk.max(1))
                    .map(|at| bytes.slice(at..(at + chunk).min(n)))
                    .collect(),
            )
        } else {
            let mut text = format!("{} {} #{n}", req.method, req.path);
            for name in req.header("x-echo").unwrap_or("").split(',') {
                let name = name.trim();
                if !name.is_empty() {
                    text.push_str(&format!(" {name}={}", req.header(name).unwrap_or("-")));
                }
            }
            OriginBody::Full(Bytes::from(text))
        };
        OriginReply {
            status,
            headers,
            body,
        }
    }
}
