//! What a stored value really costs on the heap, for the byte budgets.
//!
//! A cache's `max_bytes` is only a promise if the weigher counts what an
//! entry keeps alive: its body and header bytes, and also the header map's
//! slots, the entry itself, its key, the store's bookkeeping for it and its
//! share of the store's key index. The constants below were measured with a
//! counting allocator (`tests/memory_accounting.rs` checks the sum stays
//! within ±20% of the live heap for representative entries); they hold for
//! 64-bit targets and the `http`, `bytes` and `quick_cache` versions in the lock
//! file. Each allocation also counts [`ALLOCATION`] bytes for the
//! allocator's own header and rounding, which the process pays as RSS.

use http::header::{self, HeaderMap, HeaderName};
use std::mem::size_of;
use std::sync::Arc;

/// What an allocator spends per allocation beyond the bytes asked for (a
/// chunk header, rounding up to its size class), on average.
const ALLOCATION: u64 = 8;
/// Heap bytes per slot of a `HeaderMap`'s capacity: its entry (name, value,
/// links and hash) and its share of the index table.
const HEADER_SLOT: u64 = 110;
/// Heap bytes of one entry of a `HeaderMap` (`Bucket`: hash, links, name
/// and value), without its share of the index table: a copy of a map of
/// seven fields and twelve slots allocates 7 × 104 + 16 × 4 bytes.
const HEADER_ENTRY: u64 = 104;
/// A `Bytes` shared between owners: the control block it allocates.
const SHARED_BYTES: u64 = 24;
/// An `Arc`'s counts, in front of the value.
const ARC: u64 = 16;
/// What the in-memory store keeps per key besides the key text: quick_cache's
/// slot in its slab (key pointer, entry, queue links) and in its hash table,
/// and its record of the key once evicted (`benches/store_choice.rs`
/// measures 141 bytes per entry, the key's own allocation included). It
/// allocates nothing per key: the slab and table grow in place.
pub(crate) const STORE_PER_KEY: u64 = 64;
/// The store's index entry for a key: its slot (key and entry pointers) in
/// the index's map of keys, at the map's average load.
const INDEXED_KEY: u64 = 50;
/// The index's cost per tag of a key, as if only that key carried it (its
/// URI term, a surrogate key naming one item such as `item-42`): a map
/// slot of its own (the tag and the key inline, 32 bytes) at the map's
/// average load. A tag many keys share costs each of them about as much: a
/// slot in its key set.
const TAG: u64 = 80;

/// Header names `http` knows (they cost nothing beyond their slot); any
/// other name is a shared allocation of its own.
const STANDARD_NAMES: [HeaderName; 24] = [
    header::ACCEPT_RANGES,
    header::AGE,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::CONTENT_LENGTH,
    header::CONTENT_LOCATION,
    header::CONTENT_SECURITY_POLICY,
    header::CONTENT_TYPE,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::LAST_MODIFIED,
    header::LINK,
    header::LOCATION,
    header::SERVER,
    header::STRICT_TRANSPORT_SECURITY,
    header::VARY,
    header::VIA,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::WARNING,
];

/// A header map as stored (values in one block, see `entry.rs`).
pub(crate) fn headers(headers: &HeaderMap) -> u64 {
    if headers.capacity() == 0 {
        return 0;
    }
    // The entries and the index table.
    let slots = headers.capacity() as u64 * HEADER_SLOT + 2 * ALLOCATION;
    let mut bytes = 0;
    for (name, value) in headers {
        bytes += value.len() as u64;
        if !STANDARD_NAMES.contains(name) {
            bytes += name.as_str().len() as u64 + SHARED_BYTES + 2 * ALLOCATION;
        }
    }
    // The values' block and its control block.
    slots + bytes + SHARED_BYTES + 2 * ALLOCATION
}

/// A copy (`Clone`) of a header map whose names and values it shares: an
/// entry per field and the original's index table (four bytes a slot, a
/// third more slots than its capacity).
pub(crate) fn copied_headers(headers: &HeaderMap) -> u64 {
    let index = headers.capacity() as u64 * 4 / 3 * 4;
    headers.len() as u64 * HEADER_ENTRY + index + 2 * ALLOCATION
}

/// A body of `len` bytes: its own allocation, shared on the first hit.
pub(crate) fn body(len: usize) -> u64 {
    if len == 0 {
        0
    } else {
        len as u64 + SHARED_BYTES + 2 * ALLOCATION
    }
}

/// A value's tag list and its entries in the key index. The first tag of a
/// response is its URI's term, which few keys share.
pub(crate) fn tags(tags: &[Arc<str>]) -> u64 {
    let list = shared_slice::<Arc<str>>(tags.len());
    if tags.is_empty() {
        return list;
    }
    let each: u64 = tags
        .iter()
        .map(|tag| ARC + tag.len() as u64 + ALLOCATION + TAG)
        .sum();
    list + each
}

/// `len` values of type `T` behind an `Arc<[T]>`.
pub(crate) const fn shared_slice<T>(len: usize) -> u64 {
    ARC + (size_of::<T>() * len) as u64 + ALLOCATION
}

/// A value of type `T` behind an `Arc`.
pub(crate) const fn shared<T>() -> u64 {
    ARC + size_of::<T>() as u64 + ALLOCATION
}

/// A key of `len` bytes in the store, with the store's bookkeeping for it.
pub(crate) fn key(len: usize) -> u64 {
    ARC + len as u64 + ALLOCATION + STORE_PER_KEY + INDEXED_KEY
}
