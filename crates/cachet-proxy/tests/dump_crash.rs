//! Crash safety of dumps, with the real binary: the proxy is filled, asked
//! to stop (its shutdown dump starts), and killed with SIGKILL at several
//! points of the write. Restarted, it must hold either the previous dump or
//! the new one — never part of one — and serve.

mod common;

use axum::routing::get;
use bytes::Bytes;
use common::{start, Running, BOUND};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Child;

/// Responses of the first fill, which the first (complete) dump holds.
const FIRST: usize = 300;
/// Responses added afterwards: a dump of every response is tens of
/// megabytes, long enough to be interrupted.
const SECOND: usize = 1500;
/// The body of every response.
const BODY: usize = 32 * 1024;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn origin() -> SocketAddr {
    let app = axum::Router::new().fallback(get(|| async {
        ([("cache-control", "max-age=3600")], vec![b'x'; BODY])
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("cachet.toml");
    let dump = dir.join("dump");
    std::fs::write(
        &path,
        format!(
            "[caches.default]\nmax_bytes = \"1GiB\"\nttl = \"1h\"\n\n\
             [persistence]\ndump_file = {dump:?}\n\n\
             [identity]\nsecret_env = \"CACHET_TEST_SECRET\"\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n"
        ),
    )
    .unwrap();
    path
}

async fn get_body(client: &HttpClient, url: String) -> Bytes {
    let response = client
        .request(http::Request::get(url).body(Empty::new()).unwrap())
        .await
        .unwrap();
    response.into_body().collect().await.unwrap().to_bytes()
}

async fn fill(client: &HttpClient, proxy: &Running, prefix: &str, count: usize) {
    for n in 0..count {
        let body = get_body(client, format!("http://{}/{prefix}/{n}", proxy.addr)).await;
        assert_eq!(body.len(), BODY);
    }
}

async fn entries(client: &HttpClient, proxy: &Running) -> u64 {
    let stats = get_body(client, format!("http://{}/stats", proxy.admin)).await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    stats["overall"]["entries"].as_u64().unwrap()
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_killed_mid_write_restores_the_previous_or_the_new_one() {
    let upstream = origin().await;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut interrupted = 0;
    // How long after the temporary file appears the process is killed.
    for delay_ms in [0, 2, 10, 40, 150] {
        let dir = std::env::temp_dir().join(format!(
            "cachet-dump-crash-{}-{delay_ms}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = config(&dir);
        let tmp = dir.join("dump.tmp");

        // A first dump, complete: SIGTERM, and the shutdown dump finishes.
        let mut proxy = start(&config, upstream).await;
        fill(&client, &proxy, "first", FIRST).await;
        signal(&proxy.child, "-TERM");
        let status = tokio::time::timeout(BOUND, proxy.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
        assert!(dir.join("dump").exists());

        // Restored, filled further, and killed while dumping again.
        let mut proxy = start(&config, upstream).await;
        assert_eq!(
            entries(&client, &proxy).await,
            FIRST as u64,
            "the first dump restores"
        );
        fill(&client, &proxy, "second", SECOND).await;
        signal(&proxy.child, "-TERM");
        let started = Instant::now();
        while !tmp.exists() {
            assert!(started.elapsed() < BOUND, "the shutdown dump never started");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&proxy.child, "-KILL");
        let _ = tokio::time::timeout(BOUND, proxy.child.wait())
            .await
            .unwrap();
        let cut_short = tmp.exists();
        interrupted += usize::from(cut_short);

        // Either dump, whole; and the proxy serves.
        let proxy = start(&config, upstream).await;
        let restored = entries(&client, &proxy).await;
        if cut_short {
            assert_eq!(
                restored, FIRST as u64,
                "killed {delay_ms} ms into the write"
            );
        } else {
            assert!(
                restored == FIRST as u64 || restored == (FIRST + SECOND) as u64,
                "{restored} entries after a kill {delay_ms} ms into the write"
            );
        }
        let body = get_body(&client, format!("http://{}/first/0", proxy.addr)).await;
        assert_eq!(body.len(), BODY);
        drop(proxy);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(interrupted > 0, "no kill landed inside a write");
}
