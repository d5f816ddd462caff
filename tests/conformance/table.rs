//! The shape of the conformance table: scenarios of requests, expected
//! responses and origin-call counts, and the runner that plays one against
//! an app.

use crate::apps::App;
use crate::origin::Origin;
use bytes::Bytes;
use cachet::clock::MockClock;
use std::time::Duration;

/// A request to send.
#[derive(Clone)]
pub struct Req {
    pub method: &'static str,
    pub uri: String,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

pub fn req(method: &'static str, uri: &str) -> Req {
    Req {
        method,
        uri: uri.to_owned(),
        headers: Vec::new(),
    }
}

pub fn get(uri: &str) -> Req {
    req("GET", uri)
}

impl Req {
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.as_bytes().to_vec()));
        self
    }

    /// A header value that is not valid UTF-8 (or otherwise odd).
    pub fn raw_header(mut self, name: &'static str, value: &[u8]) -> Self {
        self.headers.push((name, value.to_vec()));
        self
    }
}

/// A response as a client on the wire would see it: `HEAD` bodies
/// dropped, `Content-Length` as the server would write it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn new<'a>(
        status: u16,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
        body_length: Option<u64>,
        method: &str,
        body: Bytes,
    ) -> Self {
        let mut headers: Vec<(String, String)> = headers
            .map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let has_length = headers.iter().any(|(n, _)| n == "content-length");
        // Servers write the length of a body that knows it, except for 304.
        if let (false, Some(length), false) = (has_length, body_length, status == 304) {
            headers.push(("content-length".to_owned(), length.to_string()));
        }
        let body = if method == "HEAD" { Bytes::new() } else { body };
        Self {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a response must be.
#[derive(Clone)]
pub struct Expect {
    status: u16,
    body: Option<BodyIs>,
    headers: Vec<(&'static str, Option<String>)>,
}

#[derive(Clone)]
enum BodyIs {
    Exactly(String),
    Bytes(usize),
}

pub fn expect(status: u16) -> Expect {
    Expect {
        status,
        body: None,
        headers: Vec::new(),
    }
}

impl Expect {
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(BodyIs::Exactly(body.to_owned()));
        self
    }

    /// A body of `n` bytes.
    pub fn body_len(mut self, n: usize) -> Self {
        self.body = Some(BodyIs::Bytes(n));
        self
    }

    /// `Cache-Status`, exactly.
    pub fn cache(self, value: &str) -> Self {
        self.header("cache-status", value)
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, Some(value.to_owned())));
        self
    }

    pub fn no_header(mut self, name: &'static str) -> Self {
        self.headers.push((name, None));
        self
    }

    fn check(&self, reply: &Reply) -> Result<(), String> {
        let mut wrong = Vec::new();
        if reply.status != self.status {
            wrong.push(format!(
                "status {} (expected {})",
                reply.status, self.status
            ));
        }
        match &self.body {
            Some(BodyIs::Exactly(body)) if reply.body != body.as_bytes() => wrong.push(format!(
                "body {:?} (expected {body:?})",
                String::from_utf8_lossy(&reply.body)
            )),
            Some(BodyIs::Bytes(n)) if reply.body.len() != *n => {
                wrong.push(format!("{} body bytes (expected {n})", reply.body.len()))
            }
            _ => {}
        }
        for (name, value) in &self.headers {
            let got = reply.header(name);
            if got != value.as_deref() {
                wrong.push(format!("{name}: {got:?} (expected {value:?})"));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}

pub enum Step {
    /// Send a request; check the response.
    Send(Req, Expect),
    /// Send `n` copies of a request at once; check every response.
    Together(usize, Req, Expect),
    /// Move the cache's clock.
    Advance(Duration),
    /// Let background refreshes finish (Tokio's paused clock moves on).
    Settle,
    /// The origin has been called this many times so far.
    Calls(usize),
}

pub struct Scenario {
    pub name: &'static str,
    pub rules: &'static str,
    pub steps: Vec<Step>,
}

/// Plays `scenario` against `app`; the first step that differs, if any.
pub async fn run(
    scenario: &Scenario,
    app: &impl App,
    origin: &Origin,
    clock: &MockClock,
) -> Result<(), String> {
    for (index, step) in scenario.steps.iter().enumerate() {
        let failed = |why: String| Err(format!("step {}: {why}", index + 1));
        match step {
            Step::Send(req, expect) => {
                let reply = app.send(req).await;
                if let Err(why) = expect.check(&reply) {
                    return failed(format!("{} {}: {why}", req.method, req.uri));
                }
            }
            Step::Together(n, req, expect) => {
                let replies = futures_util::future::join_all((0..*n).map(|_| app.send(req))).await;
                for reply in replies {
                    if let Err(why) = expect.check(&reply) {
                        return failed(format!("{n} × {} {}: {why}", req.method, req.uri));
                    }
                }
            }
            Step::Advance(by) => clock.advance(*by),
            Step::Settle => tokio::time::sleep(Duration::from_secs(10)).await,
            Step::Calls(expected) => {
                if origin.calls() != *expected {
                    return failed(format!(
                        "{} origin calls (expected {expected})",
                        origin.calls()
                    ));
                }
            }
        }
    }
    Ok(())
}
