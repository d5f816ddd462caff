//! The proxy's configuration: a `[proxy]` section for the listener and the
//! upstream, and the cache's own sections (`[caches.*]`, `[[rules]]`, …) as
//! `cachet-core` reads them.

use cachet_admin::{Admin, AdminConfig};
use cachet_core::clock::MockClock;
use cachet_core::config::ConfigFile;
use cachet_core::config::{parse_header_name, DurationValue, SizeValue};
use cachet_core::persistence::{Persistence, PersistenceConfig};
use cachet_core::{Cache, CacheBuilder, ConfigError, Rule};
use http::{HeaderName, Uri};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the proxy listens when neither the file nor `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Why a configuration cannot be used. Each names what is wrong and where:
/// the section, the field and the reason, for `[proxy]` (and its
/// command-line flags) as for the cache's own sections.
#[derive(Debug, thiserror::Error)]
pub enum ProxyConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A section is wrong (`ConfigError::Section` with `section = "proxy"`
    /// for the proxy's own).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyDto {
    listen: Option<String>,
    upstream: Option<String>,
    connect_timeout: Option<DurationValue>,
    timeout: Option<DurationValue>,
    shutdown_timeout: Option<DurationValue>,
    forwarded_headers: Option<bool>,
    preserve_host: Option<bool>,
    via: Option<String>,
    strip_headers: Option<Vec<String>>,
    header_read_timeout: Option<DurationValue>,
    idle_timeout: Option<DurationValue>,
    max_connections: Option<usize>,
    max_header_bytes: Option<SizeValue>,
    max_headers: Option<usize>,
}

/// Everything the proxy runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The upstream's base URI (`http://host:port`).
    pub upstream: Uri,
    /// How long connecting to the upstream may take (then 502).
    pub connect_timeout: Duration,
    /// How long the upstream may take to answer with a response head (then 504).
    pub timeout: Duration,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Whether to set `X-Forwarded-For`, `-Proto` and `-Host`.
    pub forwarded_headers: bool,
    /// Whether the client's `Host` goes upstream (else the upstream's own).
    pub preserve_host: bool,
    /// The pseudonym in the `Via` header this proxy adds.
    pub via: String,
    /// Request headers removed before the cache sees the request (so they
    /// never reach the upstream unkeyed): [`DEFAULT_STRIP_HEADERS`] unless
    /// configured.
    pub strip_headers: Vec<HeaderName>,
    /// How long a client may take to send a request's head, and to send
    /// its first byte on a new connection (then the connection is closed).
    pub header_read_timeout: Duration,
    /// How long a connection may stay silent with no request waiting for
    /// its response (then it is closed).
    pub idle_timeout: Duration,
    /// How many client connections are served at once; more wait to be
    /// accepted.
    pub max_connections: usize,
    /// The largest request head, in bytes (HTTP/1.1 read buffer, HTTP/2
    /// header list).
    pub max_header_bytes: usize,
    /// How many header fields a request may have (HTTP/1.1).
    pub max_headers: usize,
    /// Where the management API listens (`[admin] listen`), if anywhere:
    /// never the proxied port.
    pub admin_listen: Option<SocketAddr>,
    /// The cache, its rules and named caches.
    pub cache: Cache,
    /// Its dumps (`[persistence]`): restored by `main` before serving.
    pub persistence: Persistence,
    /// Its management API (`[admin]`), with the persistence layer.
    pub admin: Admin,
}

/// Request headers that commonly change what an origin answers (the host,
/// scheme, port or prefix it believes it serves, the URL or method it
/// should use instead) but that no key holds: the proxy removes them from
/// every request before the cache sees it, and sets the `X-Forwarded-*`
/// ones itself from the connection when `forwarded_headers` is on.
pub const DEFAULT_STRIP_HEADERS: [&str; 17] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-scheme",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-ssl",
    "x-forwarded-server",
    "x-real-ip",
    "x-host",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-host",
];

/// What the command line (or a test) says, over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--upstream`.
    pub upstream: Option<String>,
    /// The cache's clock (default: the system clock); tests pass a
    /// `MockClock`.
    pub clock: Option<MockClock>,
}

impl ProxyConfig {
    /// Reads the file at `path` (if any) and applies `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ProxyConfigError> {
        let text = match path {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|source| ProxyConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => String::new(),
        };
        Self::from_toml_with_env(&text, overrides, |name| std::env::var(name).ok())
    }

    /// Reads a configuration from TOML text and applies `overrides`.
    ///
    /// Without `[[rules]]` the proxy caches every path as an RFC 9111 shared
    /// cache: the origin's freshness, the §4.2.2 heuristic otherwise, never
    /// a forced TTL. Keys always include the host.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Self, ProxyConfigError> {
        Self::from_toml_with_env(text, overrides, |_| None)
    }

    /// [`from_toml`](Self::from_toml) with the environment variables that
    /// override the cache's configuration (`CACHET_DUMP_FILE`,
    /// `CACHET_AUTO_DUMP_INTERVAL`, `CACHET_MAX_BYTES`) read through
    /// `env`; [`load`](Self::load) reads the process's environment.
    pub fn from_toml_with_env(
        text: &str,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProxyConfigError> {
        let mut file = ConfigFile::parse(text)?;
        let proxy: ProxyDto = file.section("proxy")?.unwrap_or_default();
        // `listen` is the proxy's; the rest of `[admin]` is the API's.
        let mut admin_section = file.take("admin");
        let admin_listen = match admin_section.as_mut().and_then(toml::Value::as_table_mut) {
            Some(admin) => match admin.remove("listen") {
                Some(toml::Value::String(text)) => Some(text.parse().map_err(|_| {
                    admin_error(format!("{text:?} is not an address like 127.0.0.1:9090"))
                })?),
                Some(_) => {
                    return Err(admin_error(
                        "write it as a string, like \"127.0.0.1:9090\"".into(),
                    ))
                }
                None => None,
            },
            None => None,
        };
        let admin = match admin_section {
            Some(section) => AdminConfig::from_section(section)?,
            None => AdminConfig::default(),
        };
        let has_rules = file.contains("rules");
        let builder = CacheBuilder::from_config(&mut file)?.env_overrides(&env)?;
        let persistence = PersistenceConfig::from_config(&mut file)?.env_overrides(&env)?;
        let redis = cachet_redis::RedisConfig::from_config(&mut file)?;
        let memcached = cachet_memcached::MemcachedConfig::from_config(&mut file)?;
        file.finish()?;
        // `[redis]`, `CACHET_REDIS_URL`, `REDIS_URL` or `CACHET_REDIS_CLUSTER`; or
        // `[memcached]`, `CACHET_MEMCACHED_SERVERS` or `MEMCACHED_HOST`: the shared tier.
        if cachet_redis::is_named(redis.as_ref(), &env)
            && cachet_memcached::is_named(memcached.as_ref(), &env)
        {
            return Err(ProxyConfigError::from(ConfigError::Section {
                section: "memcached".into(),
                field: "servers".into(),
                reason: "Redis is named too (`[redis]` or its environment variables): a cache \
                         has one shared tier, Redis or Memcached"
                    .into(),
            }));
        }
        let builder = cachet_redis::install_with_env(builder, redis, &env)?;
        let mut builder =
            cachet_memcached::install_with_env(builder, memcached, &env)?.key_host(true);
        if let Some(clock) = &overrides.clock {
            builder = builder.clock(clock.clone());
        }
        if !has_rules {
            builder = builder.rule(Rule::new("^/").heuristic_freshness(true));
        }
        let cache = builder.build()?;
        let persistence = Persistence::new(&cache, persistence);
        let admin = Admin::new(cache.clone(), admin).persistence(persistence.clone());

        let listen_text = overrides
            .listen
            .clone()
            .or(proxy.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            proxy_error(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        if admin_listen
            .is_some_and(|admin: SocketAddr| admin.port() != 0 && admin.port() == listen.port())
        {
            return Err(admin_error(
                "the admin API never shares the proxied port; give it a port of its own".into(),
            ));
        }
        let upstream_text = overrides
            .upstream
            .clone()
            .or(proxy.upstream)
            .ok_or_else(|| {
                proxy_error(
                    "upstream",
                    "missing: say where to forward, e.g. --upstream http://127.0.0.1:8000"
                        .to_owned(),
                )
            })?;
        let upstream = upstream_uri(&upstream_text)?;
        Ok(Self {
            listen,
            upstream,
            connect_timeout: duration("connect_timeout", proxy.connect_timeout, 2)?,
            timeout: duration("timeout", proxy.timeout, 30)?,
            shutdown_timeout: duration("shutdown_timeout", proxy.shutdown_timeout, 30)?,
            forwarded_headers: proxy.forwarded_headers.unwrap_or(true),
            preserve_host: proxy.preserve_host.unwrap_or(true),
            via: proxy.via.unwrap_or_else(|| "cachet".to_owned()),
            strip_headers: strip_headers(proxy.strip_headers)?,
            header_read_timeout: duration("header_read_timeout", proxy.header_read_timeout, 10)?,
            idle_timeout: duration("idle_timeout", proxy.idle_timeout, 60)?,
            max_connections: count("max_connections", proxy.max_connections, 10_000)?,
            max_header_bytes: header_bytes(proxy.max_header_bytes)?,
            max_headers: count("max_headers", proxy.max_headers, 100)?,
            admin_listen,
            cache,
            persistence,
            admin,
        })
    }
}

fn admin_error(reason: String) -> ProxyConfigError {
    ProxyConfigError::Config(ConfigError::Section {
        section: "admin".to_owned(),
        field: "listen".to_owned(),
        reason,
    })
}

fn proxy_error(field: &str, reason: String) -> ProxyConfigError {
    ProxyConfigError::Config(ConfigError::Section {
        section: "proxy".to_owned(),
        field: field.to_owned(),
        reason,
    })
}

fn duration(
    field: &'static str,
    value: Option<DurationValue>,
    default_secs: u64,
) -> Result<Duration, ProxyConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs(default_secs));
    };
    let parsed = value.parse().map_err(|reason| proxy_error(field, reason))?;
    if parsed.is_zero() {
        return Err(proxy_error(field, "must be above zero".to_owned()));
    }
    Ok(parsed)
}

/// An upstream base URI: `http`, a host, no path beyond `/`.
fn count(
    field: &'static str,
    value: Option<usize>,
    default: usize,
) -> Result<usize, ProxyConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(proxy_error(field, "must be above zero".to_owned())),
        Some(value) => Ok(value),
    }
}

/// The smallest head limit: hyper's HTTP/1.1 read buffer cannot be smaller.
const MIN_HEADER_BYTES: usize = 8192;

fn header_bytes(value: Option<SizeValue>) -> Result<usize, ProxyConfigError> {
    let Some(value) = value else {
        return Ok(64 * 1024);
    };
    let bytes = value
        .parse()
        .map_err(|reason| proxy_error("max_header_bytes", reason))?;
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    if bytes < MIN_HEADER_BYTES {
        return Err(proxy_error(
            "max_header_bytes",
            format!("{bytes} bytes is below the minimum of 8KiB"),
        ));
    }
    Ok(bytes)
}

fn strip_headers(names: Option<Vec<String>>) -> Result<Vec<HeaderName>, ProxyConfigError> {
    let Some(names) = names else {
        return Ok(DEFAULT_STRIP_HEADERS
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect());
    };
    names
        .iter()
        .map(|name| parse_header_name(name))
        .collect::<Result<_, _>>()
        .map_err(|reason| proxy_error("strip_headers", reason))
}

fn upstream_uri(text: &str) -> Result<Uri, ProxyConfigError> {
    let uri: Uri = text
        .parse()
        .map_err(|error| proxy_error("upstream", format!("{text:?} is not a URI: {error}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(proxy_error(
            "upstream",
            format!("{text:?}: only http:// upstreams are supported"),
        ));
    }
    if uri.authority().is_none() {
        return Err(proxy_error("upstream", format!("{text:?} has no host")));
    }
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(proxy_error(
            "upstream",
            format!("{text:?}: give the upstream's root, without a path"),
        ));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ProxyConfig, ProxyConfigError> {
        ProxyConfig::from_toml(text, &Overrides::default())
    }

    #[test]
    fn a_full_file() {
        let config = load(
            r#"
            [proxy]
            listen = "127.0.0.1:9000"
            upstream = "http://127.0.0.1:8000"
            timeout = "5s"
            connect_timeout = "250ms"
            forwarded_headers = false
            preserve_host = false
            via = "edge"

            [[rules]]
            path = '^/api/'
            ttl = "1m"
            "#,
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.upstream, "http://127.0.0.1:8000");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert_eq!(config.connect_timeout, Duration::from_millis(250));
        assert!(!config.forwarded_headers && !config.preserve_host);
        assert_eq!(config.via, "edge");
        assert_eq!(config.cache.rules().next().unwrap().path(), "^/api/");
    }

    #[test]
    fn without_rules_every_path_is_cached_by_rfc_9111() {
        let config = load("[proxy]\nupstream = \"http://127.0.0.1:8000\"\n").unwrap();
        let rules: Vec<&Rule> = config.cache.rules().collect();
        assert_eq!(rules, [&Rule::new("^/").heuristic_freshness(true)]);
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let overrides = Overrides {
            listen: Some("127.0.0.1:7000".into()),
            upstream: Some("http://127.0.0.1:7001".into()),
            clock: None,
        };
        let config =
            ProxyConfig::from_toml("[proxy]\nupstream = \"http://x:1\"\n", &overrides).unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.upstream, "http://127.0.0.1:7001");
    }

    #[test]
    fn durations_and_sizes_are_read_as_everywhere_else() {
        let config = load(
            "[proxy]\nupstream = \"http://a\"\ntimeout = 10\nidle_timeout = \"1m 30s\"\nmax_header_bytes = 16384\n",
        )
        .unwrap();
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(90));
        assert_eq!(config.max_header_bytes, 16384);
        let error = load("[proxy]\nupstream = \"http://a\"\ntimeout = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("section `proxy`: field `timeout`: invalid type")
                && error.contains("whole seconds (30) or text"),
            "{error}"
        );
    }

    #[test]
    fn loading_a_configuration_restores_nothing() {
        let dir = std::env::temp_dir().join(format!("cachet-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("dump");
        // Dumps restore only under the secret they were sealed with.
        std::env::set_var("CACHET_PROXY_CHECK_TEST_SECRET", "check");
        let text = format!(
            "[proxy]\nupstream = \"http://a\"\n[persistence]\ndump_file = {file:?}\n\
             [identity]\nsecret_env = \"CACHET_PROXY_CHECK_TEST_SECRET\"\n"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let value = |config: &ProxyConfig| {
            runtime
                .block_on(config.cache.values().get::<String>("kept"))
                .unwrap()
        };
        let first = load(&text).unwrap();
        runtime
            .block_on(
                first
                    .cache
                    .values()
                    .set("kept", "yes", Duration::from_secs(60)),
            )
            .unwrap();
        first.persistence.dump_now().unwrap();
        // `--check` loads the configuration and stops: nothing is read.
        let checked = load(&text).unwrap();
        assert_eq!(value(&checked), None);
        // Serving restores first.
        assert_eq!(checked.persistence.restore().restored, 1);
        assert_eq!(value(&checked).as_deref(), Some("yes"));
        assert_eq!(checked.persistence.last_restore().unwrap().restored, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_admin_listener_is_read_and_never_the_proxied_port() {
        let base = "[proxy]\nupstream = \"http://a\"\nlisten = \"127.0.0.1:8080\"\n[admin]\nauth = \"none\"\n";
        let config = load(&format!("{base}listen = \"127.0.0.1:9090\"\n")).unwrap();
        assert_eq!(config.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert!(config.admin.config().is_open());
        assert_eq!(load(base).unwrap().admin_listen, None);
        let message = |text: String| load(&text).unwrap_err().to_string();
        assert!(message(format!("{base}listen = \"127.0.0.1:8080\"\n"))
            .starts_with("section `admin`: field `listen`: the admin API never shares"));
        assert!(message(format!("{base}listen = \"here\"\n"))
            .starts_with("section `admin`: field `listen`: \"here\" is not an address"));
        assert!(message(format!("{base}listen = 9090\n")).contains("write it as a string"));
    }

    #[test]
    fn errors_name_the_field() {
        let message = |text: &str| load(text).unwrap_err().to_string();
        assert!(message("").contains("section `proxy`: field `upstream`: missing"));
        assert!(message("[proxy]\nupstream = \"https://a\"\n").contains("only http://"));
        assert!(message("[proxy]\nupstream = \"http://a/base\"\n").contains("without a path"));
        assert!(
            message("[proxy]\nupstream = \"http://a\"\ntimeout = \"soon\"\n")
                .contains("section `proxy`: field `timeout`: \"soon\" is not a duration")
        );
        assert!(
            message("[proxy]\nupstream = \"http://a\"\nlisten = \"here\"\n")
                .contains("section `proxy`: field `listen`")
        );
        assert!(message("[proxy]\nupstream = \"http://a\"\nport = 1\n")
            .starts_with("section `proxy`: field `port`: unknown field"));
        let rule = message("[proxy]\nupstream = \"http://a\"\n[[rules]]\npath = '('\n");
        assert!(rule.contains("rule 0") && rule.contains("path"), "{rule}");
    }
}
