//! Who may use the management API, and what it allows.

use cachet_core::config::{parse_section, ConfigFile};
use cachet_core::ConfigError;
use serde::Deserialize;
use std::fmt;
use subtle::ConstantTimeEq;

/// How the management API authenticates and what it allows, from `[admin]`
/// or code. The default refuses every endpoint but the dashboard page (401)
/// until a token is set.
///
/// ```
/// use cachet_admin::AdminConfig;
/// let config = AdminConfig::new().token("s3cret").read_only(true);
/// assert!(config.is_read_only());
/// // The token never shows in logs.
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct AdminConfig {
    auth: Auth,
    read_only: bool,
    metrics_public: bool,
}

#[derive(Clone, Default)]
enum Auth {
    /// No token configured: every request is refused.
    #[default]
    Unset,
    /// `Authorization: Bearer <token>`.
    Token(Box<[u8]>),
    /// Anyone (`auth = "none"`): local development only.
    None,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match self.auth {
            Auth::Unset => "unset (every request refused)",
            Auth::Token(_) => "bearer token",
            Auth::None => "none",
        };
        f.debug_struct("AdminConfig")
            .field("auth", &auth)
            .field("read_only", &self.read_only)
            .field("metrics_public", &self.metrics_public)
            .finish()
    }
}

impl AdminConfig {
    /// No token yet: every endpoint but the dashboard page answers 401.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests must carry `Authorization: Bearer <token>`; it is compared
    /// in constant time. An empty token leaves every request refused.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.auth = if token.is_empty() {
            Auth::Unset
        } else {
            Auth::Token(token.into_bytes().into_boxed_slice())
        };
        self
    }

    /// Anyone may use the API, without a token: for local development only
    /// (`auth = "none"`); never expose such an endpoint.
    pub fn no_auth(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    /// Serve only the GET endpoints; mutations answer 403 (default `false`).
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// Let `GET /metrics` answer without a token, for a Prometheus scraper
    /// on a trusted network (default `false`).
    pub fn metrics_public(mut self, on: bool) -> Self {
        self.metrics_public = on;
        self
    }

    /// Whether mutations are refused.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether `/metrics` answers without a token.
    pub fn is_metrics_public(&self) -> bool {
        self.metrics_public
    }

    /// Whether requests need no token at all.
    pub fn is_open(&self) -> bool {
        matches!(self.auth, Auth::None)
    }

    /// Whether an `Authorization` header value admits the request.
    pub(crate) fn admits(&self, authorization: Option<&[u8]>) -> bool {
        match &self.auth {
            Auth::None => true,
            Auth::Unset => false,
            Auth::Token(token) => {
                let Some(presented) = authorization.and_then(bearer) else {
                    return false;
                };
                // Constant time over the token's bytes; only the lengths
                // may differ in time, and they say nothing of the token.
                bool::from(presented.ct_eq(token))
            }
        }
    }

    /// The `[admin]` section of `file`, which it takes (the defaults
    /// without one: every endpoint answers 401).
    pub fn from_config(file: &mut ConfigFile) -> Result<Self, ConfigError> {
        file.take("admin")
            .map_or_else(|| Ok(Self::default()), Self::from_section)
    }

    /// The `[admin]` section: `token_env`, `auth`, `read_only`,
    /// `metrics_public`. The token is read from the variable `token_env`
    /// names, now: a missing or empty variable is an error.
    pub fn from_section(value: toml::Value) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Section {
            token_env: Option<String>,
            auth: Option<AuthMode>,
            #[serde(default)]
            read_only: bool,
            #[serde(default)]
            metrics_public: bool,
        }
        #[derive(Deserialize, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum AuthMode {
            Token,
            None,
        }
        let section: Section = parse_section("admin", value)?;
        let error = |field: &str, reason: String| ConfigError::Section {
            section: "admin".into(),
            field: field.into(),
            reason,
        };
        let config = Self::new()
            .read_only(section.read_only)
            .metrics_public(section.metrics_public);
        match (section.auth, section.token_env) {
            (Some(AuthMode::None), None) => Ok(config.no_auth()),
            (Some(AuthMode::None), Some(_)) => Err(error(
                "auth",
                "`auth = \"none\"` turns the token off; remove `token_env` or the `auth` line"
                    .into(),
            )),
            (_, Some(variable)) => match std::env::var(&variable) {
                Ok(token) if !token.is_empty() => Ok(config.token(token)),
                Ok(_) => Err(error(
                    "token_env",
                    format!("environment variable `{variable}` is empty"),
                )),
                Err(_) => Err(error(
                    "token_env",
                    format!("environment variable `{variable}` is not set (or not UTF-8)"),
                )),
            },
            (_, None) => Err(error(
                "token_env",
                "name the variable holding the admin token (or set `auth = \"none\"` for local development)".into(),
            )),
        }
    }
}

/// The credentials of a `Bearer` authorization (RFC 6750 §2.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let config = AdminConfig::new().token("s3cret");
        assert!(config.admits(Some(b"Bearer s3cret")));
        assert!(config.admits(Some(b"bearer  s3cret ")));
        for wrong in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"s3cret",
            b"Bearer ",
            b"",
        ] {
            assert!(!config.admits(Some(wrong)), "{wrong:?}");
        }
        assert!(!config.admits(None));
        assert!(!AdminConfig::new().admits(Some(b"Bearer s3cret")));
        assert!(!AdminConfig::new().token("").admits(Some(b"Bearer ")));
        assert!(AdminConfig::new().no_auth().admits(None));
    }

    #[test]
    fn the_section_reads_the_token_from_the_environment() {
        let section = |text: &str| AdminConfig::from_section(toml::from_str(text).unwrap());
        // Read from this process's environment, which every test shares: a
        // variable no other test sets.
        std::env::set_var("CACHET_TEST_ADMIN_TOKEN_CONFIG", "t0ken");
        let config = section("token_env = 'CACHET_TEST_ADMIN_TOKEN_CONFIG'").unwrap();
        assert!(config.admits(Some(b"Bearer t0ken")));
        let error = section("token_env = 'CACHET_TEST_ADMIN_TOKEN_MISSING'").unwrap_err();
        assert!(error
            .to_string()
            .starts_with("section `admin`: field `token_env`: environment variable"));
        assert!(
            section("read_only = true").is_err(),
            "no token, no auth = none"
        );
        let open = section("auth = 'none'\nread_only = true").unwrap();
        assert!(open.is_open() && open.is_read_only());
        assert!(section("auth = 'none'\ntoken_env = 'X'").is_err());
        assert!(section("listen = '127.0.0.1:1'").is_err());
    }
}
