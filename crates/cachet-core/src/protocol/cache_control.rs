//! `Cache-Control` directives (RFC 9111 §5.2): a typed value that parses
//! leniently (names are case-insensitive, several header lines combine,
//! whitespace is tolerated, quoted values are unquoted, unknown extensions are
//! kept, and no input makes the parser panic), builds, and writes itself back.

use std::fmt;
use std::time::Duration;

/// The directives of one or more `Cache-Control` header lines.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// No directives; add them with the builder methods.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds the directive `name` (lowercased), with an optional value.
    #[must_use]
    pub(crate) fn directive(mut self, name: &str, value: Option<&str>) -> Self {
        self.directives
            .push((name.to_ascii_lowercase(), value.map(str::to_owned)));
        self
    }

    /// `public`: any cache may store the response (§5.2.2.9).
    #[must_use]
    pub(crate) fn public(self) -> Self {
        self.directive("public", None)
    }

    /// `private`: only the user's own (browser) cache may store it (§5.2.2.7).
    #[must_use]
    pub(crate) fn private(self) -> Self {
        self.directive("private", None)
    }

    /// `immutable`: the body never changes while fresh (RFC 8246).
    #[must_use]
    pub(crate) fn immutable(self) -> Self {
        self.directive("immutable", None)
    }

    /// `max-age=N` (§5.2.2.1), in whole seconds.
    #[must_use]
    pub(crate) fn max_age(self, age: Duration) -> Self {
        self.directive("max-age", Some(&age.as_secs().to_string()))
    }

    /// `s-maxage=N`: the lifetime for shared caches only (§5.2.2.10).
    #[must_use]
    pub(crate) fn s_maxage(self, age: Duration) -> Self {
        self.directive("s-maxage", Some(&age.as_secs().to_string()))
    }

    /// `stale-while-revalidate=N` (RFC 5861).
    #[must_use]
    pub(crate) fn stale_while_revalidate(self, window: Duration) -> Self {
        self.directive(
            "stale-while-revalidate",
            Some(&window.as_secs().to_string()),
        )
    }

    /// `stale-if-error=N` (RFC 5861).
    #[must_use]
    pub(crate) fn stale_if_error(self, window: Duration) -> Self {
        self.directive("stale-if-error", Some(&window.as_secs().to_string()))
    }

    /// The header value, or `None` if a value holds characters a header cannot.
    pub(crate) fn to_header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::try_from(self.to_string()).ok()
    }

    /// Parses the header lines in order.
    pub(crate) fn parse<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut directives = Vec::new();
        for line in lines {
            let line = String::from_utf8_lossy(line);
            for item in split_list(&line) {
                let (name, value) = match item.split_once('=') {
                    Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
                    None => (item, None),
                };
                if !name.is_empty() {
                    directives.push((name.to_ascii_lowercase(), value));
                }
            }
        }
        Self { directives }
    }

    /// The directives of every `Cache-Control` line in `headers`.
    pub(crate) fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::parse(
            headers
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }

    /// Whether the directive `name` (lowercase) is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// The value of the first directive `name` (lowercase), if it has one.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// A delta-seconds value (RFC 9111 §1.2.2); values too large saturate,
    /// and a malformed value is treated as absent.
    pub(crate) fn seconds(&self, name: &str) -> Option<u64> {
        let value = self.value(name)?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // RFC 9111 §1.2.2: larger values count as 2^31.
        let max = crate::clock::MAX_DELTA.as_secs();
        Some(value.parse::<u64>().map_or(max, |secs| secs.min(max)))
    }
}

impl fmt::Display for CacheControl {
    /// Writes `name` or `name=value`, quoting values that are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (name, value)) in self.directives.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
            match value {
                None => {}
                Some(value) if !value.is_empty() && value.bytes().all(is_tchar) => {
                    write!(f, "={value}")?
                }
                Some(value) => {
                    f.write_str("=\"")?;
                    for ch in value.chars() {
                        if ch == '"' || ch == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{ch}")?;
                    }
                    f.write_str("\"")?;
                }
            }
        }
        Ok(())
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Splits a comma-separated list, ignoring commas inside quoted strings.
pub(crate) fn split_list(line: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (index, ch) in line.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                items.push(line[start..index].trim());
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(line[start..].trim());
    items.retain(|item| !item.is_empty());
    items
}

/// Removes the quotes and backslash escapes of a quoted-string (RFC 9110 §5.6.4).
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => out.extend(chars.next()),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_case_insensitive_and_lines_combine() {
        let cc = CacheControl::parse([&b"PRIVATE"[..], b" No-Store "]);
        assert!(cc.has("private"));
        assert!(cc.has("no-store"));
        assert!(!cc.has("public"));
    }

    #[test]
    fn lines_combine_and_names_are_case_insensitive() {
        let cc = CacheControl::parse([&b"Public, MAX-AGE=60"[..], b"s-maxage=\"30\""]);
        assert!(cc.has("public"));
        assert_eq!(cc.seconds("max-age"), Some(60));
        assert_eq!(cc.seconds("s-maxage"), Some(30));
        let built = CacheControl::new()
            .public()
            .max_age(Duration::from_secs(300));
        assert_eq!(built.to_string(), "public, max-age=300");
    }

    #[test]
    fn quoted_values_may_hold_commas() {
        let cc = CacheControl::parse([&br#"private="set-cookie, x-a", max-age=5"#[..]]);
        assert_eq!(cc.value("private"), Some("set-cookie, x-a"));
        assert_eq!(cc.seconds("max-age"), Some(5));
    }

    #[test]
    fn malformed_seconds_are_absent_and_huge_ones_saturate() {
        let cc = CacheControl::parse([&b"max-age=-1, s-maxage=99999999999999999999999"[..]]);
        assert_eq!(cc.seconds("max-age"), None);
        assert_eq!(cc.seconds("s-maxage"), Some(1 << 31), "RFC 9111 §1.2.2");
    }

    #[test]
    fn builds_and_keeps_unknown_extensions() {
        let cc = CacheControl::new()
            .private()
            .max_age(Duration::from_secs(60))
            .stale_while_revalidate(Duration::from_secs(30))
            .directive("X-Ext", Some("a b"));
        assert_eq!(
            cc.to_string(),
            "private, max-age=60, stale-while-revalidate=30, x-ext=\"a b\""
        );
        let parsed = CacheControl::parse([cc.to_string().as_bytes()]);
        assert_eq!(parsed.value("x-ext"), Some("a b"));
        assert_eq!(parsed, cc);
    }

    fn directive() -> impl Strategy<Value = (String, Option<String>)> {
        ("[a-z][a-z0-9-]{0,8}", proptest::option::of("[ -~]{0,8}"))
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = CacheControl::parse([bytes.as_slice()]);
        }

        /// Whatever is built is written as a valid header and read back the same.
        #[test]
        fn round_trips(directives in proptest::collection::vec(directive(), 0..6)) {
            let cc = directives
                .iter()
                .fold(CacheControl::new(), |cc, (name, value)| cc.directive(name, value.as_deref()));
            let value = cc.to_header_value().expect("a valid header value");
            prop_assert_eq!(CacheControl::parse([value.as_bytes()]), cc);
        }
    }
}
