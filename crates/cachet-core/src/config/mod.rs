//! The TOML configuration: a [`ConfigFile`] read once and handed out by
//! section to each section's owner, [`parse_section`] for the sections of
//! those owners, the rule and named-cache types (`Rule`, `CacheSpec`) with
//! every field declared once, the units (`DurationValue`, `SizeValue`) and
//! [`ConfigError`]. The cache's own sections are read by
//! [`CacheBuilder::from_config`](crate::CacheBuilder::from_config). Errors
//! name the rule index or cache name, the field and the reason; a file with
//! any error applies nothing. See `docs/configuration.md` for every field
//! and its default.

mod error;
mod path_pattern;
pub(crate) mod rules;

pub use self::error::ConfigError;
pub use self::rules::InvalidateScope;
pub use crate::protocol::directives::ClientNoCache;
pub use crate::units::{parse_header_name, DurationValue, SizeValue};

/// Request headers that make a request skip the cache unless configured
/// otherwise: they ask an origin to treat the request as another method or
/// another URL, which no key holds.
pub const DEFAULT_BYPASS_HEADERS: [&str; 5] = [
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

use serde::de::DeserializeOwned;

/// A configuration file, read once and handed out section by section:
/// each owner takes its own — [`CacheBuilder::from_config`](crate::CacheBuilder::from_config) the cache's
/// (`[caches.*]`, `[[rules]]`, `[identity]`, `[headers]`, `[tags]`,
/// `[security]`), [`PersistenceConfig::from_config`](crate::persistence::PersistenceConfig::from_config)
/// `[persistence]`, the management API `[admin]`, the Redis tier
/// `[redis]`, a program its own (`cachet-proxy`'s `[proxy]`) — and
/// [`finish`](Self::finish) refuses a section nobody took, naming it.
///
/// ```
/// use cachet_core::config::ConfigFile;
/// use cachet_core::CacheBuilder;
/// use cachet_core::persistence::PersistenceConfig;
///
/// let mut file = ConfigFile::parse("[persistence]\ndump_file = '/tmp/d'\n[[rules]]\npath = '^/'")?;
/// let builder = CacheBuilder::from_config(&mut file)?;
/// let persistence = PersistenceConfig::from_config(&mut file)?;
/// file.finish()?;
/// assert_eq!(builder.build()?.rules().len(), 1);
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

pub(crate) fn deserialize<T: DeserializeOwned>(value: toml::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|err| field_and_reason(&err))
}

/// Reads a TOML section of the application's own (as `cachet-proxy` reads
/// `[proxy]`) into `T`, with errors that name the section, the field and
/// the reason, as cachet's own sections do. Durations and sizes in `T` are
/// best read as [`DurationValue`] and
/// [`SizeValue`].
///
/// ```
/// use cachet_core::ConfigError;
/// use cachet_core::config::{DurationValue, parse_section};
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
