//! A shared Memcached tier for [cachet](https://docs.rs/cachet): when one
//! server is not enough and your platform runs Memcached, every instance of
//! an application shares it.
//!
//! - **Tiered** (the default): each instance keeps its memory (the in-memory store) in
//!   front of Memcached. A miss in memory checks Memcached before the
//!   origin; a stored response goes to both (bodies over
//!   `max_shared_body` stay in memory, and Memcached holds a marker so
//!   purges still find them).
//! - **Shared**: Memcached only, for strict consistency between instances.
//!
//! Memcached stores and forgets; this tier adds what it cannot do:
//!
//! - **Purges reach every instance** without pub/sub: each purge is
//!   numbered (`incr`) and written to an invalidation log that every
//!   instance reads every `poll_interval` (100 ms by default). An instance
//!   that cannot follow the log (its server down, a purge evicted, a gap)
//!   empties its memory instead of serving what it may have missed.
//! - **Key listing and pattern purges** through a key registry per cache,
//!   and **tag purges** through a tag index, both bounded in bytes
//!   (`index_bytes`). Every index segment and every entry carries the
//!   cache's *anchor*: an index Memcached evicted is detected and the
//!   anchor replaced, which turns every older entry into a miss — no entry
//!   a purge could not find is ever served. Clearing a cache replaces its
//!   anchor too: one command, never `flush_all` on a server others share.
//! - **Several servers**, keys spread by rendezvous hashing (adding a
//!   server moves about 1/N of them); a down server costs only its keys.
//!
//! A Memcached that is down, slow or killed never fails a request: lookups
//! it cannot answer are misses, stores it cannot take stay in memory, and
//! `/health` says `degraded` until it is back.
//!
//! Configure it with a `[memcached]` section (or `CACHET_MEMCACHED_SERVERS`,
//! or `MEMCACHED_HOST` and `MEMCACHED_PORT`) and pass the builder through
//! [`install`]:
//!
//! ```no_run
//! use cachet_core::config::ConfigFile;
//! use cachet_core::CacheBuilder;
//! use cachet_memcached::MemcachedConfig;
//!
//! # fn main() -> Result<(), cachet_core::ConfigError> {
//! let mut file = ConfigFile::parse(
//!     r#"
//!     [identity]
//!     secret_env = "CACHET_SECRET"   # the same on every instance
//!
//!     [memcached]
//!     servers = ["10.0.0.5:11211", "10.0.0.6:11211"]
//!     prefix = "shop:"
//!
//!     [[rules]]
//!     path = "^/api/products"
//!     ttl = "5m"
//!     "#,
//! )?;
//! let builder = CacheBuilder::from_config(&mut file)?;
//! let memcached = MemcachedConfig::from_config(&mut file)?;
//! file.finish()?;
//! let cache = cachet_memcached::install(builder, memcached)?.build()?;
//! # drop(cache);
//! # Ok(())
//! # }
//! ```
//!
//! Runnable without a Memcached server (the tier starts down, and serves
//! from memory and the origin until Memcached answers):
//!
//! ```
//! use cachet_core::CacheBuilder;
//!
//! let memcached = cachet_memcached::MemcachedConfig::new(["127.0.0.1:1"]);
//! let cache = cachet_memcached::install_with_env(CacheBuilder::default(), Some(memcached), |_| None)?.build()?;
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cachet_core::stats::Health::Degraded { degraded } = cache.health().await else {
//!     unreachable!("no Memcached on port 1")
//! };
//! assert!(degraded.contains("memcached at 127.0.0.1:1"));
//! # });
//! # Ok::<(), cachet_core::ConfigError>(())
//! ```

mod config;
mod layout;
mod log;
mod servers;
mod store;
mod tier;

pub use self::config::{MemcachedConfig, Mode, DEFAULT_ITEM_SIZE_MAX};
pub use self::store::{MemcachedStore, TierCounts};

use cachet_core::{CacheBuilder, ConfigError};

/// Puts the Memcached tier under `builder` when `config` is given (the
/// `[memcached]` section: [`MemcachedConfig::from_config`]) or the
/// environment names servers; otherwise returns `builder` as it was. The
/// environment overrides the section's servers: `CACHET_MEMCACHED_SERVERS`
/// (comma-separated `host:port`) or, when it is unset, `MEMCACHED_HOST`
/// and `MEMCACHED_PORT` (11211 when unset).
pub fn install(
    builder: CacheBuilder,
    config: Option<MemcachedConfig>,
) -> Result<CacheBuilder, ConfigError> {
    install_with_env(builder, config, |name| std::env::var(name).ok())
}

/// The variables that name Memcached servers (see [`install`]).
pub const ENV_VARIABLES: [&str; 3] = [
    "CACHET_MEMCACHED_SERVERS",
    "MEMCACHED_HOST",
    "MEMCACHED_PORT",
];

/// Whether [`install`] would put the tier in: a `[memcached]` section, or
/// a variable of [`ENV_VARIABLES`] set.
pub fn is_named(section: Option<&MemcachedConfig>, env: impl Fn(&str) -> Option<String>) -> bool {
    section.is_some() || ENV_VARIABLES.iter().any(|name| env(name).is_some())
}

/// [`install`], reading the environment through `env` (a name to its value).
pub fn install_with_env(
    builder: CacheBuilder,
    section: Option<MemcachedConfig>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<CacheBuilder, ConfigError> {
    let env_error = |variable: &str, reason: String| ConfigError::Env {
        variable: variable.to_owned(),
        reason,
    };
    let servers = match env("CACHET_MEMCACHED_SERVERS") {
        Some(list) => Some((
            "CACHET_MEMCACHED_SERVERS",
            list.split(',')
                .map(str::trim)
                .filter(|server| !server.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )),
        None => match (env("MEMCACHED_HOST"), env("MEMCACHED_PORT")) {
            (Some(host), port) => {
                let port = port.unwrap_or_else(|| "11211".into());
                Some((
                    "MEMCACHED_HOST",
                    vec![format!("{}:{}", host.trim(), port.trim())],
                ))
            }
            (None, Some(_)) => {
                return Err(env_error(
                    "MEMCACHED_PORT",
                    "set `MEMCACHED_HOST` too (the port alone names no server)".into(),
                ))
            }
            (None, None) => None,
        },
    };
    if section.is_none() && servers.is_none() {
        return Ok(builder);
    }
    let mut config = section.unwrap_or_default();
    if let Some((variable, servers)) = servers {
        config.servers = servers;
        config
            .check()
            .map_err(|error| env_error(variable, error.to_string()))?;
    }
    Ok(builder.store_with(MemcachedStore::maker(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the cache's value store says of itself.
    fn described(cache: &cachet_core::Cache) -> (String, bool) {
        let info = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(cache.values().info());
        (info.store, info.shared)
    }

    #[test]
    fn the_environment_enables_and_overrides() {
        let none = install_with_env(CacheBuilder::default(), None, |_| None).unwrap();
        assert!(!described(&none.build().unwrap()).1);

        for (vars, expected) in [
            (
                vec![("CACHET_MEMCACHED_SERVERS", "127.0.0.1:1, 127.0.0.1:2")],
                "memory, then Memcached at 127.0.0.1:1, 127.0.0.1:2",
            ),
            (
                vec![("MEMCACHED_HOST", "127.0.0.1"), ("MEMCACHED_PORT", "3")],
                "memory, then Memcached at 127.0.0.1:3",
            ),
            (
                vec![("MEMCACHED_HOST", "127.0.0.1")],
                "memory, then Memcached at 127.0.0.1:11211",
            ),
            (
                vec![
                    ("CACHET_MEMCACHED_SERVERS", "127.0.0.1:4"),
                    ("MEMCACHED_HOST", "10.0.0.1"),
                ],
                "memory, then Memcached at 127.0.0.1:4",
            ),
        ] {
            let env = |name: &str| {
                vars.iter()
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| (*value).to_owned())
            };
            let cache = install_with_env(CacheBuilder::default(), None, env)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(described(&cache), (expected.to_owned(), true), "{vars:?}");
        }

        for (variable, value) in [
            ("CACHET_MEMCACHED_SERVERS", " , "),
            ("CACHET_MEMCACHED_SERVERS", "nowhere"),
            ("MEMCACHED_PORT", "11211"),
        ] {
            let env = |name: &str| (name == variable).then(|| value.to_owned());
            let error = install_with_env(CacheBuilder::default(), None, env).unwrap_err();
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("environment variable `{variable}`")),
                "{value}: {error}"
            );
        }
    }

    #[test]
    fn per_user_rules_need_a_shared_secret() {
        let builder =
            CacheBuilder::from_toml("[[rules]]\npath = '^/me'\nvary_by_user = true").unwrap();
        let memcached = MemcachedConfig::new(["127.0.0.1:1"]);
        let error = install_with_env(builder, Some(memcached), |_| None)
            .unwrap()
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("secret_env"), "{error}");
    }
}
