//! How values are serialized, and why a value operation failed.

use crate::store::StoreError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How values are serialized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Codec {
    /// postcard: compact, fast, not self-describing (the default).
    #[default]
    Binary,
    /// JSON: readable in a store's own tools, larger.
    Json,
}

impl Codec {
    pub(super) fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, ValueError> {
        let bytes = match self {
            Self::Binary => {
                postcard::to_stdvec(value).map_err(|e| ValueError::Encode(e.to_string()))?
            }
            Self::Json => {
                serde_json::to_vec(value).map_err(|e| ValueError::Encode(e.to_string()))?
            }
        };
        Ok(Bytes::from(bytes))
    }

    /// Appends `value`'s encoding to `buf`.
    pub(super) fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        buf: &mut Vec<u8>,
    ) -> Result<(), ValueError> {
        match self {
            Self::Binary => postcard::to_io(value, buf)
                .map(drop)
                .map_err(|e| ValueError::Encode(e.to_string())),
            Self::Json => {
                serde_json::to_writer(buf, value).map_err(|e| ValueError::Encode(e.to_string()))
            }
        }
    }

    pub(super) fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, ValueError> {
        match self {
            Self::Binary => {
                let (value, rest) = postcard::take_from_bytes(bytes)
                    .map_err(|e| ValueError::Decode(e.to_string()))?;
                // Postcard reads a prefix: bytes left over mean another
                // type was stored (a string read as an integer, say).
                if !rest.is_empty() {
                    return Err(ValueError::Decode(format!(
                        "{} bytes left over: the value is of another type",
                        rest.len()
                    )));
                }
                Ok(value)
            }
            Self::Json => {
                serde_json::from_slice(bytes).map_err(|e| ValueError::Decode(e.to_string()))
            }
        }
    }
}

/// Why a value operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The value could not be serialized.
    #[error("cannot encode the value: {0}")]
    Encode(String),
    /// The stored bytes are not a value of the requested type.
    #[error("cannot decode the stored value: {0}")]
    Decode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_of_another_type_does_not_decode() {
        let bytes = Codec::Binary.encode("steel").unwrap();
        assert!(Codec::Binary.decode::<i64>(&bytes).is_err());
        assert!(Codec::Json
            .decode::<i64>(&Codec::Json.encode("steel").unwrap())
            .is_err());
    }

    #[test]
    fn both_codecs_round_trip() {
        for codec in [Codec::Binary, Codec::Json] {
            let bytes = codec.encode(&("tea", 3_u32)).unwrap();
            let back: (String, u32) = codec.decode(&bytes).unwrap();
            assert_eq!(back, ("tea".to_owned(), 3));
            assert!(matches!(
                codec.decode::<Vec<u64>>(b"\xff\xff\xff"),
                Err(ValueError::Decode(_))
            ));
        }
    }
}
