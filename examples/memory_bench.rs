//! Memory benchmark for `docs/benchmarks.md`: what a 64 MiB cache really
//! costs the release `cachet-proxy` process, measured as its RSS.
//!
//! ```sh
//! benches/memory.sh            # builds the proxy and this, runs every case
//! cargo run --release --example memory_bench -- small 1000000 [budget MiB, 64]
//! ```
//!
//! It serves an origin in this process (every response `Cache-Control:
//! max-age=3600`), starts `target/release/cachet-proxy` in front of it with
//! one `^/` rule and `[caches.default] max_bytes = "64MiB"`, reads the
//! proxy's idle RSS, sends the case's requests for distinct URLs over 64
//! keep-alive connections, and prints RSS after the fill, peak RSS
//! (`VmHWM`), `(after − idle) / budget`, and the entries and bytes the cache
//! counted (printed by the proxy as it stops).
//!
//! Cases: `small` (11-byte bodies), `kib` (1 KiB bodies), `tagged` (1 KiB
//! bodies with three `Cache-Tag`s and `Vary: Accept-Language`, four
//! variants per URL). A case name ending in `-hit` (`small-hit`) sends
//! each request twice, the second a hit, which makes the entry's prepared
//! header map (counted in its weight from then on).

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;

#[derive(Clone, Copy)]
enum Case {
    Small,
    Kib,
    Tagged,
}

impl Case {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "small" => Some(Self::Small),
            "kib" => Some(Self::Kib),
            "tagged" => Some(Self::Tagged),
            _ => None,
        }
    }

    fn body_len(self) -> usize {
        match self {
            Self::Small => 11,
            Self::Kib | Self::Tagged => 1024,
        }
    }
}

/// The origin: `max-age=3600` on every response, a body of the case's
/// length, and for `tagged` three tags and `Vary: Accept-Language`.
async fn answer(case: Case, req: Request<Body>) -> Response<Body> {
    static BODY: [u8; 1024] = [b'x'; 1024];
    let n: usize = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut response = Response::builder()
        .header("cache-control", "max-age=3600")
        .header("content-type", "application/octet-stream");
    if let Case::Tagged = case {
        response = response
            .header(
                "cache-tag",
                format!("group-{} shard-{} item-{n}", n % 100, n % 1000),
            )
            .header("vary", "Accept-Language");
    }
    response
        .body(Body::from(Bytes::from_static(&BODY[..case.body_len()])))
        .unwrap()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let case_name = args.next().unwrap_or_else(|| "small".to_owned());
    let (base, hits) = match case_name.strip_suffix("-hit") {
        Some(base) => (base, true),
        None => (case_name.as_str(), false),
    };
    let case = Case::parse(base).ok_or("cases: small, kib, tagged, each with or without -hit")?;
    let requests: usize = args.next().map_or(Ok(1_000_000), |n| n.parse())?;
    let budget_mib: u64 = args.next().map_or(Ok(64), |n| n.parse())?;

    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin_addr = origin.local_addr()?;
    let app = axum::Router::new().fallback(move |req: Request<Body>| answer(case, req));
    tokio::spawn(async move { axum::serve(origin, app).await });

    let config = std::env::temp_dir().join(format!("cachet-memory-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{origin_addr}\"\n\n\
             [caches.default]\nmax_bytes = \"{budget_mib}MiB\"\nttl = \"1h\"\n\n\
             [[rules]]\npath = '^/'\nttl = \"1h\"\n"
        ),
    )?;
    // `CACHET_PROXY` names another build (one without jemalloc, say).
    let binary =
        std::env::var("CACHET_PROXY").unwrap_or_else(|_| "target/release/cachet-proxy".into());
    let mut proxy = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = proxy.id();
    let mut stdout = BufReader::new(proxy.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or_else(|| format!("unexpected first line: {line}"))?
        .to_owned();

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS)
        .build_http();
    let get = move |path: String, lang: Option<usize>| {
        let client = client.clone();
        let uri = format!("http://{addr}{path}");
        async move {
            let mut req = http::Request::get(uri);
            if let Some(lang) = lang {
                req = req.header("accept-language", format!("l{lang}"));
            }
            let response = client.request(req.body(Empty::new()).unwrap()).await?;
            response.into_body().collect().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }
    };
    get("/warm/0".to_owned(), None)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid, "VmRSS:");

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (next, get) = (Arc::clone(&next), get.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests {
                        break;
                    }
                    let (path, lang) = match case {
                        Case::Tagged => (format!("/i/{}", n / 4), Some(n % 4)),
                        Case::Small | Case::Kib => (format!("/i/{n}"), None),
                    };
                    for _ in 0..if hits { 2 } else { 1 } {
                        if let Err(error) = get(path.clone(), lang).await {
                            eprintln!("request {n} failed: {error}");
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");

    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let mut counted = String::new();
    for line in stdout.lines() {
        let line = line?;
        // The responses' cache (the proxy also reports its empty `values`).
        if line.starts_with("cachet-proxy stopped: cache `default`") {
            counted = line;
        }
    }
    proxy.wait()?;
    let _ = std::fs::remove_file(&config);

    let budget_kib = (budget_mib * 1024) as f64;
    println!(
        "{case_name}: {requests} requests in {:.1}s; RSS idle {} MiB, after {} MiB, peak {} MiB; \
         (after - idle) / budget = {:.2}, (peak - idle) / budget = {:.2}",
        elapsed.as_secs_f64(),
        idle / 1024,
        after / 1024,
        peak / 1024,
        (after.saturating_sub(idle)) as f64 / budget_kib,
        (peak.saturating_sub(idle)) as f64 / budget_kib,
    );
    println!("  {counted}");
    Ok(())
}
