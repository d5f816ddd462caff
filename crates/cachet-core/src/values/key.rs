//! Namespaced value keys.

use super::ValueCache;
use std::fmt::{self, Write as _};

/// A namespaced key, built the way a Django cache key builder's `make_key`
/// does: `prefix:env:namespace:name=value:...:u=<hash>`, parameters sorted
/// by name so that the order they are given in never matters.
///
/// ```
/// use cachet_core::values::ValueKey;
/// let key = ValueKey::new("search")
///     .prefix("shop")
///     .env("prod")
///     .param("q", "tea")
///     .param("page", 2);
/// assert_eq!(key.to_string(), "shop:prod:search:page=2:q=tea");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct ValueKey {
    prefix: Option<String>,
    env: Option<String>,
    namespace: String,
    params: Vec<(String, String)>,
    user: Option<String>,
}

impl ValueKey {
    /// A key in `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            ..Self::default()
        }
    }
    /// The application prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    /// The environment (`prod`, `staging`), so environments sharing a
    /// store never share values.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }
    /// A parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl fmt::Display) -> Self {
        self.params.push((name.into(), value.to_string()));
        self
    }
    /// Scopes the key to one user: the cache's keyed hash of `user_id`, never
    /// the id itself.
    pub fn user(mut self, values: &ValueCache, user_id: &str) -> Self {
        let hash = values
            .shared
            .identity
            .hash_header(&http::HeaderName::from_static("x-user"), user_id.as_bytes());
        let mut hex = String::new();
        hash.push_hex(&mut hex);
        self.user = Some(hex);
        self
    }
}

impl fmt::Display for ValueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for part in [&self.prefix, &self.env].into_iter().flatten() {
            out.push_str(part);
            out.push(':');
        }
        out.push_str(&self.namespace);
        let mut params: Vec<&(String, String)> = self.params.iter().collect();
        params.sort();
        for (name, value) in params {
            let _ = write!(out, ":{name}={value}");
        }
        if let Some(user) = &self.user {
            let _ = write!(out, ":u={user}");
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_keys_sort_parameters() {
        let a = ValueKey::new("n").param("b", 2).param("a", 1);
        let b = ValueKey::new("n").param("a", 1).param("b", 2);
        assert_eq!(a.to_string(), "n:a=1:b=2");
        assert_eq!(a.to_string(), b.to_string());
    }
}
