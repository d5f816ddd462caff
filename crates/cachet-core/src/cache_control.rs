//! `Cache-Control` directives (RFC 9111 §5.2), parsed leniently: names are
//! case-insensitive, several header lines combine, whitespace is tolerated,
//! quoted values are unquoted, and no input makes the parser panic.

/// The directives of one or more `Cache-Control` header lines.
///
/// ```
/// use cachet_core::CacheControl;
/// let cc = CacheControl::parse([&b"Public, MAX-AGE=60"[..], b"s-maxage=\"30\""]);
/// assert!(cc.has("public"));
/// assert_eq!(cc.seconds("max-age"), Some(60));
/// assert_eq!(cc.seconds("s-maxage"), Some(30));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    directives: Vec<(String, Option<String>)>,
}

impl CacheControl {
    /// Parses the header lines in order.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Self {
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
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::parse(
            headers
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }

    /// Whether the directive `name` (lowercase) is present.
    pub fn has(&self, name: &str) -> bool {
        self.directives.iter().any(|(n, _)| n == name)
    }

    /// The value of the first directive `name` (lowercase), if it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// A delta-seconds value (RFC 9111 §1.2.2); values too large saturate,
    /// and a malformed value is treated as absent.
    pub fn seconds(&self, name: &str) -> Option<u64> {
        let value = self.value(name)?;
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(value.parse().unwrap_or(u64::MAX))
    }

    /// Whether there are no directives at all.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }
}

/// Splits a comma-separated list, ignoring commas inside quoted strings.
fn split_list(line: &str) -> Vec<&str> {
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
    fn quoted_values_may_hold_commas() {
        let cc = CacheControl::parse([&br#"private="set-cookie, x-a", max-age=5"#[..]]);
        assert_eq!(cc.value("private"), Some("set-cookie, x-a"));
        assert_eq!(cc.seconds("max-age"), Some(5));
    }

    #[test]
    fn malformed_seconds_are_absent_and_huge_ones_saturate() {
        let cc = CacheControl::parse([&b"max-age=-1, s-maxage=99999999999999999999999"[..]]);
        assert_eq!(cc.seconds("max-age"), None);
        assert_eq!(cc.seconds("s-maxage"), Some(u64::MAX));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = CacheControl::parse([bytes.as_slice()]);
        }
    }
}
