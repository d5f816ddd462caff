//! [`Config`]: a whole configuration file, read once, each section handed
//! to its owner.

use cachet_admin::{Admin, AdminConfig};
use cachet_core::config::ConfigFile;
use cachet_core::persistence::{Persistence, PersistenceConfig};
use cachet_core::{Cache, CacheBuilder, ConfigError};

/// Every section of a configuration file, read by its owner: the cache's
/// own (`[caches.*]`, `[[rules]]`, `[identity]`, `[headers]`, `[tags]`,
/// `[security]`) into a [`CacheBuilder`], `[persistence]` into a
/// [`PersistenceConfig`], `[admin]` into an [`AdminConfig`], and `[redis]`
/// (feature `redis`) into a `RedisConfig`. An unknown section is an error
/// naming it; so is `[redis]` in a build without the Redis tier.
///
/// Change what you need (a clock, a store) on the public fields, then
/// [`build`](Self::build):
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let config = cachet::Config::from_toml(r#"
///     [[rules]]
///     path = '^/api/'
///     ttl = "1m"
///
///     [admin]
///     auth = "none"
///
///     [persistence]
///     auto_dump_interval = "5m"
/// "#)?;
/// let built = config.build()?;
/// // What a dump would restore, before serving (no dump file here).
/// let report = built.persistence.restore();
/// assert_eq!(report.restored, 0);
/// assert!(built.admin.config().is_open());
/// assert_eq!(built.cache.rules().len(), 1);
/// # Ok::<(), cachet::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Config {
    /// The cache's own sections.
    pub cache: CacheBuilder,
    /// `[persistence]`.
    pub persistence: PersistenceConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[redis]`, if the file has one.
    #[cfg(feature = "redis")]
    pub redis: Option<cachet_redis::RedisConfig>,
}

/// What [`Config::build`] makes: the cache, its persistence layer and its
/// management API, each configured by its section.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Built {
    /// The cache.
    pub cache: Cache,
    /// Dumps and restores of it (nothing is restored until
    /// [`Persistence::restore`] is called).
    pub persistence: Persistence,
    /// Its management API, with the persistence layer for `/dump`.
    pub admin: Admin,
}

impl Config {
    /// Reads every section of TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::parse(text)?;
        let config = Self::from_config(&mut file)?;
        file.finish()?;
        Ok(config)
    }

    /// Takes every section cachet owns out of `file`, leaving a program's
    /// own (a `[proxy]`) for it to take before [`ConfigFile::finish`].
    pub fn from_config(file: &mut ConfigFile) -> Result<Self, ConfigError> {
        let cache = CacheBuilder::from_config(file)?;
        let persistence = PersistenceConfig::from_config(file)?;
        let admin = AdminConfig::from_config(file)?;
        #[cfg(feature = "redis")]
        let redis = cachet_redis::RedisConfig::from_config(file)?;
        #[cfg(not(feature = "redis"))]
        if file.take("redis").is_some() {
            return Err(ConfigError::Section {
                section: "redis".into(),
                field: "url".into(),
                reason: "this program has no Redis tier built in: build cachet with its `redis` \
                         feature"
                    .into(),
            });
        }
        Ok(Self {
            cache,
            persistence,
            admin,
            #[cfg(feature = "redis")]
            redis,
        })
    }

    /// Applies the environment variables that override the file:
    /// `CACHET_MAX_BYTES`, `CACHET_DUMP_FILE`, `CACHET_AUTO_DUMP_INTERVAL`
    /// (and, in [`build`](Self::build) with the `redis` feature,
    /// `CACHET_REDIS_URL`, `REDIS_URL`, `CACHET_REDIS_CLUSTER`).
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        self.cache = self.cache.from_env()?;
        self.persistence = self.persistence.from_env()?;
        Ok(self)
    }

    /// Builds the cache (on the Redis tier when `[redis]` or the
    /// environment names one, with the `redis` feature), its persistence
    /// layer and its management API. No I/O: restore a dump with
    /// [`Persistence::restore`], start the auto-dump with
    /// [`Persistence::start_auto_dump`].
    pub fn build(self) -> Result<Built, ConfigError> {
        #[cfg(feature = "redis")]
        let builder = cachet_redis::install(self.cache, self.redis)?;
        #[cfg(not(feature = "redis"))]
        let builder = self.cache;
        let cache = builder.build()?;
        let persistence = Persistence::new(&cache, self.persistence);
        let admin = Admin::new(cache.clone(), self.admin).persistence(persistence.clone());
        Ok(Built {
            cache,
            persistence,
            admin,
        })
    }
}
