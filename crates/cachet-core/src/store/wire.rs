//! The serialized form of a stored [`Entry`]: what a dump file holds (and
//! what a shared store will), with times as absolute wall-clock
//! milliseconds since the Unix epoch, so that an entry read back later
//! keeps exactly the freshness it had left.
//!
//! Encoded with postcard (compact, not self-describing); the dump's header
//! carries the format version.

use super::entry::{CachedResponse, Entry, ValueEntry, VariantIndex};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An entry as written: borrowed from the live entry when encoding, from
/// the read buffer when decoding.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireEntry<'a> {
    Response {
        status: u16,
        #[serde(borrow)]
        headers: Vec<(&'a str, &'a [u8])>,
        body: &'a [u8],
        stored_at: u64,
        fresh_until: u64,
        keep_until: u64,
        initial_age: u64,
        generated_etag: bool,
        no_stale: bool,
        while_revalidate: u64,
        if_error: u64,
        fetch_time: u64,
        tags: Vec<&'a str>,
    },
    Variants {
        #[serde(borrow)]
        names: Vec<&'a str>,
        generation: u64,
        keep_until: u64,
        tags: Vec<&'a str>,
        stored: u64,
    },
    Value {
        bytes: &'a [u8],
        stored_at: u64,
        expires_at: u64,
        #[serde(borrow)]
        tags: Vec<&'a str>,
    },
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
    /// The entry as written.
    pub(crate) fn to_wire(&self) -> WireEntry<'_> {
        match self {
            Self::Response(response) => CachedResponse::to_wire(response),
            Self::Variants(index) => VariantIndex::to_wire(index),
            Self::Value(value) => ValueEntry::to_wire(value),
        }
    }

    /// The entry a record describes.
    pub(crate) fn from_wire(wire: WireEntry<'_>) -> Result<Self, BadEntry> {
        Ok(match wire {
            WireEntry::Response { .. } => Self::Response(CachedResponse::from_wire(wire)?.into()),
            WireEntry::Variants { .. } => Self::Variants(VariantIndex::from_wire(wire)?.into()),
            WireEntry::Value { .. } => Self::Value(ValueEntry::from_wire(wire)?.into()),
        })
    }
}
