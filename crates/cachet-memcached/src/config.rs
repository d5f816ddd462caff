//! The `[memcached]` section and the variables that override it.

use cachet_core::config::{parse_section, ConfigFile};
use cachet_core::config::{DurationValue, SizeValue};
use cachet_core::ConfigError;
use serde::Deserialize;
use std::time::Duration;

/// Memcached's default largest item (its `-I` option).
pub const DEFAULT_ITEM_SIZE_MAX: u64 = 1024 * 1024;

/// What a stored entry adds to its body at most, besides its headers: the
/// format, the anchor and the key's length (the key itself is counted).
const ENTRY_OVERHEAD: u64 = 64;

/// Whether instances keep a local tier in front of Memcached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Memory (the in-memory store) first, then Memcached shared by every instance: a miss
    /// in memory checks Memcached before the origin, and a stored response
    /// goes to both. Purges reach every instance's memory through the
    /// invalidation log, within `poll_interval`.
    #[default]
    Tiered,
    /// Memcached only, no local tier: every instance sees the same entries
    /// at the same time, at the cost of a round trip per lookup.
    Shared,
}

/// How the Memcached tier connects and what it shares (`[memcached]`).
///
/// ```
/// use cachet_memcached::{MemcachedConfig, Mode};
/// use std::time::Duration;
///
/// let config = MemcachedConfig::from_toml(
///     r#"
///     servers = ["10.0.0.5:11211", "10.0.0.6:11211"]
///     prefix = "shop:"
///     poll_interval = "50ms"
///     "#,
/// )?;
/// assert_eq!(config.mode, Mode::Tiered);
/// assert_eq!(config.poll_interval, Duration::from_millis(50));
/// assert!(MemcachedConfig::from_toml("servers = []").is_err());
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// `host:port` of every server. Keys spread over them by rendezvous
    /// hashing, so adding a server moves about 1/N of them; the first
    /// server by the same hash of the prefix holds the invalidation log
    /// and the key and tag indexes.
    pub servers: Vec<String>,
    /// Put in front of every key, so that several applications (or
    /// environments) share one Memcached apart.
    pub prefix: String,
    /// Tiered (memory, then Memcached) or shared (Memcached only).
    pub mode: Mode,
    /// How long connecting may take before a server counts as down.
    pub connect_timeout: Duration,
    /// How long a command may take before it counts as a miss.
    pub command_timeout: Duration,
    /// Connections kept open to each server.
    pub pool_size: usize,
    /// Bodies larger than this stay in the instance's memory (tiered
    /// mode): Memcached holds a marker for them, so purges still find them.
    /// Must leave room for the headers below `item_size_max`.
    pub max_shared_body: u64,
    /// The largest item the servers take (their `-I`; 1 MiB by default).
    pub item_size_max: u64,
    /// How often each instance reads the invalidation log: a purge on one
    /// instance reaches the others' memory within this (plus a round trip).
    pub poll_interval: Duration,
    /// The bytes each named cache's key registry and tag index may take in
    /// Memcached, each (whole items of `item_size_max`).
    pub index_bytes: u64,
    /// One origin call per cold key across all instances: the first takes
    /// a lock in Memcached (`add`), the others wait (up to the rule's
    /// `lock_timeout`) for its entry. Off by default.
    pub distributed_lock: bool,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        Self {
            servers: vec!["127.0.0.1:11211".into()],
            prefix: "cachet:".into(),
            mode: Mode::Tiered,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(250),
            pool_size: 8,
            max_shared_body: 960 * 1024,
            item_size_max: DEFAULT_ITEM_SIZE_MAX,
            poll_interval: Duration::from_millis(100),
            index_bytes: 16 * DEFAULT_ITEM_SIZE_MAX,
            distributed_lock: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemcachedDto {
    servers: Option<Vec<String>>,
    prefix: Option<String>,
    mode: Option<Mode>,
    connect_timeout: Option<DurationValue>,
    command_timeout: Option<DurationValue>,
    pool_size: Option<usize>,
    max_shared_body: Option<SizeValue>,
    item_size_max: Option<SizeValue>,
    poll_interval: Option<DurationValue>,
    index_bytes: Option<SizeValue>,
    distributed_lock: Option<bool>,
}

fn error(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Section {
        section: "memcached".into(),
        field: field.into(),
        reason: reason.into(),
    }
}

impl MemcachedConfig {
    /// The defaults, on `servers`.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Self {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Reads a `[memcached]` section's body.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let value: toml::Table =
            text.parse()
                .map_err(|error: toml::de::Error| ConfigError::Syntax {
                    reason: error.to_string().trim().to_owned(),
                })?;
        Self::from_section(toml::Value::Table(value))
    }

    /// Takes and reads the `[memcached]` section of `file`, if it has one.
    pub fn from_config(file: &mut ConfigFile) -> Result<Option<Self>, ConfigError> {
        file.take("memcached").map(Self::from_section).transpose()
    }

    /// Reads the `[memcached]` section of a configuration.
    pub fn from_section(section: toml::Value) -> Result<Self, ConfigError> {
        let dto: MemcachedDto = parse_section("memcached", section)?;
        let mut config = Self::default();
        if let Some(servers) = dto.servers {
            config.servers = servers;
        }
        if let Some(prefix) = dto.prefix {
            config.prefix = prefix;
        }
        if let Some(mode) = dto.mode {
            config.mode = mode;
        }
        let duration =
            |field: &str, value: DurationValue| value.parse().map_err(|e| error(field, e));
        let size = |field: &str, value: SizeValue| value.parse().map_err(|e| error(field, e));
        if let Some(value) = dto.connect_timeout {
            config.connect_timeout = duration("connect_timeout", value)?;
        }
        if let Some(value) = dto.command_timeout {
            config.command_timeout = duration("command_timeout", value)?;
        }
        if let Some(value) = dto.poll_interval {
            config.poll_interval = duration("poll_interval", value)?;
        }
        if let Some(value) = dto.pool_size {
            config.pool_size = value;
        }
        if let Some(value) = dto.max_shared_body {
            config.max_shared_body = size("max_shared_body", value)?;
        }
        if let Some(value) = dto.item_size_max {
            config.item_size_max = size("item_size_max", value)?;
        }
        if let Some(value) = dto.index_bytes {
            config.index_bytes = size("index_bytes", value)?;
        }
        if let Some(on) = dto.distributed_lock {
            config.distributed_lock = on;
        }
        config.check()?;
        Ok(config)
    }

    /// Checks what the parts cannot check alone.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(error("servers", "name at least one server (`host:port`)"));
        }
        for server in &self.servers {
            let port = server
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
                return Err(error("servers", format!("`{server}` is not `host:port`")));
            }
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
            ("poll_interval", self.poll_interval),
        ] {
            if value.is_zero() {
                return Err(error(field, "it must be above zero"));
            }
        }
        if self.pool_size == 0 {
            return Err(error(
                "pool_size",
                "keep at least one connection per server",
            ));
        }
        // Memcached keys are at most 250 bytes, without spaces or control
        // characters; cachet's own part takes at most 60.
        if self.prefix.len() > 150 || self.prefix.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(error(
                "prefix",
                "a prefix is at most 150 bytes, without spaces or control characters",
            ));
        }
        if self.item_size_max < 64 * 1024 {
            return Err(error(
                "item_size_max",
                "Memcached's items are at least 64 KiB",
            ));
        }
        if self.max_shared_body + ENTRY_OVERHEAD + 16 * 1024 > self.item_size_max {
            return Err(error(
                "max_shared_body",
                format!(
                    "{} bytes leaves no room for the headers in Memcached's {}-byte items \
                     (`item_size_max`): keep it at least 16 KiB below",
                    self.max_shared_body, self.item_size_max
                ),
            ));
        }
        if self.index_bytes < self.item_size_max {
            return Err(error(
                "index_bytes",
                "give the key registry at least one item (`item_size_max`)",
            ));
        }
        Ok(())
    }

    /// How many items each index is spread over.
    pub(crate) fn index_segments(&self) -> u32 {
        u32::try_from(self.index_bytes / self.item_size_max)
            .unwrap_or(u32::MAX)
            .clamp(1, 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        for (text, field) in [
            ("servers = []", "servers"),
            ("servers = ['nowhere']", "servers"),
            ("servers = [':11211']", "servers"),
            ("mode = 'cluster'", "mode"),
            ("command_timeout = 'soon'", "command_timeout"),
            ("poll_interval = 0", "poll_interval"),
            ("pool_size = 0", "pool_size"),
            ("max_shared_body = '1MiB'", "max_shared_body"),
            ("item_size_max = '1KiB'", "item_size_max"),
            ("index_bytes = '1KiB'", "index_bytes"),
            ("prefix = 'a b'", "prefix"),
            ("colour = 'red'", "colour"),
        ] {
            let error = MemcachedConfig::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(&format!("`{field}`")), "{text}: {error}");
            assert!(error.contains("memcached"), "{text}: {error}");
        }
        let config = MemcachedConfig::from_toml(
            "mode = 'shared'\nitem_size_max = '4MiB'\nmax_shared_body = '2MiB'\nindex_bytes = '64MiB'",
        )
        .unwrap();
        assert_eq!(config.mode, Mode::Shared);
        assert_eq!(config.max_shared_body, 2 * 1024 * 1024);
        assert_eq!(config.index_segments(), 16);
    }
}
