//! The cache's own sections of a configuration file, read into a
//! [`CacheBuilder`]: `[caches.NAME]` into [`CacheSpec`]s and `[[rules]]`
//! into [`Rule`]s directly (each field declared once, on those types), and
//! the `[identity]`, `[headers]`, `[tags]` and `[security]` sections into
//! the builder's settings. Errors name the rule index or cache name, the
//! field and the reason; a file with any error applies nothing. See
//! `docs/configuration.md` for every field and its default.

use super::{Cache, CacheBuilder};
use crate::config::rules::Rule;
use crate::config::{deserialize, parse_section, ConfigError, ConfigFile};
use crate::identity::Identity;
use crate::protocol::directives::ClientNoCache;
use crate::store::CacheSpec;
use crate::units::de_field;
use http::HeaderName;
use serde::Deserialize;

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
    #[serde(default, deserialize_with = "de_field::some_header_name")]
    target: Option<HeaderName>,
    cdn_cache_control: Option<bool>,
    forward_cdn_cache_control: Option<bool>,
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
    /// assert_eq!(cache.rules().next().map(|rule| rule.path()), Some("^/api/urls/$"));
    /// assert_eq!(cache.caches()["url"].max_bytes, 64 * 1024 * 1024);
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
                .debug_headers(dto.debug.unwrap_or(false))
                .cdn_cache_control(dto.cdn_cache_control.unwrap_or(true))
                .forward_cdn_cache_control(dto.forward_cdn_cache_control.unwrap_or(true));
            if let Some(name) = dto.target {
                builder = builder.target_field(name);
            }
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
        let rules = cache.inner.rules.rules();
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
        for (text, field) in [
            ("[headers]\ntarget = \"Cache-Control\"\n", "target"),
            ("[headers]\ntarget = \"CDN-Cache-Control\"\n", "target"),
            ("[headers]\ntarget = \"not a name\"\n", "target"),
            (
                "[headers]\ncdn_cache_control = \"yes\"\n",
                "cdn_cache_control",
            ),
        ] {
            let err = error(text);
            assert!(
                matches!(err, ConfigError::Section { ref section, field: ref f, .. } if section == "headers" && f == field),
                "{text}: {err}"
            );
        }
        CacheBuilder::from_toml(
            "[headers]\ntarget = \"Cachet-Cache-Control\"\ncdn_cache_control = false\nforward_cdn_cache_control = false\n",
        )
        .unwrap()
        .build()
        .unwrap();
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
