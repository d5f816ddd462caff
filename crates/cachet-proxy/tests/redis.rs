//! Two `cachet-proxy` processes in front of one origin, sharing one Redis
//! of the test's own (configuration alone: a `[redis]` section): a miss on
//! one fills Redis for the other, a `POST` through one purges the other's
//! memory, `/health` reports Redis, and killing Redis fails no request.
//! Run with `--features external-tests` (needs `redis-server`).

mod common;

use common::tier::{client, eventually, health, origin, send};
use common::{start, Running, BOUND};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Redis {
    port: u16,
    child: std::process::Child,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let deadline = Instant::now() + BOUND;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(dir: &Path, redis: &Redis) -> PathBuf {
    let path = dir.join("cachet.toml");
    std::fs::write(
        &path,
        format!(
            "[redis]\nurl = \"redis://127.0.0.1:{}/0\"\nprefix = \"proxies:\"\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n",
            redis.port
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_share_entries_and_purges_through_redis() {
    let mut redis = Redis::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = origin(Arc::clone(&calls)).await;
    let dir = std::env::temp_dir().join(format!("cachet-proxy-redis-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir, &redis);
    let one = start(&config, upstream).await;
    let two = start(&config, upstream).await;
    let client = client();
    for proxy in [&one, &two] {
        eventually("the proxy reaches Redis", || async {
            health(&client, proxy).await.contains("\"ok\"")
        })
        .await;
    }
    let page = |proxy: &Running| format!("http://{}/page", proxy.addr);

    let (_, status, body) = send(&client, "GET", page(&one)).await;
    assert!(status.contains("stored"), "{status}");
    assert_eq!(body, "call #1");
    let (_, status, body) = send(&client, "GET", page(&two)).await;
    assert!(status.contains("hit"), "{status}");
    assert_eq!(body, "call #1");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A POST through one purges the page from the other's memory too.
    let (code, _, _) = send(&client, "POST", page(&two)).await;
    assert_eq!(code, 200);
    eventually("the other proxy stops serving the purged page", || async {
        send(&client, "GET", page(&one)).await.2 != "call #1"
    })
    .await;

    // Redis killed: every request is still answered; health says so.
    redis.kill();
    for _ in 0..10 {
        for proxy in [&one, &two] {
            let (code, _, _) = send(&client, "GET", page(proxy)).await;
            assert_eq!(code, 200);
        }
    }
    for proxy in [&one, &two] {
        eventually("health reports Redis down", || async {
            health(&client, proxy).await.contains("degraded")
        })
        .await;
        assert!(health(&client, proxy)
            .await
            .contains("redis at redis://127.0.0.1"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
