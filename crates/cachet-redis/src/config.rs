//! The `[redis]` section and the variables that override it.

use cachet_core::config::{parse_section, ConfigFile};
use cachet_core::config::{DurationValue, SizeValue};
use cachet_core::ConfigError;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Whether instances keep a local tier in front of Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Memory (the in-memory store) first, then Redis shared by every instance: a miss in
    /// memory checks Redis before the origin, and a stored response goes to
    /// both. Purges reach every instance's memory through a Redis channel.
    #[default]
    Tiered,
    /// Redis only, no local tier: every instance sees the same entries at
    /// the same time, at the cost of a round trip per lookup.
    Shared,
}

/// How the Redis tier connects and what it shares (`[redis]`).
///
/// ```
/// use cachet_redis::{Mode, RedisConfig};
/// use std::time::Duration;
///
/// let config = RedisConfig::from_toml(
///     r#"
///     url = "redis://127.0.0.1:6379/2"
///     prefix = "shop:"
///     command_timeout = "100ms"
///     "#,
/// )?;
/// assert_eq!(config.mode, Mode::Tiered);
/// assert_eq!(config.command_timeout, Duration::from_millis(100));
/// // The password never shows in logs or `Debug`.
/// let secret = RedisConfig::new("redis://:hunter2@10.0.0.5:6379/0");
/// assert!(!format!("{secret:?}").contains("hunter2"));
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (`rediss://` for TLS is not
    /// built in). Unused when [`cluster`](Self::cluster) names a cluster.
    pub url: String,
    /// The startup nodes of a Redis Cluster (`redis://[user:password@]host:port`
    /// each; one reachable node is enough, the others are found through
    /// it). Empty (the default): the single Redis at [`url`](Self::url).
    pub cluster: Vec<String>,
    /// Put in front of every key and of the invalidation channel, so that
    /// several applications (or environments) share one Redis apart.
    pub prefix: String,
    /// Tiered (memory, then Redis) or shared (Redis only).
    pub mode: Mode,
    /// How long connecting may take before the tier counts as down.
    pub connect_timeout: Duration,
    /// How long a command may take before it counts as a miss.
    pub command_timeout: Duration,
    /// Bodies larger than this stay in the instance's memory (tiered mode):
    /// Redis holds a marker for them, so purges still find them.
    pub max_shared_body: u64,
    /// One origin call per cold key across all instances: the first takes
    /// a lock in Redis (`SET NX PX`), the others wait (up to the rule's
    /// `lock_timeout`) for its entry. Off by default.
    pub distributed_lock: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/0".into(),
            cluster: Vec::new(),
            prefix: "cachet:".into(),
            mode: Mode::Tiered,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(250),
            max_shared_body: 1024 * 1024,
            distributed_lock: false,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field(
                "cluster",
                &self
                    .cluster
                    .iter()
                    .map(|url| redacted(url))
                    .collect::<Vec<_>>(),
            )
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("max_shared_body", &self.max_shared_body)
            .field("distributed_lock", &self.distributed_lock)
            .finish()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisDto {
    url: Option<String>,
    cluster: Option<Vec<String>>,
    prefix: Option<String>,
    mode: Option<Mode>,
    connect_timeout: Option<DurationValue>,
    command_timeout: Option<DurationValue>,
    max_shared_body: Option<SizeValue>,
    distributed_lock: Option<bool>,
}

fn error(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Section {
        section: "redis".into(),
        field: field.into(),
        reason: reason.into(),
    }
}

impl RedisConfig {
    /// The defaults, on `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Reads a `[redis]` section's body.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let value: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    reason: error.to_string().trim().to_owned(),
                })?;
        Self::from_section(toml::Value::Table(value))
    }

    /// Takes and reads the `[redis]` section of `file`, if it has one.
    pub fn from_config(file: &mut ConfigFile) -> Result<Option<Self>, ConfigError> {
        file.take("redis").map(Self::from_section).transpose()
    }

    /// Reads the `[redis]` section of a configuration.
    pub fn from_section(section: toml::Value) -> Result<Self, ConfigError> {
        let dto: RedisDto = parse_section("redis", section)?;
        let mut config = Self::default();
        if dto.url.is_some() && dto.cluster.is_some() {
            return Err(error(
                "cluster",
                "set either `url` (one Redis) or `cluster` (the startup nodes of a Redis Cluster), not both",
            ));
        }
        if let Some(url) = dto.url {
            config.url = url;
        }
        if let Some(nodes) = dto.cluster {
            if nodes.is_empty() {
                return Err(error("cluster", "name at least one startup node"));
            }
            config.cluster = nodes;
        }
        if let Some(prefix) = dto.prefix {
            config.prefix = prefix;
        }
        if let Some(mode) = dto.mode {
            config.mode = mode;
        }
        if let Some(timeout) = dto.connect_timeout {
            config.connect_timeout = timeout.parse().map_err(|e| error("connect_timeout", e))?;
        }
        if let Some(timeout) = dto.command_timeout {
            config.command_timeout = timeout.parse().map_err(|e| error("command_timeout", e))?;
        }
        if let Some(size) = dto.max_shared_body {
            config.max_shared_body = size.parse().map_err(|e| error("max_shared_body", e))?;
        }
        if let Some(on) = dto.distributed_lock {
            config.distributed_lock = on;
        }
        config.check()?;
        Ok(config)
    }

    /// Checks what the parts cannot check alone.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.cluster.is_empty() {
            redis::Client::open(self.url.as_str()).map_err(|problem| {
                error(
                    "url",
                    format!("`{}` is not a Redis URL: {problem}", redacted(&self.url)),
                )
            })?;
        }
        for node in &self.cluster {
            let db = redis::Client::open(node.as_str())
                .map_err(|problem| {
                    error(
                        "cluster",
                        format!("`{}` is not a Redis URL: {problem}", redacted(node)),
                    )
                })?
                .get_connection_info()
                .redis_settings()
                .db();
            if db != 0 {
                return Err(error(
                    "cluster",
                    format!(
                        "`{}` names database {db}; a Redis Cluster has only database 0",
                        redacted(node)
                    ),
                ));
            }
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                return Err(error(
                    field,
                    "zero would fail every command; it must be above zero",
                ));
            }
        }
        if self.prefix.contains(char::is_whitespace) {
            return Err(error("prefix", "a prefix may not contain spaces"));
        }
        Ok(())
    }
}

/// `url` with its password (and user) hidden, for logs and errors.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redacted("redis://user:pa@ss@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
        let error = RedisConfig::from_toml("url = 'http://:secret@host'").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(
            error
                .to_string()
                .starts_with("section `redis`: field `url`"),
            "{error}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            ("mode = 'cluster'", "mode"),
            ("command_timeout = 'soon'", "command_timeout"),
            ("command_timeout = 0", "command_timeout"),
            ("max_shared_body = 'big'", "max_shared_body"),
            ("prefix = 'a b'", "prefix"),
            ("colour = 'red'", "colour"),
            ("cluster = []", "cluster"),
            ("cluster = ['redis://127.0.0.1:7000/2']", "cluster"),
            ("cluster = ['nowhere']", "cluster"),
            (
                "url = 'redis://a:1'\ncluster = ['redis://127.0.0.1:7000']",
                "cluster",
            ),
        ] {
            let error = RedisConfig::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(&format!("`{field}`")), "{text}: {error}");
        }
        let config = RedisConfig::from_toml("mode = 'shared'\nmax_shared_body = '64KiB'").unwrap();
        assert_eq!(config.mode, Mode::Shared);
        assert_eq!(config.max_shared_body, 64 * 1024);
    }
}
