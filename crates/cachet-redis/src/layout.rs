//! Where things live in Redis, and what the invalidation channel carries.
//!
//! - `{prefix}e:{cache}:{key}` — an entry: a format byte, a kind byte, then
//!   the entry as `cachet-core` serializes it (or nothing, for a body only
//!   one instance's memory holds), expiring with the entry (`PX`).
//! - `{prefix}t:{cache}:{tag}` — a sorted set of the keys carrying the tag,
//!   scored by when each is dropped; expires with its last key.
//! - `{prefix}l:{cache}:{key}` — with `distributed_lock`, the instance
//!   fetching a cold key (a token of its own, expiring after the lock
//!   timeout).
//! - `{prefix}invalidations` — the channel purges travel on (each a
//!   [`Purge`](cachet_core::store::tier::Purge)).

/// The first byte of every stored value: a value of another format reads as
/// a miss (and is replaced), never as garbage.
const FORMAT: u8 = 1;
const ENTRY: u8 = 0;
const LOCAL: u8 = 1;

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: String,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn entry(&self, cache: &str, key: &str) -> String {
        format!("{}e:{cache}:{key}", self.prefix)
    }

    pub(crate) fn lock(&self, cache: &str, key: &str) -> String {
        format!("{}l:{cache}:{key}", self.prefix)
    }

    pub(crate) fn tag(&self, cache: &str, tag: &str) -> String {
        format!("{}t:{cache}:{tag}", self.prefix)
    }

    pub(crate) fn channel(&self) -> String {
        format!("{}invalidations", self.prefix)
    }

    /// The `SCAN … MATCH` pattern for every entry of `cache`.
    pub(crate) fn entries_of(&self, cache: &str) -> String {
        format!("{}e:{}:*", glob_escape(&self.prefix), glob_escape(cache))
    }

    /// The `SCAN … MATCH` pattern for every tag set of `cache`.
    pub(crate) fn tags_of(&self, cache: &str) -> String {
        format!("{}t:{}:*", glob_escape(&self.prefix), glob_escape(cache))
    }

    /// The cache key of a Redis entry key of `cache`.
    pub(crate) fn key_of<'a>(&self, cache: &str, redis_key: &'a str) -> Option<&'a str> {
        redis_key
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("e:")?
            .strip_prefix(cache)?
            .strip_prefix(':')
    }
}

/// What an entry key holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stored<'a> {
    /// The serialized entry.
    Entry(&'a [u8]),
    /// A body too large to share: some instance's memory holds it.
    Local,
    /// Another format (an older or newer cachet): a miss.
    Foreign,
}

pub(crate) fn encode_entry(entry: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(entry.len() + 2);
    value.extend_from_slice(&[FORMAT, ENTRY]);
    value.extend_from_slice(entry);
    value
}

pub(crate) fn encode_local() -> Vec<u8> {
    vec![FORMAT, LOCAL]
}

pub(crate) fn decode(value: &[u8]) -> Stored<'_> {
    match value {
        [FORMAT, ENTRY, entry @ ..] => Stored::Entry(entry),
        [FORMAT, LOCAL] => Stored::Local,
        _ => Stored::Foreign,
    }
}

/// `text` with the glob characters of `SCAN … MATCH` escaped.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_their_format() {
        assert_eq!(decode(&encode_entry(b"abc")), Stored::Entry(b"abc"));
        assert_eq!(decode(&encode_local()), Stored::Local);
        assert_eq!(decode(b""), Stored::Foreign);
        assert_eq!(decode(&[9, 0, 1]), Stored::Foreign);
    }

    #[test]
    fn scan_patterns_escape_globs_and_keys_come_back() {
        let layout = Layout::new("app*:");
        assert_eq!(layout.entries_of("c[1]"), "app\\*:e:c\\[1\\]:*");
        let key = layout.entry("default", "/a GET");
        assert_eq!(layout.key_of("default", &key), Some("/a GET"));
        assert_eq!(layout.key_of("other", &key), None);
    }
}
