//! Tags (surrogate keys): names a response carries so that everything
//! tagged `material:42` can be purged at once, whatever its URL.
//!
//! A handler tags a response with the `Cache-Tag` header (the name is
//! configurable; comma- or space-separated) or with the [`CacheTags`]
//! response extension. The store indexes entries by tag, so a purge touches
//! only the tagged entries. Each stored response is also indexed under its
//! URI, which is how a mutation clears every variant, method and user entry
//! of the URI it changed.

use http::header::{HeaderMap, HeaderName};
use std::sync::Arc;

/// The default header handlers put tags in.
pub const CACHE_TAG: HeaderName = HeaderName::from_static("cache-tag");

/// Tags set by a handler as a response extension, for handlers that would
/// rather not write a header.
///
/// ```
/// use cachet_core::CacheTags;
/// let mut response = http::Response::new(());
/// response.extensions_mut().insert(CacheTags::new(["material:42", "materials"]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheTags(Vec<String>);

impl CacheTags {
    /// The tags `tags`.
    pub fn new<I, T>(tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        Self(tags.into_iter().map(Into::into).collect())
    }

    /// The tags.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Where tags are read from, and whether the header is taken off responses.
#[derive(Debug, Clone)]
pub(crate) struct TagSettings {
    pub(crate) header: HeaderName,
    pub(crate) strip: bool,
}

impl Default for TagSettings {
    fn default() -> Self {
        Self {
            header: CACHE_TAG,
            strip: true,
        }
    }
}

impl TagSettings {
    /// The tags of a response: its tag header's (taken off `headers` when
    /// `strip` is on) and its extension's, without duplicates.
    pub(crate) fn take(
        &self,
        headers: &mut HeaderMap,
        extension: Option<&CacheTags>,
    ) -> Vec<Arc<str>> {
        let mut tags: Vec<Arc<str>> = Vec::new();
        for value in headers.get_all(&self.header) {
            let text = String::from_utf8_lossy(value.as_bytes());
            tags.extend(
                text.split(|c: char| c == ',' || c.is_ascii_whitespace())
                    .filter(|tag| !tag.is_empty())
                    .map(Arc::from),
            );
        }
        if self.strip {
            headers.remove(&self.header);
        }
        if let Some(extension) = extension {
            tags.extend(
                extension
                    .iter()
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(Arc::from),
            );
        }
        tags.sort();
        tags.dedup();
        tags
    }
}

/// `Cache-Groups` (RFC 9875 §2): the groups a response belongs to.
pub(crate) const CACHE_GROUPS: HeaderName = HeaderName::from_static("cache-groups");

/// `Cache-Group-Invalidation` (RFC 9875 §3): the groups a response to an
/// unsafe request invalidates.
pub(crate) const CACHE_GROUP_INVALIDATION: HeaderName =
    HeaderName::from_static("cache-group-invalidation");

/// The index terms of the groups `field` names in `headers`, scoped to the
/// response's origin (`host`, the normalized `Host`: cachet serves one
/// scheme per listener). The field is a structured-field list of strings
/// (its lines combined); a field that does not parse is ignored whole, and
/// members that are not strings are skipped (RFC 9875 §2).
pub(crate) fn group_terms(
    headers: &HeaderMap,
    field: &HeaderName,
    host: Option<&str>,
) -> Vec<Arc<str>> {
    let joined = crate::protocol::targeted::joined_lines(headers.get_all(field).iter());
    if joined.is_empty() {
        return Vec::new();
    }
    let Ok(list) = sfv::Parser::new(&joined).parse_list::<sfv::List>() else {
        return Vec::new();
    };
    let mut terms: Vec<Arc<str>> = list
        .iter()
        .filter_map(|member| match member {
            sfv::ListEntry::Item(item) => item.bare_item.as_string(),
            sfv::ListEntry::InnerList(_) => None,
        })
        .map(|group| group_term(host, group.as_str()))
        .collect();
    terms.sort();
    terms.dedup();
    terms
}

/// The index term of a group: `group `, the origin's host (`-` without
/// one), a space, the group's name. The first space keeps it apart from
/// tags, and the prefix from URI terms.
fn group_term(host: Option<&str>, group: &str) -> Arc<str> {
    Arc::from(format!("group {} {group}", host.unwrap_or("-")))
}

/// The index term of a URI: `uri `, its canonical target (the first part
/// of every key made for it) and, when keys hold the host, ` @` and the
/// normalized host — so a purge on one virtual host never touches
/// another's. The space keeps it apart from any tag a response can carry,
/// since tags never contain one.
pub(crate) fn uri_term(target: &str, host: Option<&str>) -> Arc<str> {
    let mut term = String::with_capacity(target.len() + host.map_or(0, str::len) + 6);
    term.push_str("uri ");
    term.push_str(target);
    if let Some(host) = host {
        term.push(' ');
        term.push_str(host);
    }
    Arc::from(term)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header_map;

    #[test]
    fn cache_groups_are_strings_scoped_to_the_origin_rfc9875_2() {
        let headers = header_map(&[
            ("cache-groups", "\"scripts\", \"top level\""),
            ("cache-groups", "\"scripts\", token, 7"),
        ]);
        let terms = group_terms(&headers, &CACHE_GROUPS, Some("shop.example"));
        assert_eq!(
            terms.iter().map(|t| &**t).collect::<Vec<_>>(),
            ["group shop.example scripts", "group shop.example top level"]
        );
        // Another origin's group is another term.
        assert_ne!(
            group_terms(&headers, &CACHE_GROUPS, Some("other.example")),
            terms
        );
        // A field that does not parse is ignored whole.
        for bad in ["\"unterminated", "\"a\",,\"b\"", "(\"a\""] {
            let headers = header_map(&[("cache-groups", bad)]);
            assert!(
                group_terms(&headers, &CACHE_GROUPS, None).is_empty(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags_are_split_on_commas_and_spaces_deduplicated_and_stripped() {
        let settings = TagSettings::default();
        let mut headers = header_map(&[
            ("cache-tag", "material:42, materials  user:7"),
            ("cache-tag", "materials"),
            ("content-type", "text/plain"),
        ]);
        let extension = CacheTags::new(["extra", " "]);
        let tags = settings.take(&mut headers, Some(&extension));
        let tags: Vec<&str> = tags.iter().map(|tag| &**tag).collect();
        assert_eq!(tags, ["extra", "material:42", "materials", "user:7"]);
        assert!(!headers.contains_key("cache-tag"));
        assert!(headers.contains_key("content-type"));
    }

    #[test]
    fn the_header_stays_when_not_stripping() {
        let settings = TagSettings {
            header: HeaderName::from_static("surrogate-key"),
            strip: false,
        };
        let mut headers = header_map(&[("surrogate-key", "a b")]);
        assert_eq!(settings.take(&mut headers, None).len(), 2);
        assert!(headers.contains_key("surrogate-key"));
    }

    #[test]
    fn uri_terms_never_equal_a_tag() {
        assert_eq!(&*uri_term("/a?b=1", None), "uri /a?b=1");
        assert_eq!(&*uri_term("/a", Some("@a.example")), "uri /a @a.example");
        assert!(uri_term("/a", None).contains(' '));
    }
}
