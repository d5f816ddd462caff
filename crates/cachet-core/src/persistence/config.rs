//! `[persistence]`: where dumps go, how often, and whether to restore.

use crate::config::units::de_field;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the cache is dumped and when, from `[persistence]` or code.
///
/// ```
/// use cachet_core::PersistenceConfig;
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

    /// Whether building the cache restores the dump file (default `true`).
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

    /// Whether building the cache restores the dump file.
    pub fn restores(&self) -> bool {
        self.restore
    }

    /// How many previous dumps are kept.
    pub fn backups(&self) -> usize {
        self.keep_backups
    }
}
