//! Two `cachet-proxy` processes in front of one origin, sharing Memcached
//! — one server, then two — of the test's own (configuration alone: a
//! `[memcached]` section): a miss on one fills Memcached for the other, a
//! `POST` through one purges the other's memory, `/health` reports
//! Memcached, and killing it fails no request. Run with
//! `--features external-tests` (needs `memcached`).

mod common;

use common::tier::{client, eventually, health, origin, send};
use common::{start, BOUND};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Memcached {
    port: u16,
    child: std::process::Child,
}

impl Memcached {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("memcached")
            .args(["-p", &port.to_string(), "-U", "0", "-l", "127.0.0.1"])
            .args(["-u", "nobody"])
            .stdout(Stdio::null())
            .spawn()
            .expect("memcached is installed");
        let deadline = Instant::now() + BOUND;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config(dir: &Path, servers: &[Memcached]) -> PathBuf {
    let path = dir.join("cachet.toml");
    let list: Vec<String> = servers
        .iter()
        .map(|server| format!("\"127.0.0.1:{}\"", server.port))
        .collect();
    std::fs::write(
        &path,
        format!(
            "[memcached]\nservers = [{}]\nprefix = \"proxies:\"\npoll_interval = \"50ms\"\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\nauth = \"none\"\n",
            list.join(", ")
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_share_entries_and_purges_through_memcached() {
    for count in [1, 2] {
        let mut servers: Vec<Memcached> = (0..count).map(|_| Memcached::start()).collect();
        let calls = Arc::new(AtomicUsize::new(0));
        let upstream = origin(Arc::clone(&calls)).await;
        let dir = std::env::temp_dir().join(format!(
            "cachet-proxy-memcached-{}-{count}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = config(&dir, &servers);
        let one = start(&config, upstream).await;
        let two = start(&config, upstream).await;
        let client = client();
        for proxy in [&one, &two] {
            eventually("the proxy reaches Memcached", || async {
                health(&client, proxy).await.contains("\"ok\"")
            })
            .await;
        }
        let page = |proxy: &common::Running| format!("http://{}/page", proxy.addr);

        let (_, status, body) = send(&client, "GET", page(&one)).await;
        assert!(status.contains("stored"), "{status}");
        assert_eq!(body, "call #1");
        let (_, status, body) = send(&client, "GET", page(&two)).await;
        assert!(status.contains("hit"), "{count} servers: {status}");
        assert_eq!(body, "call #1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // A POST through one purges the page from the other's memory too.
        let (code, _, _) = send(&client, "POST", page(&two)).await;
        assert_eq!(code, 200);
        eventually("the other proxy stops serving the purged page", || async {
            send(&client, "GET", page(&one)).await.2 != "call #1"
        })
        .await;

        // Memcached killed: every request is still answered; health says so.
        for server in &mut servers {
            server.kill();
        }
        for _ in 0..10 {
            for proxy in [&one, &two] {
                let (code, _, _) = send(&client, "GET", page(proxy)).await;
                assert_eq!(code, 200);
            }
        }
        for proxy in [&one, &two] {
            eventually("health reports Memcached down", || async {
                health(&client, proxy).await.contains("degraded")
            })
            .await;
            assert!(health(&client, proxy)
                .await
                .contains("memcached at 127.0.0.1"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
