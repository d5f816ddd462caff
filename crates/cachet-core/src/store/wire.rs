//! The serialized form of a stored [`Entry`]: what a dump file holds (and
//! what a shared store will), with times as absolute wall-clock
//! milliseconds since the Unix epoch, so that an entry read back later
//! keeps exactly the freshness it had left.
//!
//! Encoded with postcard (compact, not self-describing); the dump's header
//! carries the format version. Byte strings go through `serde_bytes`, so
//! postcard copies them whole (a plain `&[u8]` serializes byte by byte, to
//! the same encoding).

use super::entry::{CachedResponse, Entry, ValueEntry, VariantIndex};
use http::HeaderMap;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::Bytes as Raw;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An entry as written: borrowed from the live entry when encoding, from
/// the read buffer when decoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireEntry<'a> {
    Response {
        status: u16,
        #[serde(borrow)]
        headers: WireHeaders<'a>,
        #[serde(borrow)]
        body: &'a Raw,
        stored_at: u64,
        fresh_until: u64,
        keep_until: u64,
        initial_age: u64,
        generated_etag: bool,
        no_stale: bool,
        while_revalidate: u64,
        if_error: u64,
        fetch_time: u64,
        #[serde(borrow)]
        tags: WireTags<'a>,
    },
    Variants {
        #[serde(borrow)]
        names: Vec<&'a str>,
        generation: u64,
        keep_until: u64,
        #[serde(borrow)]
        tags: WireTags<'a>,
        stored: u64,
    },
    Value {
        #[serde(borrow)]
        bytes: &'a Raw,
        stored_at: u64,
        expires_at: u64,
        #[serde(borrow)]
        tags: WireTags<'a>,
    },
}

/// A response's headers: the live map when encoding (no copy of the
/// pairs), the pairs borrowed from the read buffer when decoding. Either
/// way a sequence of (name, value) pairs.
#[derive(Debug)]
pub(crate) enum WireHeaders<'a> {
    Live(&'a HeaderMap),
    Read(Vec<(&'a str, &'a Raw)>),
}

impl<'a> WireHeaders<'a> {
    /// How many pairs.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Live(map) => map.len(),
            Self::Read(pairs) => pairs.len(),
        }
    }

    /// Calls `each` with every (name, value) pair, until it fails.
    pub(crate) fn try_for_each<E>(
        &self,
        mut each: impl FnMut(&'a str, &'a [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Self::Live(map) => map
                .iter()
                .try_for_each(|(name, value)| each(name.as_str(), value.as_bytes())),
            Self::Read(pairs) => pairs
                .iter()
                .try_for_each(|&(name, value)| each(name, value)),
        }
    }
}

impl Serialize for WireHeaders<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Live(map) => {
                let mut seq = serializer.serialize_seq(Some(map.len()))?;
                for (name, value) in map.iter() {
                    seq.serialize_element(&(name.as_str(), raw(value.as_bytes())))?;
                }
                seq.end()
            }
            Self::Read(pairs) => pairs.serialize(serializer),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireHeaders<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::Read)
    }
}

/// An entry's tags: the live list when encoding, strings borrowed from the
/// read buffer when decoding. Either way a sequence of strings.
#[derive(Debug)]
pub(crate) enum WireTags<'a> {
    Live(&'a [Arc<str>]),
    Read(Vec<&'a str>),
}

impl WireTags<'_> {
    /// The tags as an entry keeps them.
    pub(crate) fn to_tags(&self) -> Arc<[Arc<str>]> {
        match self {
            Self::Live(tags) => Arc::from(*tags),
            Self::Read(tags) => tags.iter().map(|tag| Arc::from(*tag)).collect(),
        }
    }

    fn text_len(&self) -> usize {
        match self {
            Self::Live(tags) => tags.iter().map(|tag| tag.len() + 2).sum(),
            Self::Read(tags) => tags.iter().map(|tag| tag.len() + 2).sum(),
        }
    }
}

impl Serialize for WireTags<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Live(tags) => {
                let mut seq = serializer.serialize_seq(Some(tags.len()))?;
                for tag in tags.iter() {
                    seq.serialize_element(&**tag)?;
                }
                seq.end()
            }
            Self::Read(tags) => tags.serialize(serializer),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for WireTags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::Read)
    }
}

impl WireEntry<'_> {
    /// About how many bytes the entry encodes to (a little more, usually).
    pub(crate) fn size_hint(&self) -> usize {
        let fixed = 96;
        match self {
            Self::Response {
                headers,
                body,
                tags: tagged,
                ..
            } => {
                let headers: usize = match headers {
                    WireHeaders::Live(map) => map
                        .iter()
                        .map(|(name, value)| name.as_str().len() + value.len() + 4)
                        .sum(),
                    WireHeaders::Read(pairs) => pairs
                        .iter()
                        .map(|(name, value)| name.len() + value.len() + 4)
                        .sum(),
                };
                fixed + headers + body.len() + 5 + tagged.text_len()
            }
            Self::Variants {
                names,
                tags: tagged,
                ..
            } => fixed + names.iter().map(|name| name.len() + 2).sum::<usize>() + tagged.text_len(),
            Self::Value {
                bytes,
                tags: tagged,
                ..
            } => fixed + bytes.len() + 5 + tagged.text_len(),
        }
    }
}

/// `bytes` as written on the wire.
pub(crate) fn raw(bytes: &[u8]) -> &Raw {
    Raw::new(bytes)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

pub(crate) fn time(millis: u64) -> SystemTime {
    crate::clock::later(UNIX_EPOCH, Duration::from_millis(millis))
}

pub(crate) fn span(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub(crate) fn span_millis(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}

/// Why a record could not be turned back into an entry.
#[derive(Debug)]
pub(crate) struct BadEntry(pub(crate) String);

impl Entry {
    /// The entry in the compact binary form a dump holds it in, for a store
    /// that keeps entries outside the process (a shared Redis tier). Times
    /// are absolute, so the bytes read back later keep the freshness left.
    /// The form changes with cachet's dump format version: a store that
    /// persists it should tag it with a version of its own.
    ///
    /// ```
    /// use cachet_core::store::{CachedResponse, Entry};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let response = CachedResponse::new(
    ///     http::StatusCode::OK,
    ///     &http::HeaderMap::new(),
    ///     bytes::Bytes::from_static(b"hello"),
    ///     SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ///     Duration::from_secs(60),
    /// );
    /// let entry = Entry::from(response);
    /// let again = Entry::from_bytes(&entry.to_bytes()).unwrap();
    /// assert_eq!(again.keep_until(), entry.keep_until());
    /// assert_eq!(again.response().unwrap().body(), "hello");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Encoding into a growing vector cannot fail.
        let _ = postcard::to_io(&self.to_wire(), &mut bytes);
        bytes
    }

    /// The entry [`to_bytes`](Self::to_bytes) wrote, or why `bytes` are not one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::store::StoreError> {
        Self::decode(bytes, false)
    }

    /// [`from_bytes`](Self::from_bytes) for an entry that an in-memory
    /// tier will hold: hits on a response share a prepared form of its
    /// headers, which its weight counts once a hit makes it. An entry read
    /// for one answer is better without: it would make the form only to
    /// drop it.
    pub fn from_bytes_for_memory(bytes: &[u8]) -> Result<Self, crate::store::StoreError> {
        Self::decode(bytes, true)
    }

    fn decode(bytes: &[u8], room: bool) -> Result<Self, crate::store::StoreError> {
        let wire: WireEntry<'_> = postcard::from_bytes(bytes).map_err(|error| {
            crate::store::StoreError::new(format!("an entry does not decode: {error}"))
        })?;
        Self::from_wire(wire, room).map_err(|BadEntry(reason)| {
            crate::store::StoreError::new(format!("an entry does not rebuild: {reason}"))
        })
    }

    /// The entry as written.
    pub(crate) fn to_wire(&self) -> WireEntry<'_> {
        match self {
            Self::Response(response) => CachedResponse::to_wire(response),
            Self::Variants(index) => VariantIndex::to_wire(index),
            Self::Value(value) => ValueEntry::to_wire(value),
        }
    }

    /// The entry a record describes; a response with room for a prepared
    /// form of its headers when `room` (one that will live in memory,
    /// where hits share the form: see `CachedResponse::with_prepared_room`).
    pub(crate) fn from_wire(wire: WireEntry<'_>, room: bool) -> Result<Self, BadEntry> {
        Ok(match wire {
            WireEntry::Response { .. } => Self::Response(
                CachedResponse::from_wire(wire)?
                    .with_prepared_room(room)
                    .into(),
            ),
            WireEntry::Variants { .. } => Self::Variants(VariantIndex::from_wire(wire)?.into()),
            WireEntry::Value { .. } => Self::Value(ValueEntry::from_wire(wire)?.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_for_memory_have_room_for_a_prepared_form() {
        let response = CachedResponse::new(
            http::StatusCode::OK,
            &http::HeaderMap::new(),
            bytes::Bytes::from_static(b"body"),
            std::time::SystemTime::UNIX_EPOCH,
            std::time::Duration::from_secs(60),
        );
        let bytes = Entry::from(response).to_bytes();
        let room = |entry: Entry| entry.response().unwrap().prepared(|| 1_u8).is_some();
        assert!(!room(Entry::from_bytes(&bytes).unwrap()));
        assert!(room(Entry::from_bytes_for_memory(&bytes).unwrap()));
    }

    #[test]
    fn byte_strings_encode_as_plain_byte_slices_did() {
        // Dumps written before byte strings went through `serde_bytes`
        // must still read: the encoding is the same.
        let bytes: &[u8] = b"\x00body\xff";
        assert_eq!(
            postcard::to_allocvec(raw(bytes)).unwrap(),
            postcard::to_allocvec(bytes).unwrap()
        );
        let pair = ("etag", raw(b"\"1\""));
        let plain: (&str, &[u8]) = ("etag", b"\"1\"");
        assert_eq!(
            postcard::to_allocvec(&pair).unwrap(),
            postcard::to_allocvec(&plain).unwrap()
        );
    }
}
