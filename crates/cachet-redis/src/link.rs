//! The connection to Redis — one server or a cluster — commands with a
//! deadline, whether the tier is up, and the background work that
//! (re)connects it.
//!
//! `ConnectionManager::new` (like a cluster client's first connection)
//! fails while Redis is down, so connecting runs here, in a loop on the
//! tier's own runtime. Until it succeeds — and after a connection error,
//! until a `PING` answers again — the tier counts as down: commands fail at
//! once (a miss, or memory only) instead of making every request wait for a
//! deadline.

use crate::config::{redacted, RedisConfig};
use cachet_core::store::tier::Warnings;
use cachet_core::store::StoreError;
use futures_util::future::{try_join_all, BoxFuture};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// Deadlines in a row after which the tier counts as down (a Redis that
/// hangs should not cost every request a deadline).
const TIMEOUTS_TO_DOWN: u64 = 3;

/// How often a down tier is probed.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// What the tier talks to.
enum Topology {
    Single(redis::Client),
    Cluster(Box<ClusterClient>),
}

/// A connection to either: clones share it (both multiplex).
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

pub(crate) struct Link {
    topology: Topology,
    /// Where the invalidation channel subscribes: the server, or a
    /// cluster's nodes in turn (every node of a cluster carries every
    /// message published on any of them).
    pub(crate) channel_clients: Vec<redis::Client>,
    connection: Mutex<Option<Connection>>,
    up: AtomicBool,
    timeouts_in_a_row: AtomicU64,
    /// Whether the invalidation channel is subscribed.
    pub(crate) listening: AtomicBool,
    last_error: Mutex<Option<String>>,
    wake: Notify,
    pub(crate) connect_timeout: Duration,
    command_timeout: Duration,
    warnings: Warnings,
    url: String,
    pub(crate) counts: Counts,
}

/// What the tier did, for tests and operators.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("url", &self.url)
            .field("up", &self.is_up())
            .field("listening", &self.listening.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        let (topology, channel_clients, url) = if config.cluster.is_empty() {
            let client = redis::Client::open(config.url.as_str())?;
            (
                Topology::Single(client.clone()),
                vec![client],
                redacted(&config.url),
            )
        } else {
            let cluster = ClusterClientBuilder::new(config.cluster.iter().map(String::as_str))
                .connection_timeout(config.connect_timeout)
                .response_timeout(config.command_timeout)
                .retries(1)
                .build()?;
            let nodes = config
                .cluster
                .iter()
                .map(|node| redis::Client::open(node.as_str()))
                .collect::<Result<_, _>>()?;
            let urls: Vec<String> = config.cluster.iter().map(|url| redacted(url)).collect();
            (
                Topology::Cluster(Box::new(cluster)),
                nodes,
                format!("the cluster of {}", urls.join(", ")),
            )
        };
        Ok(Self {
            topology,
            channel_clients,
            connection: Mutex::new(None),
            up: AtomicBool::new(false),
            timeouts_in_a_row: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            last_error: Mutex::new(Some("not connected yet".into())),
            wake: Notify::new(),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            warnings: Warnings::default(),
            url,
            counts: Counts::default(),
        })
    }

    /// Where the tier points, its password hidden.
    pub(crate) fn target(&self) -> &str {
        &self.url
    }

    /// Whether commands are sent.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Why the tier is not fully working, if it is not.
    pub(crate) fn degraded(&self) -> Option<String> {
        if !self.is_up() {
            return Some(format!(
                "redis at {}: down: {}",
                self.url,
                self.last_error()
            ));
        }
        if !self.listening.load(Ordering::Acquire) {
            return Some(format!(
                "redis at {}: the invalidation channel is down: {}",
                self.url,
                self.last_error()
            ));
        }
        None
    }

    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "unknown error".into())
    }

    /// Runs `command`, or fails at once while the tier is down.
    pub(crate) async fn cmd<T: FromRedisValue>(
        &self,
        what: &'static str,
        command: &Cmd,
    ) -> Result<T, StoreError> {
        let Some(mut connection) = self.connection() else {
            return Err(self.skipped(what));
        };
        self.timed(what, command.query_async(&mut connection)).await
    }

    /// Runs `pipeline` in one round trip, or fails at once while the tier
    /// is down. Its commands must share one key (on a cluster, one slot):
    /// commands on several keys go through [`batch`](Self::batch).
    pub(crate) async fn pipe<T: FromRedisValue>(
        &self,
        what: &'static str,
        pipeline: &Pipeline,
    ) -> Result<T, StoreError> {
        let Some(mut connection) = self.connection() else {
            return Err(self.skipped(what));
        };
        self.timed(what, pipeline.query_async(&mut connection))
            .await
    }

    /// Runs `commands`, on any keys, at once: one pipeline on a single
    /// server; on a cluster each goes to its key's node, all in flight
    /// together. Their replies, in order.
    pub(crate) async fn batch(
        &self,
        what: &'static str,
        commands: &[Cmd],
    ) -> Result<Vec<Value>, StoreError> {
        let Some(connection) = self.connection() else {
            return Err(self.skipped(what));
        };
        let replies: BoxFuture<'_, Result<Vec<Value>, RedisError>> = match connection {
            Connection::Single(mut single) => {
                let mut pipeline = redis::pipe();
                for command in commands {
                    pipeline.add_command(command.clone());
                }
                Box::pin(async move { pipeline.query_async(&mut single).await })
            }
            Connection::Cluster(cluster) => {
                Box::pin(try_join_all(commands.iter().map(|command| {
                    let mut cluster = cluster.clone();
                    async move { command.query_async::<Value>(&mut cluster).await }
                })))
            }
        };
        self.timed(what, replies).await
    }

    /// Sends `PING` — on a cluster, to every master — or fails at once
    /// while the tier is down.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let Some(connection) = self.connection() else {
            return Err(self.skipped("PING"));
        };
        self.timed("PING", ping(connection)).await
    }

    /// Every key `pattern` matches, a `SCAN` step at a time (on a cluster,
    /// on every master), `count` keys asked for per step.
    pub(crate) async fn scan(
        &self,
        pattern: &str,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let Some(connection) = self.connection() else {
            return Err(self.skipped("SCAN"));
        };
        let nodes = match &connection {
            Connection::Single(_) => vec![None],
            Connection::Cluster(cluster) => self
                .timed("CLUSTER SLOTS", masters(cluster.clone()))
                .await?
                .into_iter()
                .map(Some)
                .collect(),
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut step = redis::cmd("SCAN");
                step.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(count);
                let mut connection = connection.clone();
                let reply: Value = match (&mut connection, &node) {
                    (Connection::Cluster(cluster), Some((host, port))) => {
                        self.timed("SCAN", cluster.route_command(step, at(host, *port)))
                            .await?
                    }
                    _ => {
                        self.timed("SCAN", step.query_async(&mut connection))
                            .await?
                    }
                };
                let (next, found): (u64, Vec<String>) =
                    redis::from_redis_value(reply).map_err(|error| {
                        StoreError::new(format!("redis at {}: SCAN: {error}", self.url))
                    })?;
                keys.extend(found);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
    }

    /// Waits for `reply` up to the command deadline, then settles it.
    async fn timed<T>(
        &self,
        what: &str,
        reply: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(self.command_timeout, reply).await;
        self.settle(what, result)
    }

    /// A command not sent while the tier is down, and why it is down.
    fn skipped(&self, what: &str) -> StoreError {
        StoreError::new(format!(
            "redis at {}: down: {}; {what} skipped",
            self.url,
            self.last_error()
        ))
    }

    /// Counts and reports how a command ended.
    fn settle<T>(
        &self,
        what: &str,
        result: Result<Result<T, RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(Ok(value)) => {
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                Ok(value)
            }
            Ok(Err(error)) => {
                self.counts.errors.fetch_add(1, Ordering::Relaxed);
                let message = format!("redis at {}: {what}: {error}", self.url);
                if error.is_io_error()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                    || error.is_timeout()
                {
                    self.down(&format!("{what}: {error}"));
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
            Err(_) => {
                self.counts.timeouts.fetch_add(1, Ordering::Relaxed);
                let message = format!(
                    "redis at {}: {what} took longer than {:?}; read as a miss",
                    self.url, self.command_timeout
                );
                if self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= TIMEOUTS_TO_DOWN {
                    self.down(&format!(
                        "{TIMEOUTS_TO_DOWN} commands in a row took too long"
                    ));
                }
                self.warn(&message);
                Err(StoreError::new(message))
            }
        }
    }

    fn connection(&self) -> Option<Connection> {
        if !self.is_up() {
            return None;
        }
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Marks the tier down (`why` without the address: `degraded` adds it)
    /// and wakes the loop that brings it back.
    pub(crate) fn down(&self, why: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
        if self.up.swap(false, Ordering::AcqRel) {
            tracing::warn!(redis = %self.url, why, "the Redis tier is down; serving from memory and the origin");
        }
        self.wake.notify_one();
    }

    /// Records why the invalidation channel is down.
    pub(crate) fn channel_down(&self, why: &str) {
        self.listening.store(false, Ordering::Release);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.to_owned());
    }

    /// A warning, at most one per ten seconds (the rest are counted).
    pub(crate) fn warn(&self, message: &str) {
        self.warnings.warn(message);
    }

    /// Connects, then keeps the tier up: probes it with `PING` whenever a
    /// command found it down. Runs until the tier is dropped.
    pub(crate) async fn keep_connected(self: Arc<Self>) {
        let mut delay = Duration::from_millis(50);
        loop {
            let connection = self
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let result = match connection {
                None => self.connect().await,
                Some(connection) if !self.is_up() => {
                    match tokio::time::timeout(self.connect_timeout, ping(connection)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(error)) => Err(error.to_string()),
                        Err(_) => Err("PING took too long".into()),
                    }
                }
                Some(_) => {
                    self.wake.notified().await;
                    continue;
                }
            };
            match result {
                Ok(()) => {
                    self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                    if !self.up.swap(true, Ordering::AcqRel) {
                        tracing::info!(redis = %self.url, "the Redis tier is up");
                    }
                    delay = Duration::from_millis(50);
                }
                Err(error) => {
                    self.warn(&format!("redis at {}: {error}", self.url));
                    *self
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(error);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(PROBE_EVERY);
                }
            }
        }
    }

    async fn connect(&self) -> Result<(), String> {
        let connecting: BoxFuture<'_, Result<Connection, RedisError>> = match &self.topology {
            Topology::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(self.command_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(PROBE_EVERY);
                let client = client.clone();
                Box::pin(async move {
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map(Connection::Single)
                })
            }
            Topology::Cluster(cluster) => Box::pin(async move {
                cluster
                    .get_async_connection()
                    .await
                    .map(Connection::Cluster)
            }),
        };
        match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(connection)) => {
                *self
                    .connection
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(connection);
                Ok(())
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "connecting took longer than {:?}",
                self.connect_timeout
            )),
        }
    }
}

/// `PING` — on a cluster, to every master: the client's own fan-out only
/// reaches the nodes it is still connected to, so a dead master would go
/// unnoticed.
async fn ping(connection: Connection) -> Result<(), RedisError> {
    match connection {
        Connection::Single(mut single) => redis::cmd("PING")
            .query_async::<Value>(&mut single)
            .await
            .map(drop),
        Connection::Cluster(cluster) => {
            for (host, port) in masters(cluster.clone()).await? {
                let mut cluster = cluster.clone();
                cluster
                    .route_command(redis::cmd("PING"), at(&host, port))
                    .await?;
            }
            Ok(())
        }
    }
}

/// A route to the node at `host:port`.
fn at(host: &str, port: u16) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: host.to_owned(),
        port,
    })
}

/// The address of every master of the cluster, from `CLUSTER SLOTS`.
async fn masters(mut cluster: ClusterConnection) -> Result<Vec<(String, u16)>, RedisError> {
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut cluster)
        .await?;
    parse_masters(slots)
        .map_err(|why| RedisError::from((redis::ErrorKind::Parse, "CLUSTER SLOTS", why)))
}

/// The address of every master in a `CLUSTER SLOTS` reply (each slot
/// range: start, end, then its master as host, port, id, ...).
fn parse_masters(slots: Value) -> Result<Vec<(String, u16)>, String> {
    let malformed = || "a `CLUSTER SLOTS` reply of an unknown shape".to_owned();
    let Value::Array(ranges) = slots else {
        return Err(malformed());
    };
    let mut masters = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return Err(malformed());
        };
        let Some(Value::Array(master)) = parts.into_iter().nth(2) else {
            return Err(malformed());
        };
        let mut fields = master.into_iter();
        let (Some(host), Some(port)) = (fields.next(), fields.next()) else {
            return Err(malformed());
        };
        let host: String = redis::from_redis_value(host).map_err(|_| malformed())?;
        let port: u16 = redis::from_redis_value(port).map_err(|_| malformed())?;
        if !masters.contains(&(host.clone(), port)) {
            masters.push((host, port));
        }
    }
    Ok(masters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_cluster_slots() {
        let node = |host: &str, port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let slots = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000, "a"),
                node("127.0.0.1", 7003, "replica of a"),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001, "b"),
            ]),
            Value::Array(vec![
                Value::Int(10923),
                Value::Int(16383),
                node("127.0.0.1", 7000, "a"),
            ]),
        ]);
        assert_eq!(
            parse_masters(slots).unwrap(),
            [
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
        assert!(parse_masters(Value::Int(3)).is_err());
        assert!(parse_masters(Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err());
    }

    #[tokio::test]
    async fn a_tier_that_never_connected_fails_at_once() {
        let link = Link::new(&RedisConfig::new("redis://127.0.0.1:1/0")).unwrap();
        let error = link
            .cmd::<Option<Vec<u8>>>("GET", &redis::cmd("GET"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("down"), "{error}");
        assert!(link.degraded().unwrap().contains("not connected yet"));
        assert_eq!(link.counts.timeouts.load(Ordering::Relaxed), 0);
    }
}
