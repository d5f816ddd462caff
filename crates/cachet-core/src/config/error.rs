//! Configuration errors that name where the problem is and why.

/// A configuration that cannot be used. Raised at start-up; nothing of a bad
/// configuration is applied.
///
/// Every variant names where the problem is (the rule index and field, or the
/// cache name and field) and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid TOML, or a top-level section has the wrong shape.
    #[error("invalid configuration: {reason}")]
    Syntax {
        /// What the TOML parser said.
        reason: String,
    },
    /// A `[[rules]]` entry is wrong.
    #[error("rule {index} ({path}): field `{field}`: {reason}")]
    Rule {
        /// Position of the rule in the list, from 0.
        index: usize,
        /// The rule's `path` as written, or `?` when it has none.
        path: String,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `[caches.NAME]` table is wrong.
    #[error("cache `{name}`: field `{field}`: {reason}")]
    Cache {
        /// The cache's name.
        name: String,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable that overrides the configuration is wrong.
    #[error("environment variable `{variable}`: {reason}")]
    Env {
        /// The variable.
        variable: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// Another section (`[identity]`, ...) is wrong.
    #[error("section `{section}`: field `{field}`: {reason}")]
    Section {
        /// The section's name.
        section: String,
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}
