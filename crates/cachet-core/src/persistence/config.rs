//! `[persistence]`: where dumps go, how often, and whether to restore.

use crate::config::{ConfigError, ConfigFile};
use crate::units::{de_field, parse_duration};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cache is dumped and when, from `[persistence]` or code.
///
/// ```
/// use cachet_core::persistence::PersistenceConfig;
/// use std::time::Duration;
/// let config = PersistenceConfig::new()
///     .dump_file("/var/lib/cachet/dump")
///     .auto_dump_interval(Duration::from_secs(300));
/// assert!(config.restores());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct PersistenceConfig {
    dump_file: Option<PathBuf>,
    #[serde(deserialize_with = "de_field::duration")]
    auto_dump_interval: Duration,
    restore: bool,
    keep_backups: usize,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            dump_file: None,
            auto_dump_interval: Duration::ZERO,
            restore: true,
            keep_backups: 1,
        }
    }
}

impl PersistenceConfig {
    /// No dump file: nothing is dumped or restored.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dump file (`<file>.tmp` is written beside it, the previous dump
    /// kept as `<file>.bak`).
    pub fn dump_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dump_file = Some(path.into());
        self
    }

    /// How often the running cache dumps itself (zero, the default: never
    /// on its own).
    pub fn auto_dump_interval(mut self, interval: Duration) -> Self {
        self.auto_dump_interval = interval;
        self
    }

    /// Whether [`Persistence::restore`](crate::persistence::Persistence::restore) restores
    /// the dump file (default `true`).
    pub fn restore(mut self, on: bool) -> Self {
        self.restore = on;
        self
    }

    /// How many previous dumps are kept (`<file>.bak`, `<file>.bak.2`, …;
    /// default 1, zero for none).
    pub fn keep_backups(mut self, count: usize) -> Self {
        self.keep_backups = count;
        self
    }

    /// The dump file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.dump_file.as_deref()
    }

    /// The auto-dump interval, if auto-dump is on.
    pub fn interval(&self) -> Option<Duration> {
        (!self.auto_dump_interval.is_zero()).then_some(self.auto_dump_interval)
    }

    /// Whether [`Persistence::restore`](crate::persistence::Persistence::restore) restores
    /// the dump file.
    pub fn restores(&self) -> bool {
        self.restore
    }

    /// How many previous dumps are kept.
    pub fn backups(&self) -> usize {
        self.keep_backups
    }

    /// The `[persistence]` section of `file` (defaults without one).
    pub fn from_config(file: &mut ConfigFile) -> Result<Self, ConfigError> {
        Ok(file.section("persistence")?.unwrap_or_default())
    }

    /// Applies the environment variables that override where and when the
    /// cache is dumped, read through `lookup` (a name to its value):
    /// `CACHET_DUMP_FILE` and `CACHET_AUTO_DUMP_INTERVAL` (a duration, `0`
    /// for off). A bad value is an error naming the variable.
    ///
    /// ```
    /// use cachet_core::persistence::PersistenceConfig;
    /// let env = |name: &str| (name == "CACHET_DUMP_FILE").then(|| "/tmp/dump".to_owned());
    /// let config = PersistenceConfig::new().env_overrides(env)?;
    /// assert_eq!(config.file(), Some(std::path::Path::new("/tmp/dump")));
    ///
    /// let bad = |name: &str| (name == "CACHET_AUTO_DUMP_INTERVAL").then(|| "often".to_owned());
    /// let error = PersistenceConfig::new().env_overrides(bad).unwrap_err();
    /// assert!(error.to_string().starts_with("environment variable `CACHET_AUTO_DUMP_INTERVAL`"));
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub fn env_overrides(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let error = |variable: &str, reason: String| ConfigError::Env {
            variable: variable.to_owned(),
            reason,
        };
        if let Some(file) = lookup("CACHET_DUMP_FILE") {
            if file.trim().is_empty() {
                return Err(error("CACHET_DUMP_FILE", "is empty".into()));
            }
            self = self.dump_file(file.trim());
        }
        if let Some(text) = lookup("CACHET_AUTO_DUMP_INTERVAL") {
            let interval = parse_duration(&text)
                .map_err(|reason| error("CACHET_AUTO_DUMP_INTERVAL", reason))?;
            self = self.auto_dump_interval(interval);
        }
        Ok(self)
    }

    /// [`env_overrides`](Self::env_overrides) from the process's environment.
    pub fn from_env(self) -> Result<Self, ConfigError> {
        self.env_overrides(|name| std::env::var(name).ok())
    }
}
