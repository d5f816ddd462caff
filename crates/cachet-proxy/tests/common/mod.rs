//! Starting the real `cachet-proxy` binary for a test.

#![allow(dead_code, unreachable_pub)]

pub mod tier;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bound on every wait for the proxy (a slow machine is still far under it).
pub const BOUND: Duration = Duration::from_secs(60);

/// A running proxy: the process, where it serves, where its admin API is.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
}

/// Starts the proxy with `config` (which must give `[admin] listen`) in
/// front of `upstream`, and waits for both banners. A Redis named by the
/// environment is not used: the configuration alone decides.
pub async fn start(config: &Path, upstream: SocketAddr) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cachet-proxy"))
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}"))
        .env("RUST_LOG", "warn")
        // What `[identity] secret_env = "CACHET_TEST_SECRET"` reads.
        .env("CACHET_TEST_SECRET", "cachet proxy tests")
        .env_remove("REDIS_URL")
        .env_remove("CACHET_REDIS_URL")
        .env_remove("CACHET_REDIS_CLUSTER")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut admin) = (None, None);
    while addr.is_none() || admin.is_none() {
        let line = tokio::time::timeout(BOUND, lines.next_line())
            .await
            .expect("the proxy starts")
            .unwrap()
            .expect("a banner");
        if let Some(rest) = line.strip_prefix("cachet-proxy listening on http://") {
            addr = rest.split(',').next().and_then(|a| a.parse().ok());
        } else if let Some(rest) = line.strip_prefix("cachet-proxy admin API on http://") {
            admin = rest.trim_end_matches('/').parse().ok();
        }
    }
    // The rest of the output (the shutdown dump's line) is not needed.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        addr: addr.unwrap(),
        admin: admin.unwrap(),
    }
}
