//! Where things live in Memcached, and how they are written.
//!
//! Memcached keys are at most 250 bytes without spaces, and cache keys are
//! neither, so every name past the prefix is a hash (the names themselves
//! live in the values and the indexes):
//!
//! - `{prefix}e:{hash(cache, key)}` — an entry: a format byte, a kind
//!   byte, the cache's anchor when it was written, the key, then the entry
//!   as `cachet-core` serializes it (nothing, for a body only one
//!   instance's memory holds). Expires with the entry.
//! - `{prefix}a:{hash(cache)}` — the cache's anchor: a random number that
//!   changes when the cache is cleared or its indexes were lost. An entry
//!   written under another anchor reads as a miss.
//! - `{prefix}r:{hash(cache)}:{n}` — segment `n` of the cache's key
//!   registry; `{prefix}t:{hash(cache)}:{n}` of its tag index. Each starts
//!   with the anchor it belongs to, then one record per stored key.
//! - `{prefix}log` — the number of the last purge; `{prefix}log:{n}` the
//!   purge numbered `n` (a [`Purge`](cachet_core::store::tier::Purge)).
//! - `{prefix}l:{hash(cache, key)}` — with `distributed_lock`, the
//!   instance fetching a cold key.

use std::fmt::Write as _;

/// The first byte of every stored entry: another format reads as a miss.
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
        format!("{}e:{}", self.prefix, hash_pair(cache, key))
    }

    pub(crate) fn lock(&self, cache: &str, key: &str) -> String {
        format!("{}l:{}", self.prefix, hash_pair(cache, key))
    }

    pub(crate) fn anchor(&self, cache: &str) -> String {
        format!("{}a:{}", self.prefix, hash_one(cache))
    }

    pub(crate) fn registry(&self, cache: &str, segment: u32) -> String {
        format!("{}r:{}:{segment}", self.prefix, hash_one(cache))
    }

    pub(crate) fn tags(&self, cache: &str, segment: u32) -> String {
        format!("{}t:{}:{segment}", self.prefix, hash_one(cache))
    }

    pub(crate) fn log(&self) -> String {
        format!("{}log", self.prefix)
    }

    pub(crate) fn log_record(&self, number: u64) -> String {
        format!("{}log:{number}", self.prefix)
    }

    /// What every instance agrees holds the log and the indexes: the
    /// prefix, routed like a key.
    pub(crate) fn home(&self) -> &str {
        &self.prefix
    }
}

/// 128 bits of BLAKE3 of `cache` and `key`, in hex.
fn hash_pair(cache: &str, key: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(cache.len() as u64).to_le_bytes());
    hasher.update(cache.as_bytes());
    hasher.update(key.as_bytes());
    hex(&hasher.finalize().as_bytes()[..16])
}

/// 64 bits of BLAKE3 of `name`, in hex.
fn hash_one(name: &str) -> String {
    hex(&blake3::hash(name.as_bytes()).as_bytes()[..8])
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// A stable 64-bit hash of `bytes` (the same in every process and build),
/// for routing and for picking index segments.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let digest = blake3::hash(bytes);
    let mut first = [0; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// What an entry item holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stored<'a> {
    /// The serialized entry.
    Entry(&'a [u8]),
    /// A body too large to share: some instance's memory holds it.
    Local,
    /// Another format, another anchor, or (a hash collision) another key:
    /// a miss.
    Foreign,
}

/// An entry item: `entry` `None` for the marker of a body kept in memory.
pub(crate) fn encode_entry(anchor: u64, key: &str, entry: Option<&[u8]>) -> Vec<u8> {
    let body = entry.unwrap_or_default();
    let mut value = Vec::with_capacity(14 + key.len() + body.len());
    value.extend_from_slice(&[FORMAT, if entry.is_some() { ENTRY } else { LOCAL }]);
    value.extend_from_slice(&anchor.to_le_bytes());
    value.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
    value.extend_from_slice(key.as_bytes());
    value.extend_from_slice(body);
    value
}

/// What `value` holds for `key` under `anchor`.
pub(crate) fn decode_entry<'a>(value: &'a [u8], anchor: u64, key: &str) -> Stored<'a> {
    let Some((head, rest)) = value.split_first_chunk::<14>() else {
        return Stored::Foreign;
    };
    let [FORMAT, kind, written @ ..] = head else {
        return Stored::Foreign;
    };
    let (written, length) = written.split_at(8);
    let length = u32::from_le_bytes(length.try_into().unwrap_or_default()) as usize;
    if u64::from_le_bytes(written.try_into().unwrap_or_default()) != anchor
        || rest.get(..length) != Some(key.as_bytes())
    {
        return Stored::Foreign;
    }
    match *kind {
        ENTRY => Stored::Entry(&rest[length..]),
        LOCAL if rest.len() == length => Stored::Local,
        _ => Stored::Foreign,
    }
}

/// The first line of an index segment of `anchor`.
pub(crate) fn segment_header(anchor: u64) -> String {
    format!("#{anchor:016x}\n")
}

/// A record of an index segment: `name` (a key, or a tag and its key) kept
/// until `keep_until` (ms since the epoch). `None` for a name that cannot
/// be recorded (a line break in it).
pub(crate) fn record(keep_until: u64, name: &str) -> Option<String> {
    (!name.contains('\n')).then(|| format!("{keep_until} {name}\n"))
}

/// The name a tag index records for `key` under `tag`.
pub(crate) fn tagged_name(tag: &str, key: &str) -> String {
    format!("{}:{tag}{key}", tag.len())
}

/// The tag and key of a tag index's name.
pub(crate) fn split_tagged(name: &str) -> Option<(&str, &str)> {
    let (length, rest) = name.split_once(':')?;
    let length: usize = length.parse().ok()?;
    (rest.is_char_boundary(length) && length <= rest.len()).then(|| rest.split_at(length))
}

/// A segment's anchor and records (each a name and until when it is
/// kept), or `None` for a segment of no known shape.
pub(crate) fn parse_segment(segment: &[u8]) -> Option<(u64, Vec<(u64, &str)>)> {
    let text = std::str::from_utf8(segment).ok()?;
    let mut lines = text.split_terminator('\n');
    let anchor = u64::from_str_radix(lines.next()?.strip_prefix('#')?, 16).ok()?;
    let records = lines
        .filter_map(|line| {
            let (keep_until, name) = line.split_once(' ')?;
            Some((keep_until.parse().ok()?, name))
        })
        .collect();
    Some((anchor, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_their_format_anchor_and_key() {
        let value = encode_entry(7, "/a GET", Some(b"abc"));
        assert_eq!(decode_entry(&value, 7, "/a GET"), Stored::Entry(b"abc"));
        assert_eq!(decode_entry(&value, 8, "/a GET"), Stored::Foreign);
        assert_eq!(decode_entry(&value, 7, "/b GET"), Stored::Foreign);
        let marker = encode_entry(7, "/big", None);
        assert_eq!(decode_entry(&marker, 7, "/big"), Stored::Local);
        assert_eq!(decode_entry(b"", 7, ""), Stored::Foreign);
        assert_eq!(decode_entry(&[9; 20], 7, ""), Stored::Foreign);
    }

    #[test]
    fn names_are_memcached_keys() {
        let layout = Layout::new("shop:");
        let long = "k".repeat(10_000);
        for name in [
            layout.entry("default", &long),
            layout.entry("a cache", "/a GET u=1"),
            layout.registry(&long, 1023),
            layout.lock("c", "\u{7f} x"),
        ] {
            assert!(
                name.len() <= 250 && !name.bytes().any(|b| b <= b' '),
                "{name}"
            );
        }
        assert_ne!(layout.entry("a", "bc"), layout.entry("ab", "c"));
    }

    #[test]
    fn segments_read_back_and_tagged_names_split() {
        let mut segment = segment_header(0xabc);
        segment += &record(5, "/a GET").unwrap();
        segment += &record(9, &tagged_name("t:1", "/b GET")).unwrap();
        segment += "garbage\n";
        let (anchor, records) = parse_segment(segment.as_bytes()).unwrap();
        assert_eq!(anchor, 0xabc);
        assert_eq!(records[0], (5, "/a GET"));
        assert_eq!(split_tagged(records[1].1), Some(("t:1", "/b GET")));
        assert_eq!(records.len(), 2);
        assert!(record(1, "a\nb").is_none());
        assert!(parse_segment(b"no header").is_none());
        assert_eq!(split_tagged("99:x"), None);
    }
}
