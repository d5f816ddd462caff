//! Human-friendly durations (`"5m"`, `"1h 30m"`, `300`) and sizes (`"64MiB"`,
//! `"512kB"`, `1048576`) as they appear in configuration.

use serde::Deserialize;
use std::time::Duration;

/// A duration written either as whole seconds or as text such as `"5m"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum DurationSpec {
    Seconds(i64),
    Text(String),
}

impl DurationSpec {
    /// Parses the duration; `Err` holds the reason, for a [`ConfigError`](crate::ConfigError).
    pub(crate) fn parse(&self) -> Result<Duration, String> {
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
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
pub fn parse_size(text: &str) -> Result<u64, String> {
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

/// A byte size written either as a number of bytes or as text such as `"64MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum SizeSpec {
    Bytes(i64),
    Text(String),
}

impl SizeSpec {
    /// Parses the size, which must be above zero.
    pub(crate) fn parse(&self) -> Result<u64, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_text_and_seconds() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        assert_eq!(DurationSpec::Seconds(7).parse(), Ok(Duration::from_secs(7)));
        assert!(DurationSpec::Seconds(-1)
            .parse()
            .unwrap_err()
            .contains("negative"));
        assert!(parse_duration("five minutes")
            .unwrap_err()
            .contains("not a duration"));
    }

    #[test]
    fn sizes_in_text_and_bytes() {
        assert_eq!(SizeSpec::Text("64MiB".into()).parse(), Ok(64 * 1024 * 1024));
        assert_eq!(SizeSpec::Text("1 KiB".into()).parse(), Ok(1024));
        assert_eq!(SizeSpec::Text("2kB".into()).parse(), Ok(2000));
        assert_eq!(SizeSpec::Bytes(100).parse(), Ok(100));
        assert!(SizeSpec::Bytes(0).parse().unwrap_err().contains("zero"));
        assert!(SizeSpec::Bytes(-5)
            .parse()
            .unwrap_err()
            .contains("negative"));
        assert!(SizeSpec::Text("0MiB".into())
            .parse()
            .unwrap_err()
            .contains("zero"));
        assert!(SizeSpec::Text("lots".into())
            .parse()
            .unwrap_err()
            .contains("not a size"));
    }
}
