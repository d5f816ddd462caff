//! A shared Redis tier for [cachet](https://docs.rs/cachet): when one
//! server is not enough, every instance of an application shares one Redis.
//!
//! - **Tiered** (the default): each instance keeps its memory (the in-memory store) in
//!   front of Redis. A miss in memory checks Redis before the origin; a
//!   stored response goes to both (bodies over `max_shared_body` stay in
//!   memory, and Redis holds a marker so purges still find them).
//! - **Shared**: Redis only, for strict consistency between instances.
//!
//! Every purge — after a `POST`, of a tag, a URI, a pattern, a key, a whole
//! cache — reaches every instance's memory through a Redis channel. A Redis
//! that is down, slow or killed never fails a request: lookups it cannot
//! answer are misses, stores it cannot take stay in memory, and `/health`
//! says `degraded` until it is back (an instance that lost the channel then
//! empties its memory, since it may have missed purges).
//!
//! One Redis, or a Redis Cluster (`cluster = ["redis://host:port", ...]`,
//! its startup nodes): on a cluster each key goes to its slot's master, `SCAN`
//! walks every master, and purges travel on the cluster's channel.
//!
//! Configure it with a `[redis]` section (or `CACHET_REDIS_URL` /
//! `REDIS_URL`, or `CACHET_REDIS_CLUSTER`) and pass the builder through
//! [`install`]:
//!
//! ```no_run
//! use cachet_core::config::ConfigFile;
//! use cachet_core::CacheBuilder;
//! use cachet_redis::RedisConfig;
//!
//! # fn main() -> Result<(), cachet_core::ConfigError> {
//! let mut file = ConfigFile::parse(
//!     r#"
//!     [identity]
//!     secret_env = "CACHET_SECRET"   # the same on every instance
//!
//!     [redis]
//!     url = "redis://127.0.0.1:6379/0"
//!     prefix = "shop:"
//!
//!     [[rules]]
//!     path = "^/api/products"
//!     ttl = "5m"
//!     "#,
//! )?;
//! let builder = CacheBuilder::from_config(&mut file)?;
//! let redis = RedisConfig::from_config(&mut file)?;
//! file.finish()?;
//! let cache = cachet_redis::install(builder, redis)?.build()?;
//! # drop(cache);
//! # Ok(())
//! # }
//! ```
//!
//! Runnable without a Redis server (the tier starts down, and serves from
//! memory and the origin until Redis answers):
//!
//! ```
//! use cachet_core::CacheBuilder;
//!
//! let redis = cachet_redis::RedisConfig::new("redis://127.0.0.1:1/0");
//! let cache = cachet_redis::install_with_env(CacheBuilder::default(), Some(redis), |_| None)?.build()?;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cachet_core::stats::Health::Degraded { degraded } = cache.health().await else {
//!     unreachable!("no Redis on port 1")
//! };
//! assert!(degraded.contains("redis at redis://127.0.0.1:1/0"));
//! # });
//! # Ok::<(), cachet_core::ConfigError>(())
//! ```

mod config;
mod layout;
mod link;
mod listen;
mod store;

pub use self::config::{Mode, RedisConfig};
pub use self::store::RedisStore;

use cachet_core::{CacheBuilder, ConfigError};

/// Puts the Redis tier under `builder` when `config` is given (the
/// `[redis]` section: [`RedisConfig::from_config`]) or the environment
/// names a Redis; otherwise returns
/// `builder` as it was. The environment overrides where the section points:
/// `CACHET_REDIS_URL` (else `REDIS_URL`) names one Redis,
/// `CACHET_REDIS_CLUSTER` the comma-separated startup nodes of a cluster
/// (setting both `CACHET_` variables is an error).
pub fn install(
    builder: CacheBuilder,
    config: Option<RedisConfig>,
) -> Result<CacheBuilder, ConfigError> {
    install_with_env(builder, config, |name| std::env::var(name).ok())
}

/// The variables that name a Redis (see [`install`]).
pub const ENV_VARIABLES: [&str; 3] = ["CACHET_REDIS_URL", "REDIS_URL", "CACHET_REDIS_CLUSTER"];

/// Whether [`install`] would put the tier in: a `[redis]` section, or a
/// variable of [`ENV_VARIABLES`] set.
pub fn is_named(section: Option<&RedisConfig>, env: impl Fn(&str) -> Option<String>) -> bool {
    section.is_some() || ENV_VARIABLES.iter().any(|name| env(name).is_some())
}

/// [`install`], reading the environment through `env` (a name to its value).
pub fn install_with_env(
    builder: CacheBuilder,
    section: Option<RedisConfig>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<CacheBuilder, ConfigError> {
    let url = ["CACHET_REDIS_URL", "REDIS_URL"]
        .into_iter()
        .find_map(|name| env(name).map(|url| (name, url)));
    let cluster = env("CACHET_REDIS_CLUSTER");
    if section.is_none() && url.is_none() && cluster.is_none() {
        return Ok(builder);
    }
    let mut config = section.unwrap_or_default();
    let env_error = |variable: &str, reason: String| ConfigError::Env {
        variable: variable.to_owned(),
        reason,
    };
    match (url, cluster) {
        (Some(("CACHET_REDIS_URL", _)), Some(_)) => {
            return Err(env_error(
                "CACHET_REDIS_CLUSTER",
                "`CACHET_REDIS_URL` is set too: name one Redis or a cluster, not both".into(),
            ));
        }
        (_, Some(nodes)) => {
            config.cluster = nodes
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .map(str::to_owned)
                .collect();
            if config.cluster.is_empty() {
                return Err(env_error(
                    "CACHET_REDIS_CLUSTER",
                    "name at least one startup node".into(),
                ));
            }
            config
                .check()
                .map_err(|error| env_error("CACHET_REDIS_CLUSTER", error.to_string()))?;
        }
        (Some((name, url)), None) => {
            config.url = url.trim().to_owned();
            config.cluster.clear();
            config
                .check()
                .map_err(|error| env_error(name, error.to_string()))?;
        }
        (None, None) => {}
    }
    Ok(builder.store_with(RedisStore::maker(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache's value store says of itself.
    fn info(cache: &cachet_core::Cache) -> cachet_core::values::ValuesInfo {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(cache.values().info())
    }

    #[test]
    fn the_environment_enables_and_overrides() {
        let none = install_with_env(CacheBuilder::default(), None, |_| None).unwrap();
        assert!(!info(&none.build().unwrap()).shared);

        let env = |name: &str| (name == "REDIS_URL").then(|| "redis://127.0.0.1:1/3".to_owned());
        let cache = install_with_env(CacheBuilder::default(), None, env)
            .unwrap()
            .build()
            .unwrap();
        assert!(info(&cache).shared);

        let bad = |name: &str| (name == "CACHET_REDIS_URL").then(|| "http://x".to_owned());
        let error = install_with_env(CacheBuilder::default(), None, bad).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable `CACHET_REDIS_URL`"),
            "{error}"
        );

        // A cluster from the environment replaces the section's server.
        let nodes = |name: &str| {
            (name == "CACHET_REDIS_CLUSTER")
                .then(|| "redis://127.0.0.1:1, redis://127.0.0.1:2".to_owned())
        };
        let section = RedisConfig::new("redis://127.0.0.1:3/0");
        let cache = install_with_env(CacheBuilder::default(), Some(section), nodes)
            .unwrap()
            .build()
            .unwrap();
        let described = info(&cache).store;
        assert!(
            described.contains("the cluster of redis://127.0.0.1:1, redis://127.0.0.1:2"),
            "{described}"
        );
        for (variable, value) in [
            ("CACHET_REDIS_CLUSTER", " , "),
            ("CACHET_REDIS_CLUSTER", "redis://127.0.0.1:1/4"),
        ] {
            let env = |name: &str| (name == variable).then(|| value.to_owned());
            let error = install_with_env(CacheBuilder::default(), None, env).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with("environment variable `CACHET_REDIS_CLUSTER`"),
                "{value}: {error}"
            );
        }
        let both = |name: &str| match name {
            "CACHET_REDIS_URL" => Some("redis://127.0.0.1:1".to_owned()),
            "CACHET_REDIS_CLUSTER" => Some("redis://127.0.0.1:2".to_owned()),
            _ => None,
        };
        assert!(install_with_env(CacheBuilder::default(), None, both).is_err());
    }

    #[test]
    fn per_user_rules_need_a_shared_secret() {
        let builder =
            CacheBuilder::from_toml("[[rules]]\npath = '^/me'\nvary_by_user = true").unwrap();
        let redis = RedisConfig::new("redis://127.0.0.1:1");
        let error = install_with_env(builder, Some(redis), |_| None)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("secret_env"), "{error}");
    }
}
