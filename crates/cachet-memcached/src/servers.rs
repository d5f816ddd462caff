//! The Memcached servers: which one holds a key, commands with a deadline,
//! which servers are up, and the background work that brings a down one
//! back.
//!
//! Each server has its own pooled client, so that one down server costs
//! nothing to the keys of the others: while a server is down its commands
//! fail at once (a miss, or memory only) instead of waiting for a
//! deadline, and a probe every half second brings it back.

use crate::config::MemcachedConfig;
use crate::layout::stable_hash;
use cachet_core::store::tier::Warnings;
use cachet_core::store::StoreError;
use memcache::exp::{AsyncMetaClient, Operation};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// Deadlines in a row after which a server counts as down (one that hangs
/// should not cost every request a deadline).
const TIMEOUTS_TO_DOWN: u64 = 3;

/// How often a down server is probed.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// One server and what the tier knows of it.
struct Server {
    address: String,
    /// Its identity for rendezvous hashing.
    weight_seed: u64,
    /// Made on the tier's runtime (the address is resolved then).
    client: OnceLock<AsyncMetaClient>,
    up: AtomicBool,
    timeouts_in_a_row: AtomicU64,
    last_error: Mutex<String>,
}

/// What the tier did, for tests and operators.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

#[derive(Debug)]
pub(crate) struct Servers {
    servers: Vec<Server>,
    connect_timeout: Duration,
    command_timeout: Duration,
    pool_size: usize,
    warnings: Warnings,
    wake: Notify,
    pub(crate) counts: Counts,
}

/// A server's number in the configuration.
pub(crate) type ServerId = usize;

impl Servers {
    pub(crate) fn new(config: &MemcachedConfig) -> Self {
        let servers = config
            .servers
            .iter()
            .map(|address| Server {
                address: address.clone(),
                weight_seed: stable_hash(address.as_bytes()),
                client: OnceLock::new(),
                up: AtomicBool::new(false),
                timeouts_in_a_row: AtomicU64::new(0),
                last_error: Mutex::new("not connected yet".into()),
            })
            .collect();
        Self {
            servers,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            pool_size: config.pool_size,
            warnings: Warnings::default(),
            wake: Notify::new(),
            counts: Counts::default(),
        }
    }

    /// Every server's address, in configuration order.
    pub(crate) fn addresses(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|server| server.address.as_str())
    }

    /// The server that holds `key`: rendezvous (highest random weight)
    /// hashing, so adding or removing a server moves only its share of
    /// the keys, and every process agrees.
    pub(crate) fn route(&self, key: &str) -> ServerId {
        let key_hash = stable_hash(key.as_bytes());
        let mut best = (0, 0);
        for (id, server) in self.servers.iter().enumerate() {
            let score = mix(key_hash ^ server.weight_seed);
            if id == 0 || score > best.1 {
                best = (id, score);
            }
        }
        best.0
    }

    /// Whether `server` takes commands now: a down one fails them at once,
    /// with this error.
    pub(crate) fn check(&self, server: ServerId, what: &str) -> Result<(), StoreError> {
        self.client(server, what).map(|_| ())
    }

    /// Why the tier is not fully working, if it is not: each down server.
    pub(crate) fn degraded(&self) -> Option<String> {
        let down: Vec<String> = self
            .servers
            .iter()
            .filter(|server| !server.up.load(Ordering::Acquire))
            .map(|server| {
                format!(
                    "memcached at {}: down: {}",
                    server.address,
                    server.last_error()
                )
            })
            .collect();
        (!down.is_empty()).then(|| down.join("; "))
    }

    /// Runs `operation` on `server`, or fails at once while it is down.
    pub(crate) async fn run<O: Operation>(
        &self,
        server: ServerId,
        what: &str,
        operation: O,
    ) -> Result<O::Output, StoreError> {
        let client = self.client(server, what)?;
        self.timed(server, what, client.run(operation)).await
    }

    /// Runs `operations` on `server` pipelined, in one round trip; each
    /// answer in order (a miss or a CAS mismatch is an answer, not an
    /// error).
    pub(crate) async fn run_many<O: Operation>(
        &self,
        server: ServerId,
        what: &str,
        operations: Vec<O>,
    ) -> Result<Vec<O::Output>, StoreError> {
        self.run_many_raw(server, what, operations)
            .await?
            .into_iter()
            .map(|answer| self.settle(server, what, answer))
            .collect()
    }

    /// [`run_many`](Self::run_many), each command's own error left as the
    /// client reports it (a refused one is not a failed round trip).
    pub(crate) async fn run_many_raw<O: Operation>(
        &self,
        server: ServerId,
        what: &str,
        operations: Vec<O>,
    ) -> Result<Vec<memcache::exp::Result<O::Output>>, StoreError> {
        if operations.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client(server, what)?;
        self.timed(server, what, client.run_many(operations)).await
    }

    /// A round trip to every server; the first failure.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        for server in 0..self.servers.len() {
            let client = self.client(server, "noop")?;
            self.timed(server, "noop", client.noop()).await?;
        }
        Ok(())
    }

    /// Each server's `stats` (Memcached's own counters), or why not.
    pub(crate) async fn stats(&self) -> Vec<(String, Result<BTreeMap<String, String>, String>)> {
        let mut all = Vec::new();
        for server in &self.servers {
            let stats = tokio::time::timeout(
                self.connect_timeout + self.command_timeout,
                stats(&server.address),
            )
            .await
            .unwrap_or_else(|_| Err("`stats` took too long".into()));
            all.push((server.address.clone(), stats));
        }
        all
    }

    fn client(&self, server: ServerId, what: &str) -> Result<&AsyncMetaClient, StoreError> {
        let entry = &self.servers[server];
        match entry.client.get() {
            Some(client) if entry.up.load(Ordering::Acquire) => Ok(client),
            _ => Err(StoreError::new(format!(
                "memcached at {}: down: {}; {what} skipped",
                entry.address,
                entry.last_error()
            ))),
        }
    }

    /// Waits for `reply` up to the command deadline, then settles it.
    async fn timed<T>(
        &self,
        server: ServerId,
        what: &str,
        reply: impl Future<Output = memcache::exp::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.command_timeout, reply).await {
            Ok(result) => self.settle(server, what, result),
            Err(_) => {
                self.counts.timeouts.fetch_add(1, Ordering::Relaxed);
                let entry = &self.servers[server];
                let message = format!(
                    "memcached at {}: {what} took longer than {:?}; read as a miss",
                    entry.address, self.command_timeout
                );
                if entry.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_TO_DOWN {
                    self.down(
                        server,
                        &format!("{TIMEOUTS_TO_DOWN} commands in a row took too long"),
                    );
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
        }
    }

    /// Counts and reports how a command ended.
    fn settle<T>(
        &self,
        server: ServerId,
        what: &str,
        result: memcache::exp::Result<T>,
    ) -> Result<T, StoreError> {
        let entry = &self.servers[server];
        match result {
            Ok(value) => {
                entry.timeouts_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Err(error) => {
                self.counts.errors.fetch_add(1, Ordering::Relaxed);
                let message = format!("memcached at {}: {what}: {error}", entry.address);
                if is_transport(&error) {
                    self.down(server, &format!("{what}: {error}"));
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
        }
    }

    /// Marks `server` down and wakes the loop that brings it back.
    fn down(&self, server: ServerId, why: &str) {
        let entry = &self.servers[server];
        *entry
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = why.to_owned();
        if entry.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(memcached = %entry.address, why, "a Memcached server is down; its keys are served from memory and the origin");
        }
        self.wake.notify_one();
    }

    /// A warning, at most one per ten seconds (the rest are counted).
    pub(crate) fn warn(&self, message: &str) {
        self.warnings.warn(message);
    }

    /// Makes each server's client, then keeps the servers up: probes a
    /// down one with a no-op every [`PROBE_EVERY`] (sooner when a command
    /// found one down). Runs until the tier is dropped.
    pub(crate) async fn keep_up(&self) {
        loop {
            for server in &self.servers {
                if server.up.load(Ordering::Acquire) {
                    continue;
                }
                if let Err(why) = self.probe(server).await {
                    *server
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = why;
                    continue;
                }
                server.timeouts_in_a_row.store(0, Ordering::Relaxed);
                if !server.up.swap(true, Ordering::AcqRel) {
                    tracing::info!(memcached = %server.address, "a Memcached server is up");
                }
            }
            let _ = tokio::time::timeout(PROBE_EVERY, self.wake.notified()).await;
        }
    }

    async fn probe(&self, server: &Server) -> Result<(), String> {
        if server.client.get().is_none() {
            let client = AsyncMetaClient::builder()
                .connect_timeout(Some(self.connect_timeout))
                .io_timeout(Some(self.command_timeout))
                .max_connections(Some(self.pool_size))
                .max_idle(self.pool_size)
                .connect_async(server.address.as_str())
                .await
                .map_err(|error| format!("resolving {}: {error}", server.address))?;
            let _ = server.client.set(client);
        }
        let client = server.client.get().ok_or("no client")?;
        match tokio::time::timeout(self.connect_timeout + self.command_timeout, client.noop()).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer to a no-op".into()),
        }
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("address", &self.address)
            .field("up", &self.up.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Server {
    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Whether `error` says the server is unreachable (rather than that it
/// refused one command).
fn is_transport(error: &memcache::exp::Error) -> bool {
    use memcache::exp::Error;
    match error {
        Error::Io(_) | Error::Timeout { .. } => true,
        Error::Ambiguous { source, .. } => is_transport(source),
        _ => false,
    }
}

/// A 64-bit finalizer (SplitMix64's) to spread a combined hash.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `stats` over the text protocol (the meta protocol has no `stats`).
async fn stats(address: &str) -> Result<BTreeMap<String, String>, String> {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| error.to_string())?;
    stream
        .write_all(b"stats\r\n")
        .await
        .map_err(|error| error.to_string())?;
    let mut lines = BufReader::new(stream).lines();
    let mut stats = BTreeMap::new();
    while let Some(line) = lines.next_line().await.map_err(|error| error.to_string())? {
        if line == "END" {
            return Ok(stats);
        }
        let mut parts = line.splitn(3, ' ');
        if let (Some("STAT"), Some(name), Some(value)) = (parts.next(), parts.next(), parts.next())
        {
            stats.insert(name.to_owned(), value.to_owned());
        }
    }
    Err("the connection closed before `END`".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_new_servers_share() {
        let three = Servers::new(&MemcachedConfig::new([
            "10.0.0.1:11211",
            "10.0.0.2:11211",
            "10.0.0.3:11211",
        ]));
        let four = Servers::new(&MemcachedConfig::new([
            "10.0.0.1:11211",
            "10.0.0.2:11211",
            "10.0.0.3:11211",
            "10.0.0.4:11211",
        ]));
        let (mut moved, mut counts) = (0, [0; 4]);
        for n in 0..4000 {
            let key = format!("/item/{n} GET");
            let (before, after) = (three.route(&key), four.route(&key));
            counts[after] += 1;
            if before != after {
                assert_eq!(after, 3, "a key moved between old servers");
                moved += 1;
            }
        }
        // About a quarter moves, to the new server only; each holds its share.
        assert!((800..1200).contains(&moved), "{moved}");
        assert!(
            counts.iter().all(|&count| (800..1200).contains(&count)),
            "{counts:?}"
        );
    }

    #[tokio::test]
    async fn a_server_never_reached_fails_at_once() {
        let servers = Servers::new(&MemcachedConfig::new(["127.0.0.1:1"]));
        let error = servers.ping().await.unwrap_err();
        assert!(error.to_string().contains("not connected yet"), "{error}");
        assert!(servers
            .degraded()
            .unwrap()
            .contains("memcached at 127.0.0.1:1"));
        assert_eq!(servers.counts.timeouts.load(Ordering::Relaxed), 0);
    }
}
