//! Human-friendly durations (`"5m"`, `"1h 30m"`, `300`) and sizes (`"64MiB"`,
//! `"512kB"`, `1048576`) as they appear in configuration.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A duration as the configuration writes it — whole seconds (`30`) or text
/// (`"30s"`, `"5m"`, `"1h 30m"`, `"250ms"`) — for any TOML section,
/// cachet's own or an application's.
///
/// ```
/// use cachet_core::config::DurationValue;
/// use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct Section { timeout: DurationValue }
/// let section: Section = toml::from_str("timeout = 10").unwrap();
/// assert_eq!(section.timeout.parse(), Ok(Duration::from_secs(10)));
/// let section: Section = toml::from_str("timeout = \"1m 30s\"").unwrap();
/// assert_eq!(section.timeout.parse(), Ok(Duration::from_secs(90)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationValue {
    /// Whole seconds: `300`.
    Seconds(i64),
    /// Text: `"5m"`, `"1h 30m"`, `"250ms"`.
    Text(String),
}

impl DurationValue {
    /// Parses the duration; `Err` holds the reason, for a [`ConfigError`](crate::ConfigError).
    pub fn parse(&self) -> Result<Duration, String> {
        match self {
            Self::Seconds(secs) => u64::try_from(*secs)
                .map(Duration::from_secs)
                .map_err(|_| format!("{secs} is negative; a duration must be zero or more")),
            Self::Text(text) => parse_duration(text),
        }
    }
}

/// Parses `"5m"`, `"1h 30m"`, `"250ms"` or a bare number of seconds, as
/// every duration in the configuration is written; `Err` holds the reason.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(secs) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(trimmed).map_err(|err| {
        format!("{text:?} is not a duration ({err}); write it like \"30s\", \"5m\" or \"1h 30m\"")
    })
}

/// Parses `"64MiB"`, `"512 KiB"`, `"2kB"` or a bare number of bytes, as
/// every size in the configuration is written; `Err` holds the reason.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    Ok(text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|err| {
            format!("{text:?} is not a size ({err}); write it like \"512KiB\" or \"64MiB\"")
        })?
        .as_u64())
}

/// Parses a header name as the configuration writes it (any case,
/// surrounding spaces ignored); `Err` holds the reason.
pub fn parse_header_name(text: &str) -> Result<http::HeaderName, String> {
    http::HeaderName::from_bytes(text.trim().as_bytes())
        .map_err(|_| format!("`{text}` is not a valid header name"))
}

/// A byte size as the configuration writes it: a number of bytes
/// (`1048576`) or text (`"64MiB"`, `"512 KiB"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeValue {
    /// A number of bytes: `1048576`.
    Bytes(i64),
    /// Text: `"64MiB"`, `"512 KiB"`.
    Text(String),
}

impl SizeValue {
    /// Parses the size, which must be above zero.
    pub fn parse(&self) -> Result<u64, String> {
        let bytes = match self {
            Self::Bytes(bytes) => u64::try_from(*bytes)
                .map_err(|_| format!("{bytes} is negative; a size must be above zero"))?,
            Self::Text(text) => parse_size(text)?,
        };
        if bytes == 0 {
            return Err("a size of zero bytes would store nothing; it must be above zero".into());
        }
        Ok(bytes)
    }
}

/// Reads a whole number or a string, and says which forms it accepts
/// otherwise (serde's untagged enums would not name them).
struct NumberOrText<T> {
    expecting: &'static str,
    number: fn(i64) -> T,
    text: fn(String) -> T,
}

impl<T> Visitor<'_> for NumberOrText<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        Ok((self.number)(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        let value = i64::try_from(value).map_err(|_| E::custom("the number is too large"))?;
        Ok((self.number)(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        Ok((self.text)(value.to_owned()))
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberOrText {
            expecting: "a duration: whole seconds (30) or text (\"30s\", \"5m\", \"1h 30m\")",
            number: Self::Seconds,
            text: Self::Text,
        })
    }
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NumberOrText {
            expecting: "a size: a number of bytes (1048576) or text (\"64MiB\", \"512KiB\")",
            number: Self::Bytes,
            text: Self::Text,
        })
    }
}

/// Serde helpers for the typed fields of [`Rule`](crate::Rule) and
/// [`CacheSpec`](crate::CacheSpec): each reads the configuration's form and
/// fails with the reason, which names the field through the error's path.
pub(crate) mod de_field {
    use super::{parse_header_name, DurationValue, SizeValue};
    use http::{HeaderName, Method, StatusCode};
    use serde::de::{Deserialize, Deserializer, Error};
    use std::time::Duration;

    pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        DurationValue::deserialize(d)?
            .parse()
            .map_err(D::Error::custom)
    }

    pub(crate) fn some_duration<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration(d).map(Some)
    }

    pub(crate) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        SizeValue::deserialize(d)?.parse().map_err(D::Error::custom)
    }

    pub(crate) fn some_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        size(d).map(Some)
    }

    pub(crate) fn some_header_name<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<HeaderName>, D::Error> {
        let name = String::deserialize(d)?;
        parse_header_name(&name).map(Some).map_err(D::Error::custom)
    }

    pub(crate) fn header_names<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<HeaderName>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| parse_header_name(name).map_err(D::Error::custom))
            .collect()
    }

    pub(crate) fn some_header_names<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<HeaderName>>, D::Error> {
        header_names(d).map(Some)
    }

    /// Method names in any case, as the configuration writes them.
    pub(crate) fn some_methods<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Method>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| {
                Method::from_bytes(name.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| D::Error::custom(format!("`{name}` is not a method name")))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub(crate) fn statuses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StatusCode>, D::Error> {
        Vec::<u16>::deserialize(d)?
            .into_iter()
            .map(|code| {
                StatusCode::from_u16(code).map_err(|_| {
                    D::Error::custom(format!("{code} is not a status code (100 to 999)"))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_text_and_seconds() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert_eq!(
            DurationValue::Seconds(7).parse(),
            Ok(Duration::from_secs(7))
        );
        assert!(DurationValue::Seconds(-1)
            .parse()
            .unwrap_err()
            .contains("negative"));
        assert!(parse_duration("five minutes")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn other_types_name_the_accepted_forms() {
        #[derive(Debug, serde::Deserialize)]
        struct Section {
            #[allow(dead_code)]
            ttl: DurationValue,
        }
        let error = toml::from_str::<Section>("ttl = true").unwrap_err();
        assert!(
            error.message().contains("whole seconds (30) or text"),
            "{error}"
        );
    }

    #[test]
    fn sizes_in_text_and_bytes() {
        assert_eq!(
            SizeValue::Text("64MiB".into()).parse(),
            Ok(64 * 1024 * 1024)
        );
        assert_eq!(SizeValue::Text("1 KiB".into()).parse(), Ok(1024));
        assert_eq!(SizeValue::Text("2kB".into()).parse(), Ok(2000));
        assert_eq!(SizeValue::Bytes(100).parse(), Ok(100));
        assert!(SizeValue::Bytes(0).parse().unwrap_err().contains("zero"));
        assert!(SizeValue::Bytes(-5)
            .parse()
            .unwrap_err()
            .contains("negative"));
        assert!(SizeValue::Text("0MiB".into())
            .parse()
            .unwrap_err()
            .contains("zero"));
        assert!(SizeValue::Text("lots".into())
            .parse()
            .unwrap_err()
            .contains("not a size"));
    }
}
