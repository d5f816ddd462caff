//! The serialized form of entries (`store::wire`), next to the fields it
//! mirrors.

use super::*;
use crate::store::wire::{
    millis, raw, span, span_millis, time, BadEntry, WireEntry, WireHeaders, WireTags,
};

impl CachedResponse {
    pub(crate) fn to_wire(&self) -> WireEntry<'_> {
        WireEntry::Response {
            status: self.status.as_u16(),
            headers: WireHeaders::Live(&self.headers),
            body: raw(&self.body),
            stored_at: millis(self.stored_at),
            fresh_until: millis(self.fresh_until),
            keep_until: millis(self.keep_until),
            initial_age: span_millis(self.initial_age),
            generated_etag: self.generated_etag,
            no_stale: self.no_stale,
            while_revalidate: span_millis(self.while_revalidate),
            if_error: span_millis(self.if_error),
            fetch_time: span_millis(self.fetch_time),
            tags: WireTags::Live(&self.tags),
        }
    }

    pub(crate) fn from_wire(wire: WireEntry<'_>) -> Result<Self, BadEntry> {
        let WireEntry::Response {
            status,
            headers,
            body,
            stored_at,
            fresh_until,
            keep_until,
            initial_age,
            generated_etag,
            no_stale,
            while_revalidate,
            if_error,
            fetch_time,
            tags,
        } = wire
        else {
            return Err(BadEntry("not a response".into()));
        };
        let status =
            StatusCode::from_u16(status).map_err(|_| BadEntry(format!("status {status}")))?;
        // The values straight into one block, as `compact_headers`
        // would leave them, without a map of copies in between.
        let mut block = Vec::new();
        headers.try_for_each(|_, value| {
            block.extend_from_slice(value);
            Ok::<(), BadEntry>(())
        })?;
        let block = Bytes::from(block);
        let mut map = HeaderMap::with_capacity(headers.len());
        let mut start = 0;
        headers.try_for_each(|name, value| {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BadEntry(format!("header name {name:?}")))?;
            let end = start + value.len();
            let value = header::HeaderValue::from_maybe_shared(block.slice(start..end))
                .map_err(|_| BadEntry(format!("a value of {name}")))?;
            map.append(name, value);
            start = end;
            Ok(())
        })?;
        Ok(Self {
            prepared: super::Prepared::default(),
            status,
            headers_weight: crate::weight::headers(&map),
            headers: map,
            body: Bytes::copy_from_slice(body),
            stored_at: time(stored_at),
            fresh_until: time(fresh_until),
            keep_until: time(keep_until),
            initial_age: span(initial_age),
            generated_etag,
            no_stale,
            while_revalidate: span(while_revalidate),
            if_error: span(if_error),
            fetch_time: span(fetch_time),
            tags: tags.to_tags(),
        })
    }
}

impl VariantIndex {
    pub(crate) fn to_wire(&self) -> WireEntry<'_> {
        WireEntry::Variants {
            names: self.names.iter().map(HeaderName::as_str).collect(),
            generation: self.generation,
            keep_until: millis(self.keep_until),
            tags: WireTags::Live(&self.tags),
            stored: self.stored as u64,
        }
    }

    pub(crate) fn from_wire(wire: WireEntry<'_>) -> Result<Self, BadEntry> {
        let WireEntry::Variants {
            names,
            generation,
            keep_until,
            tags,
            stored,
        } = wire
        else {
            return Err(BadEntry("not a variant index".into()));
        };
        let names = names
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| BadEntry(format!("header name {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            names: names.into(),
            generation,
            keep_until: time(keep_until),
            tags: tags.to_tags(),
            stored: usize::try_from(stored).unwrap_or(usize::MAX),
        })
    }
}

impl ValueEntry {
    pub(crate) fn to_wire(&self) -> WireEntry<'_> {
        WireEntry::Value {
            bytes: raw(&self.bytes),
            stored_at: millis(self.stored_at),
            expires_at: millis(self.expires_at),
            tags: WireTags::Live(&self.tags),
        }
    }

    pub(crate) fn from_wire(wire: WireEntry<'_>) -> Result<Self, BadEntry> {
        let WireEntry::Value {
            bytes,
            stored_at,
            expires_at,
            tags,
        } = wire
        else {
            return Err(BadEntry("not a value".into()));
        };
        Ok(Self {
            bytes: Bytes::copy_from_slice(bytes),
            stored_at: time(stored_at),
            expires_at: time(expires_at),
            tags: tags.to_tags(),
        })
    }
}
