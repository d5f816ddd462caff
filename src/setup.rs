//! [`Config`]: a whole configuration file, read once, each section handed
//! to its owner.

use cachet_admin::{Admin, AdminConfig};
use cachet_core::config::ConfigFile;
use cachet_core::persistence::{Persistence, PersistenceConfig};
use cachet_core::{Cache, CacheBuilder, ConfigError};

/// Every section of a configuration file, read by its owner: the cache's
/// own (`[caches.*]`, `[[rules]]`, `[identity]`, `[headers]`, `[tags]`,
/// `[security]`) into a [`CacheBuilder`], `[persistence]` into a
/// [`PersistenceConfig`], `[admin]` into an [`AdminConfig`], `[redis]`
/// (feature `redis`) into a `RedisConfig` and `[memcached]` (feature
/// `memcached`) into a `MemcachedConfig`. An unknown section is an error
/// naming it; so is a tier's section in a build without it, and `[redis]`
/// with `[memcached]` (a cache has one shared tier).
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
    /// `[memcached]`, if the file has one.
    #[cfg(feature = "memcached")]
    pub memcached: Option<cachet_memcached::MemcachedConfig>,
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
        if file.contains("redis") && file.contains("memcached") {
            return Err(one_shared_tier("`[redis]` is configured too"));
        }
        #[cfg(feature = "redis")]
        let redis = cachet_redis::RedisConfig::from_config(file)?;
        #[cfg(not(feature = "redis"))]
        if file.take("redis").is_some() {
            return Err(not_built_in("redis", "url", "Redis"));
        }
        #[cfg(feature = "memcached")]
        let memcached = cachet_memcached::MemcachedConfig::from_config(file)?;
        #[cfg(not(feature = "memcached"))]
        if file.take("memcached").is_some() {
            return Err(not_built_in("memcached", "servers", "Memcached"));
        }
        Ok(Self {
            cache,
            persistence,
            admin,
            #[cfg(feature = "redis")]
            redis,
            #[cfg(feature = "memcached")]
            memcached,
        })
    }

    /// Applies the environment variables that override the file:
    /// `CACHET_MAX_BYTES`, `CACHET_DUMP_FILE`, `CACHET_AUTO_DUMP_INTERVAL`
    /// (and, in [`build`](Self::build) with the `redis` feature,
    /// `CACHET_REDIS_URL`, `REDIS_URL`, `CACHET_REDIS_CLUSTER`; with the
    /// `memcached` feature, `CACHET_MEMCACHED_SERVERS`, `MEMCACHED_HOST`,
    /// `MEMCACHED_PORT`).
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        self.cache = self.cache.from_env()?;
        self.persistence = self.persistence.from_env()?;
        Ok(self)
    }

    /// Builds the cache (on the Redis tier when `[redis]` or the
    /// environment names one, with the `redis` feature; on the Memcached
    /// tier likewise, with `memcached`), its persistence
    /// layer and its management API. No I/O: restore a dump with
    /// [`Persistence::restore`], start the auto-dump with
    /// [`Persistence::start_auto_dump`].
    pub fn build(self) -> Result<Built, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        #[cfg(all(feature = "redis", feature = "memcached"))]
        if cachet_redis::is_named(self.redis.as_ref(), env)
            && cachet_memcached::is_named(self.memcached.as_ref(), env)
        {
            return Err(one_shared_tier(
                "Redis is named too (`[redis]` or its environment variables)",
            ));
        }
        let builder = self.cache;
        #[cfg(feature = "redis")]
        let builder = cachet_redis::install_with_env(builder, self.redis, env)?;
        #[cfg(feature = "memcached")]
        let builder = cachet_memcached::install_with_env(builder, self.memcached, env)?;
        let _ = env;
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

/// `[memcached]` beside a Redis tier.
fn one_shared_tier(why: &str) -> ConfigError {
    ConfigError::Section {
        section: "memcached".into(),
        field: "servers".into(),
        reason: format!("{why}: a cache has one shared tier, Redis or Memcached"),
    }
}

/// A tier's section in a build without the tier.
#[cfg(not(all(feature = "redis", feature = "memcached")))]
fn not_built_in(section: &str, field: &str, tier: &str) -> ConfigError {
    ConfigError::Section {
        section: section.into(),
        field: field.into(),
        reason: format!(
            "this program has no {tier} tier built in: build cachet with its `{section}` feature"
        ),
    }
}
