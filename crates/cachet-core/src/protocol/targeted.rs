//! Targeted cache-control fields (RFC 9213): `CDN-Cache-Control`, and a
//! field of cachet's own, that an origin uses to tell cachet something
//! other than what `Cache-Control` tells browsers.
//!
//! The first targeted field with a valid, non-empty value decides cachet's
//! storage and freshness, and `Cache-Control` and `Expires` are then
//! ignored by cachet (they still reach the client unchanged). A field that
//! is not a valid structured-field dictionary (RFC 9651 §3.2) is ignored,
//! as if absent (RFC 9213 §2.2).

use crate::protocol::cache_control::CacheControl;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use sfv::{BareItem, Dictionary, ListEntry, Parser};

/// `CDN-Cache-Control` (RFC 9213 §3).
pub(crate) const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// Which targeted fields cachet obeys, most specific first, and which it
/// removes before a client sees them.
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    /// cachet's own field (`[headers] target`), if configured.
    pub(crate) own: Option<HeaderName>,
    /// Whether `CDN-Cache-Control` is obeyed.
    pub(crate) cdn: bool,
    /// Whether `CDN-Cache-Control` is passed on to the client (for CDNs in
    /// front of cachet).
    pub(crate) forward_cdn: bool,
}

impl Default for Targets {
    fn default() -> Self {
        Self {
            own: None,
            cdn: true,
            forward_cdn: true,
        }
    }
}

/// A response's caching directives as cachet reads them.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// The directives of the targeted field that decided, else of
    /// `Cache-Control`.
    pub(crate) cc: CacheControl,
    /// Whether a targeted field decided: `Expires` is then ignored too.
    pub(crate) targeted: bool,
}

impl Policy {
    /// The policy of `Cache-Control` and `Expires` alone.
    pub(crate) fn untargeted(headers: &HeaderMap) -> Self {
        Self {
            cc: CacheControl::from_headers(headers),
            targeted: false,
        }
    }
}

impl Targets {
    /// The policy `headers` give cachet (RFC 9213 §2.1).
    pub(crate) fn policy(&self, headers: &HeaderMap) -> Policy {
        let cdn = CDN_CACHE_CONTROL;
        let fields = self.own.iter().chain(self.cdn.then_some(&cdn));
        for field in fields {
            if let Some(cc) = parse(headers.get_all(field).iter()) {
                return Policy { cc, targeted: true };
            }
        }
        Policy::untargeted(headers)
    }

    /// The targeted fields a client never sees: cachet's own, and
    /// `CDN-Cache-Control` unless it is forwarded.
    pub(crate) fn stripped(&self) -> Vec<HeaderName> {
        self.own
            .iter()
            .cloned()
            .chain((!self.forward_cdn).then_some(CDN_CACHE_CONTROL))
            .collect()
    }
}

/// A structured field's lines as one value (RFC 9651 §4.2: the lines of a
/// list or dictionary field are combined with commas before parsing).
pub(crate) fn joined_lines<'a>(lines: impl Iterator<Item = &'a HeaderValue>) -> Vec<u8> {
    let mut joined = Vec::new();
    for line in lines {
        if !joined.is_empty() {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(line.as_bytes());
    }
    joined
}

/// A targeted field's lines as directives; `None` when absent, empty or
/// not a structured-field dictionary.
fn parse<'a>(lines: impl Iterator<Item = &'a HeaderValue>) -> Option<CacheControl> {
    // Most responses carry no targeted field: no parser for nothing.
    let mut lines = lines.peekable();
    lines.peek()?;
    let joined = joined_lines(lines);
    let dictionary: Dictionary = Parser::new(&joined).parse_dictionary().ok()?;
    if dictionary.is_empty() {
        return None;
    }
    let mut cc = CacheControl::new();
    for (name, member) in &dictionary {
        let value = match member {
            ListEntry::Item(item) => match &item.bare_item {
                // `no-store=?0` says the directive is off.
                BareItem::Boolean(false) => continue,
                BareItem::Boolean(true) => None,
                BareItem::Integer(n) => Some(i64::from(*n).to_string()),
                BareItem::String(s) => Some(s.as_str().to_owned()),
                BareItem::Token(t) => Some(t.as_str().to_owned()),
                // Decimals, byte sequences, dates: no cache directive takes
                // one; the directive counts as given without its value.
                _ => None,
            },
            ListEntry::InnerList(_) => None,
        };
        cc = cc.directive(name.as_str(), value.as_deref());
    }
    Some(cc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header_map;

    fn cdn() -> Targets {
        Targets::default()
    }

    #[test]
    fn a_valid_targeted_field_replaces_cache_control_rfc9213_2_1() {
        let headers = header_map(&[
            ("cache-control", "no-store"),
            (
                "cdn-cache-control",
                "max-age=600, stale-while-revalidate=30",
            ),
        ]);
        let policy = cdn().policy(&headers);
        assert!(policy.targeted);
        assert!(!policy.cc.has("no-store"));
        assert_eq!(policy.cc.seconds("max-age"), Some(600));
        assert_eq!(policy.cc.seconds("stale-while-revalidate"), Some(30));
    }

    #[test]
    fn the_most_specific_field_wins_and_lines_combine_rfc9213_2_1() {
        let targets = Targets {
            own: Some(HeaderName::from_static("cachet-cache-control")),
            ..Targets::default()
        };
        let headers = header_map(&[
            ("cdn-cache-control", "max-age=600"),
            ("cachet-cache-control", "max-age=60"),
            ("cachet-cache-control", "must-revalidate"),
        ]);
        let policy = targets.policy(&headers);
        assert_eq!(policy.cc.seconds("max-age"), Some(60));
        assert!(policy.cc.has("must-revalidate"));
        // Without its own field, CDN-Cache-Control decides.
        let headers = header_map(&[("cdn-cache-control", "max-age=600")]);
        assert_eq!(targets.policy(&headers).cc.seconds("max-age"), Some(600));
    }

    #[test]
    fn an_invalid_or_empty_targeted_field_is_ignored_rfc9213_2_2() {
        for value in [
            "max-age=60, , no-store",
            "Max-Age=60",
            "max-age=\"60",
            "",
            "max-age=6.5.5",
        ] {
            let headers =
                header_map(&[("cache-control", "max-age=5"), ("cdn-cache-control", value)]);
            let policy = cdn().policy(&headers);
            assert!(!policy.targeted, "{value:?}");
            assert_eq!(policy.cc.seconds("max-age"), Some(5), "{value:?}");
        }
    }

    #[test]
    fn booleans_turn_directives_on_and_off() {
        let headers = header_map(&[("cdn-cache-control", "no-store=?0, private, max-age=9")]);
        let policy = cdn().policy(&headers);
        assert!(!policy.cc.has("no-store"));
        assert!(policy.cc.has("private"));
    }

    #[test]
    fn obeying_and_stripping_are_configurable() {
        let off = Targets {
            cdn: false,
            ..Targets::default()
        };
        let headers = header_map(&[
            ("cache-control", "max-age=5"),
            ("cdn-cache-control", "max-age=600"),
        ]);
        assert!(!off.policy(&headers).targeted);
        assert!(Targets::default().stripped().is_empty());
        let own = Targets {
            own: Some(HeaderName::from_static("cachet-cache-control")),
            forward_cdn: false,
            ..Targets::default()
        };
        assert_eq!(
            own.stripped(),
            ["cachet-cache-control", "cdn-cache-control"]
        );
    }
}
