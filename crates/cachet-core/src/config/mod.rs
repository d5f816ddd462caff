//! The TOML configuration: a [`ConfigFile`] read once and handed out by
//! section, and the cache's own sections read into a [`CacheBuilder`]:
//! `[caches.NAME]` into [`CacheSpec`]s and `[[rules]]` into [`Rule`]s
//! directly (each field declared once, on those types), and the
//! `[identity]`, `[headers]`, `[tags]` and `[security]` sections into the
//! builder's settings. Errors
//! name the rule index or cache name, the field and the reason; a file with
//! any error applies nothing. See `docs/configuration.md` for every field
//! and its default.

mod error;
pub(crate) mod rules;
pub(crate) mod units;

pub use self::error::ConfigError;

use crate::cache::{Cache, CacheBuilder};
use crate::config::rules::{CacheSpec, Rule};
use crate::config::units::de_field;
use crate::identity::Identity;
use crate::protocol::directives::ClientNoCache;
use http::HeaderName;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A configuration file, read once and handed out section by section:
/// each owner takes its own — [`CacheBuilder::from_config`] the cache's
/// (`[caches.*]`, `[[rules]]`, `[identity]`, `[headers]`, `[tags]`,
/// `[security]`), [`PersistenceConfig::from_config`](crate::PersistenceConfig::from_config)
/// `[persistence]`, the management API `[admin]`, the Redis tier
/// `[redis]`, a program its own (`cachet-proxy`'s `[proxy]`) — and
/// [`finish`](Self::finish) refuses a section nobody took, naming it.
///
/// ```
/// use cachet_core::config::ConfigFile;
/// use cachet_core::{CacheBuilder, PersistenceConfig};
///
/// let mut file = ConfigFile::parse("[persistence]\ndump_file = '/tmp/d'\n[[rules]]\npath = '^/'")?;
/// let builder = CacheBuilder::from_config(&mut file)?;
/// let persistence = PersistenceConfig::from_config(&mut file)?;
/// file.finish()?;
/// assert_eq!(builder.build()?.rules().rules().len(), 1);
/// assert!(persistence.file().is_some());
///
/// let mut file = ConfigFile::parse("[persistance]\ndump_file = '/tmp/d'")?;
/// CacheBuilder::from_config(&mut file)?;
/// PersistenceConfig::from_config(&mut file)?;
/// let error = file.finish().unwrap_err().to_string();
/// assert!(error.contains("unknown section `persistance`; expected one of caches, rules"), "{error}");
/// # Ok::<(), cachet_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    table: toml::Table,
    /// The sections owners have asked for, in the order they asked.
    known: Vec<&'static str>,
}

impl ConfigFile {
    /// Parses TOML text; a syntax error says where.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let table = text
            .parse()
            .map_err(|err: toml::de::Error| ConfigError::Syntax {
                reason: err.to_string().trim().to_owned(),
            })?;
        Ok(Self {
            table,
            known: Vec::new(),
        })
    }

    /// Takes `section` out of the file, if it is there; either way it is
    /// now a section this program knows.
    pub fn take(&mut self, section: &'static str) -> Option<toml::Value> {
        if !self.known.contains(&section) {
            self.known.push(section);
        }
        self.table.remove(section)
    }

    /// [`take`](Self::take)s `section` and reads it into `T`, with errors
    /// that name the section, the field and the reason
    /// ([`parse_section`]).
    pub fn section<T: DeserializeOwned>(
        &mut self,
        section: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.take(section)
            .map(|value| parse_section(section, value))
            .transpose()
    }

    /// Whether the file still holds `section` (nobody has taken it).
    pub fn contains(&self, section: &str) -> bool {
        self.table.contains_key(section)
    }

    /// Ends the reading: a section no owner took is an error naming it and
    /// the sections this program knows.
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::Syntax {
                reason: format!(
                    "unknown section `{unknown}`; expected one of {}",
                    self.known.join(", ")
                ),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsDto {
    #[serde(default, deserialize_with = "de_field::some_header_name")]
    header: Option<HeaderName>,
    strip: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadersDto {
    x_cache: Option<bool>,
    debug: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecurityDto {
    #[serde(default, deserialize_with = "de_field::some_header_names")]
    bypass_headers: Option<Vec<HeaderName>>,
    #[serde(default, deserialize_with = "de_field::some_size")]
    max_key_bytes: Option<u64>,
    max_variants: Option<usize>,
    max_tags: Option<usize>,
    client_no_cache: Option<ClientNoCache>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityDto {
    extension: Option<bool>,
    #[serde(default, deserialize_with = "de_field::some_header_names")]
    headers: Option<Vec<HeaderName>>,
    cookies: Option<Vec<String>>,
    secret_env: Option<String>,
}

/// A serde error as (field, reason): the field from the error's path, or
/// from the message for a missing or unknown field (serde reports those one
/// level up).
fn field_and_reason(error: &serde_path_to_error::Error<toml::de::Error>) -> (String, String) {
    let reason = error.inner().message().trim().to_owned();
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| reason.strip_prefix(prefix)?.split('`').next());
    // `vary_headers[2]` is reported as the field `vary_headers`.
    let path = error.path().to_string();
    let field = match named {
        Some(name) => name.to_owned(),
        None => path.split(['[', '.']).next().unwrap_or(&path).to_owned(),
    };
    (field, reason)
}

fn deserialize<T: DeserializeOwned>(value: toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|err| field_and_reason(&err))
}

/// Reads a TOML section of the application's own (as `cachet-proxy` reads
/// `[proxy]`) into `T`, with errors that name the section, the field and
/// the reason, as cachet's own sections do. Durations and sizes in `T` are
/// best read as [`DurationValue`](crate::DurationValue) and
/// [`SizeValue`](crate::SizeValue).
///
/// ```
/// use cachet_core::{parse_section, ConfigError, DurationValue};
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Upstream { timeout: DurationValue }
///
/// let table: toml::Table = toml::from_str("[upstream]\ntimeout = 10").unwrap();
/// let upstream: Upstream = parse_section("upstream", table["upstream"].clone()).unwrap();
/// assert_eq!(upstream.timeout.parse(), Ok(std::time::Duration::from_secs(10)));
///
/// let table: toml::Table = toml::from_str("[upstream]\ntimeout = false").unwrap();
/// let error = parse_section::<Upstream>("upstream", table["upstream"].clone()).err().unwrap();
/// assert!(error.to_string().starts_with("section `upstream`: field `timeout`: invalid type"));
/// ```
pub fn parse_section<T: DeserializeOwned>(
    section: &str,
    value: toml::Value,
) -> Result<T, ConfigError> {
    deserialize(value).map_err(|(field, reason)| ConfigError::Section {
        section: section.to_owned(),
        field,
        reason,
    })
}

impl CacheBuilder {
    /// A builder configured from TOML text holding only the cache's own
    /// sections (another section is an error naming it; a file with
    /// `[admin]`, `[persistence]` or `[redis]` too is read with
    /// [`ConfigFile`], or the facade's `cachet::Config`). Clock and store
    /// can still be set before [`build`](Self::build); `docs/configuration.md`
    /// lists every section and field.
    ///
    /// ```
    /// let cache = cachet_core::CacheBuilder::from_toml(r#"
    ///     [caches.url]
    ///     max_bytes = "64MiB"
    ///     ttl = "1h"
    ///
    ///     [[rules]]
    ///     path = '^/api/urls/$'
    ///     cache = "url"
    ///     ttl = "5m"
    ///     vary_by_user = true
    ///     vary_headers = ["Accept-Language"]
    /// "#)?
    /// .build()?;
    /// assert_eq!(cache.rules().rules()[0].cache(), "url");
    ///
    /// let err = cachet_core::Cache::from_toml("[[rules]]\npath = '^/('").unwrap_err();
    /// assert!(err.to_string().starts_with("rule 0 (^/(): field `path`: invalid regex"));
    /// # Ok::<(), cachet_core::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut file = ConfigFile::parse(text)?;
        let builder = Self::from_config(&mut file)?;
        file.finish()?;
        Ok(builder)
    }

    /// A builder configured from the cache's own sections of `file`
    /// (`[caches.*]`, `[[rules]]`, `[identity]`, `[headers]`, `[tags]`,
    /// `[security]`), which it takes; the other sections are left for
    /// their owners.
    pub fn from_config(file: &mut ConfigFile) -> Result<Self, ConfigError> {
        let mut builder = Cache::builder();
        if let Some(caches) = file.take("caches") {
            let caches = caches.as_table().ok_or_else(|| ConfigError::Syntax {
                reason: "`caches` must be a table of named caches, like [caches.url]".into(),
            })?;
            for (name, value) in caches {
                builder = builder.cache(name.clone(), cache_spec(name, value.clone())?);
            }
        }
        if let Some(rules) = file.take("rules") {
            let rules = rules.as_array().ok_or_else(|| ConfigError::Syntax {
                reason: "`rules` must be an array of tables, written [[rules]]".into(),
            })?;
            for (index, value) in rules.iter().enumerate() {
                builder = builder.rule(rule(index, value.clone())?);
            }
        }
        if let Some(identity) = file.take("identity") {
            builder = builder.identity(identity_spec(identity)?);
        }
        if let Some(dto) = file.section::<HeadersDto>("headers")? {
            builder = builder
                .x_cache(dto.x_cache.unwrap_or(false))
                .debug_headers(dto.debug.unwrap_or(false));
        }
        if let Some(dto) = file.section::<TagsDto>("tags")? {
            if let Some(name) = dto.header {
                builder = builder.tag_header(name);
            }
            if let Some(strip) = dto.strip {
                builder = builder.strip_tag_header(strip);
            }
        }
        if let Some(security) = file.take("security") {
            builder = security_spec(builder, security)?;
        }
        Ok(builder)
    }
}

fn security_spec(
    mut builder: CacheBuilder,
    value: toml::Value,
) -> Result<CacheBuilder, ConfigError> {
    let dto: SecurityDto = parse_section("security", value)?;
    if let Some(names) = dto.bypass_headers {
        builder = builder.bypass_headers(names);
    }
    if let Some(bytes) = dto.max_key_bytes {
        builder = builder.max_key_bytes(usize::try_from(bytes).unwrap_or(usize::MAX));
    }
    if let Some(count) = dto.max_variants {
        builder = builder.max_variants(count);
    }
    if let Some(count) = dto.max_tags {
        builder = builder.max_tags(count);
    }
    if let Some(choice) = dto.client_no_cache {
        builder = builder.client_no_cache(choice);
    }
    Ok(builder)
}

impl Cache {
    /// A cache configured from TOML text holding only the cache's own
    /// sections ([`CacheBuilder::from_toml`]), on the in-memory store and
    /// the system clock.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        CacheBuilder::from_toml(text)?.build()
    }
}

fn cache_spec(name: &str, value: toml::Value) -> Result<CacheSpec, ConfigError> {
    deserialize(value).map_err(|(field, reason)| ConfigError::Cache {
        name: name.to_owned(),
        field,
        reason,
    })
}

fn rule(index: usize, value: toml::Value) -> Result<Rule, ConfigError> {
    let path = value
        .get("path")
        .and_then(toml::Value::as_str)
        .unwrap_or("?")
        .to_owned();
    deserialize(value).map_err(|(field, reason)| ConfigError::Rule {
        index,
        path,
        field,
        reason,
    })
}

fn identity_spec(value: toml::Value) -> Result<Identity, ConfigError> {
    let error = |(field, reason): (String, String)| ConfigError::Section {
        section: "identity".into(),
        field,
        reason,
    };
    let dto: IdentityDto = parse_section("identity", value)?;
    let mut identity = Identity::none();
    if dto.extension.unwrap_or(true) {
        identity = identity.extension();
    }
    for name in dto
        .headers
        .unwrap_or_else(|| vec![http::header::AUTHORIZATION])
    {
        identity = identity.header(name);
    }
    for cookie in dto.cookies.unwrap_or_default() {
        identity = identity.cookie(&cookie);
    }
    if let Some(variable) = dto.secret_env {
        let secret = std::env::var(&variable).map_err(|_| {
            error((
                "secret_env".into(),
                format!("environment variable `{variable}` is not set (or not UTF-8)"),
            ))
        })?;
        if secret.is_empty() {
            return Err(error((
                "secret_env".into(),
                format!("environment variable `{variable}` is empty; an empty secret would make identity hashes guessable"),
            )));
        }
        identity = identity.secret(&secret);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn error(text: &str) -> ConfigError {
        Cache::from_toml(text).unwrap_err()
    }

    fn rule_error(text: &str) -> (usize, String, String) {
        match error(text) {
            ConfigError::Rule {
                index,
                field,
                reason,
                ..
            } => (index, field, reason),
            other => panic!("expected a rule error, got {other:?}"),
        }
    }

    const GOOD: &str = "[[rules]]\npath = '^/ok'\n";

    #[test]
    fn an_empty_identity_secret_is_an_error() {
        std::env::set_var("CACHET_TEST_EMPTY_IDENTITY_SECRET", "");
        let err = error("[identity]\nsecret_env = \"CACHET_TEST_EMPTY_IDENTITY_SECRET\"\n");
        assert!(
            err.to_string()
                .contains("`CACHET_TEST_EMPTY_IDENTITY_SECRET` is empty"),
            "{err}"
        );
    }

    #[test]
    fn the_security_section_is_read_and_checked() {
        let cache = Cache::from_toml(
            "[security]\nbypass_headers = [\"X-Forwarded-Host\"]\nmax_key_bytes = \"1KiB\"\nmax_variants = 4\nmax_tags = 2\n",
        )
        .unwrap();
        assert_eq!(cache.inner.limits.max_key_bytes, 1024);
        assert_eq!(cache.inner.limits.bypass_headers, ["x-forwarded-host"]);
        let err = error("[security]\nclient_no_cache = \"sometimes\"\n");
        assert!(err.to_string().contains("client_no_cache"), "{err}");
        let err = error("[security]\nmax_variants = 0\n");
        assert!(err.to_string().contains("max_variants"), "{err}");
        let err = error("[security]\nbypass_headers = [\"a b\"]\n");
        assert!(err.to_string().contains("bypass_headers"), "{err}");
    }

    #[test]
    fn a_full_file_compiles() {
        let cache = Cache::from_toml(
            r#"
            [caches.url]
            max_bytes = "64MiB"
            ttl = "1h"
            [caches.analytics]
            max_bytes = 1048576
            ttl = 900

            [[rules]]
            path = '^/api/urls/$'
            cache = "url"
            ttl = "5m"
            methods = ["GET"]
            vary_by_user = true
            vary_by_method = false
            vary_headers = ["Accept-Language"]
            max_body = "256KiB"
            respect_origin = false
            statuses = [302]
            keep = "1h"
            stale_while_revalidate = "30s"
            stale_if_error = "1d"
            coalesce = false
            lock_timeout = "250ms"
            hit_for_miss = 0
            early_refresh = 1.5
            heuristic_freshness = true

            [[rules]]
            path = '^/api/urls/stats/$'
            cache = "analytics"

            [identity]
            headers = ["x-user"]
            cookies = ["sessionid"]

            [headers]
            x_cache = true
            debug = true
            "#,
        )
        .unwrap();
        let rules = cache.rules().rules();
        assert_eq!(rules[0].ttl(), Duration::from_secs(300));
        assert_eq!(rules[0].max_body(), 256 * 1024);
        assert!(rules[0].vary_by_user());
        assert!(!rules[0].vary_by_method());
        assert!(!rules[0].respect_origin());
        assert_eq!(rules[0].statuses(), [http::StatusCode::FOUND]);
        assert_eq!(rules[0].keep(), Duration::from_secs(3600));
        assert_eq!(rules[1].keep(), crate::config::rules::DEFAULT_KEEP);
        assert_eq!(rules[0].stale_while_revalidate(), Duration::from_secs(30));
        assert_eq!(rules[0].stale_if_error(), Duration::from_secs(86_400));
        assert!(!rules[0].coalesce() && rules[1].coalesce());
        assert_eq!(rules[0].lock_timeout(), Duration::from_millis(250));
        assert_eq!(rules[0].hit_for_miss(), Duration::ZERO);
        assert_eq!(rules[0].early_refresh(), Some(1.5));
        assert_eq!(rules[1].early_refresh(), None);
        assert!(rules[0].heuristic_freshness() && !rules[1].heuristic_freshness());
        assert_eq!(
            rules[1].lock_timeout(),
            crate::config::rules::DEFAULT_LOCK_TIMEOUT
        );
        assert!(rules[1].respect_origin());
        assert_eq!(rules[1].ttl(), Duration::from_secs(900));
        assert_eq!(cache.caches()["url"].max_bytes, 64 * 1024 * 1024);
        assert!(cache.caches().contains_key("default"));
    }

    #[test]
    fn staleness_and_coalescing_fields_are_checked() {
        let (index, field, reason) = rule_error(&format!(
            "{GOOD}[[rules]]\npath = '^/'\nstale_if_error = \"often\"\n"
        ));
        assert_eq!((index, field.as_str()), (1, "stale_if_error"));
        assert!(reason.contains("not a duration"), "{reason}");
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nearly_refresh = -1.0\n");
        assert_eq!(field, "early_refresh");
        assert!(reason.contains("above zero"), "{reason}");
        let (_, field, _) = rule_error("[[rules]]\npath = '^/'\nlock_timeout = -3\n");
        assert_eq!(field, "lock_timeout");
    }

    #[test]
    fn invalid_regex_names_rule_and_field() {
        let (index, field, reason) =
            rule_error(&format!("{GOOD}[[rules]]\npath = '^/(unclosed'\n"));
        assert_eq!((index, field.as_str()), (1, "path"));
        assert!(reason.starts_with("invalid regex"), "{reason}");
    }

    #[test]
    fn unknown_cache_names_rule_and_field() {
        let (index, field, reason) = rule_error("[[rules]]\npath = '^/'\ncache = 'nope'\n");
        assert_eq!((index, field.as_str()), (0, "cache"));
        assert!(reason.contains("unknown cache `nope`"), "{reason}");
    }

    #[test]
    fn unknown_field_names_rule_and_field() {
        let (index, field, reason) =
            rule_error(&format!("{GOOD}[[rules]]\npath = '^/'\nttll = '5m'\n"));
        assert_eq!((index, field.as_str()), (1, "ttll"));
        assert!(reason.contains("unknown field"), "{reason}");
    }

    #[test]
    fn missing_path_names_the_field() {
        let (index, field, _) = rule_error("[[rules]]\nttl = '5m'\n");
        assert_eq!((index, field.as_str()), (0, "path"));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nvary_by_user = 'yes'\n");
        assert_eq!(field, "vary_by_user");
        assert!(reason.contains("invalid type"), "{reason}");
    }

    #[test]
    fn bad_duration_names_rule_and_field() {
        let (index, field, reason) = rule_error("[[rules]]\npath = '^/'\nttl = 'five minutes'\n");
        assert_eq!((index, field.as_str()), (0, "ttl"));
        assert!(reason.contains("not a duration"), "{reason}");
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nttl = -5\n");
        assert_eq!(field, "ttl");
        assert!(reason.contains("negative"), "{reason}");
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nttl = 0\n");
        assert_eq!(field, "ttl");
        assert!(reason.contains("zero"), "{reason}");
    }

    #[test]
    fn zero_and_negative_sizes_are_rejected() {
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nkeep = \"soon\"\n");
        assert_eq!(field, "keep");
        assert!(reason.contains("not a duration"), "{reason}");
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nmax_body = 0\n");
        assert_eq!(field, "max_body");
        assert!(reason.contains("zero"), "{reason}");
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nmax_body = -1\n");
        assert_eq!(field, "max_body");
        assert!(reason.contains("negative"), "{reason}");
        let err = error("[caches.url]\nmax_bytes = '0 MiB'\n");
        assert_eq!(
            err,
            ConfigError::Cache {
                name: "url".into(),
                field: "max_bytes".into(),
                reason: "a size of zero bytes would store nothing; it must be above zero".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "cache `url`: field `max_bytes`: a size of zero bytes would store nothing; it must be above zero"
        );
        let err = error("[caches.url]\nmax_bytes = 'huge'\n");
        assert!(
            matches!(err, ConfigError::Cache { ref field, .. } if field == "max_bytes"),
            "{err}"
        );
    }

    #[test]
    fn unknown_cache_field_is_named() {
        let err = error("[caches.url]\nmax_size = 5\n");
        assert!(
            matches!(err, ConfigError::Cache { ref field, .. } if field == "max_size"),
            "{err}"
        );
    }

    #[test]
    fn methods_other_than_get_and_head_are_rejected() {
        let (_, field, reason) = rule_error("[[rules]]\npath = '^/'\nmethods = ['POST']\n");
        assert_eq!(field, "methods");
        assert!(reason.contains("`POST`"), "{reason}");
        let (_, field, _) = rule_error("[[rules]]\npath = '^/'\nmethods = []\n");
        assert_eq!(field, "methods");
    }

    #[test]
    fn unstorable_statuses_are_rejected() {
        for status in [100, 206, 304, 600] {
            let (_, field, reason) =
                rule_error(&format!("[[rules]]\npath = '^/'\nstatuses = [{status}]\n"));
            assert_eq!(field, "statuses");
            assert!(reason.contains(&status.to_string()), "{reason}");
        }
    }

    #[test]
    fn headers_section_is_checked() {
        let err = error("[headers]\nxcache = true\n");
        assert!(
            matches!(err, ConfigError::Section { ref section, ref field, .. } if section == "headers" && field == "xcache"),
            "{err}"
        );
    }

    #[test]
    fn invalid_vary_header_is_rejected() {
        let (_, field, reason) =
            rule_error("[[rules]]\npath = '^/'\nvary_headers = ['bad header']\n");
        assert_eq!(field, "vary_headers");
        assert!(reason.contains("`bad header`"), "{reason}");
    }

    #[test]
    fn syntax_and_unknown_sections_are_reported() {
        assert!(matches!(error("[[rules]\n"), ConfigError::Syntax { .. }));
        let err = error("[adminn]\ntoken = 'x'\n");
        assert!(
            err.to_string().contains("unknown section `adminn`"),
            "{err}"
        );
        assert!(matches!(error("rules = 5\n"), ConfigError::Syntax { .. }));
    }

    #[test]
    fn identity_errors_name_the_section() {
        let err = error("[identity]\nsecret_env = 'CACHET_TEST_UNSET_VARIABLE_XYZ'\n");
        assert!(
            matches!(err, ConfigError::Section { ref section, ref field, .. } if section == "identity" && field == "secret_env"),
            "{err}"
        );
        let err = error("[identity]\nheader = ['x']\n");
        assert!(
            matches!(err, ConfigError::Section { ref field, .. } if field == "header"),
            "{err}"
        );
    }
}
