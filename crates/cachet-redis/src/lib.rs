//! A shared Redis tier for [cachet](https://docs.rs/cachet): when one
//! server is not enough, every instance of an application shares one Redis.
//!
//! - **Tiered** (the default): each instance keeps its memory (moka) in
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
//! Configure it with a `[redis]` section (or `CACHET_REDIS_URL` /
//! `REDIS_URL`) and pass the builder through [`install`]:
//!
//! ```no_run
//! use cachet_core::CacheBuilder;
//!
//! # fn main() -> Result<(), cachet_core::ConfigError> {
//! let builder = CacheBuilder::from_toml(
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
//! let cache = cachet_redis::install(builder)?.build()?;
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
//! let builder = CacheBuilder::from_toml("[redis]\nurl = 'redis://127.0.0.1:1/0'")?;
//! let cache = cachet_redis::install_with_env(builder, |_| None)?.build()?;
//! let health = cache.storage().degraded().unwrap();
//! assert!(health.contains("redis at redis://127.0.0.1:1/0"));
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

/// Puts the Redis tier under `builder` when its configuration has a
/// `[redis]` section or the environment names a Redis (`CACHET_REDIS_URL`,
/// else `REDIS_URL`, overriding the section's `url`); otherwise returns
/// `builder` as it was.
pub fn install(builder: CacheBuilder) -> Result<CacheBuilder, ConfigError> {
    install_with_env(builder, |name| std::env::var(name).ok())
}

/// [`install`], reading the environment through `env` (a name to its value).
pub fn install_with_env(
    mut builder: CacheBuilder,
    env: impl Fn(&str) -> Option<String>,
) -> Result<CacheBuilder, ConfigError> {
    let section = builder.take_redis_section();
    let from_env = ["CACHET_REDIS_URL", "REDIS_URL"]
        .into_iter()
        .find_map(|name| env(name).map(|url| (name, url)));
    if section.is_none() && from_env.is_none() {
        return Ok(builder);
    }
    let mut config = match section {
        Some(section) => RedisConfig::from_section(section)?,
        None => RedisConfig::default(),
    };
    if let Some((name, url)) = from_env {
        config.url = url.trim().to_owned();
        config.check().map_err(|error| ConfigError::Env {
            variable: name.to_owned(),
            reason: error.to_string(),
        })?;
    }
    Ok(builder.store_with(RedisStore::maker(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_enables_and_overrides() {
        let none = install_with_env(CacheBuilder::default(), |_| None).unwrap();
        assert!(!none.build().unwrap().storage().is_shared());

        let env = |name: &str| (name == "REDIS_URL").then(|| "redis://127.0.0.1:1/3".to_owned());
        let cache = install_with_env(CacheBuilder::default(), env)
            .unwrap()
            .build()
            .unwrap();
        assert!(cache.storage().is_shared());

        let bad = |name: &str| (name == "CACHET_REDIS_URL").then(|| "http://x".to_owned());
        let error = install_with_env(CacheBuilder::default(), bad).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("environment variable `CACHET_REDIS_URL`"),
            "{error}"
        );
    }

    #[test]
    fn a_section_without_the_tier_is_an_error() {
        let error = CacheBuilder::from_toml("[redis]\nurl = 'redis://127.0.0.1:1'")
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            error.to_string().contains("no Redis tier built in"),
            "{error}"
        );
    }

    #[test]
    fn per_user_rules_need_a_shared_secret() {
        let text =
            "[redis]\nurl = 'redis://127.0.0.1:1'\n[[rules]]\npath = '^/me'\nvary_by_user = true";
        let builder = CacheBuilder::from_toml(text).unwrap();
        let error = install_with_env(builder, |_| None)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("secret_env"), "{error}");
    }
}
