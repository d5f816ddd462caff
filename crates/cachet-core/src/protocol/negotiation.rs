//! `Accept-Encoding` and `Accept-Language` in one canonical spelling, so
//! that requests that select alike share a variant (RFC 9111 §4.1 lets a
//! cache normalize values "in a way known to have identical semantics").
//!
//! Content-codings and language tags are case-insensitive, whitespace and
//! the split into field lines carry nothing, and a member's weight is its
//! `q` (1 when absent). So members are lower-cased, `q=1` dropped and other
//! weights written shortest (`0.5`), and ordered by weight, highest first.
//! Codings of one weight are then sorted by name (their order means
//! nothing, §12.5.3); languages of one weight keep their order, which some
//! origins read as a preference (§12.5.4). A value with anything else — a
//! parameter other than `q`, a malformed weight, one name twice — is left
//! as it was received.
//!
//! The origin receives the canonical spelling too (the exchange rewrites
//! the request's lines), so the variant it answers is the one keyed.

use http::header::{self, HeaderName};

/// The request fields written canonically.
pub(crate) const NORMALIZED: [HeaderName; 2] = [header::ACCEPT_ENCODING, header::ACCEPT_LANGUAGE];

/// The canonical spelling of `name`'s `lines`, when `name` is one of
/// [`NORMALIZED`] and every member parses; `None` otherwise.
pub(crate) fn canonical(name: &HeaderName, lines: &[&[u8]]) -> Option<String> {
    let keep_order = if *name == header::ACCEPT_LANGUAGE {
        true
    } else if *name == header::ACCEPT_ENCODING {
        false
    } else {
        return None;
    };
    let mut members: Vec<(String, u16)> = Vec::new();
    for line in lines {
        let line = std::str::from_utf8(line).ok()?;
        for member in line.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (name, weight) = parse_member(member)?;
            if members.iter().any(|(seen, _)| *seen == name) {
                return None;
            }
            members.push((name, weight));
        }
    }
    if members.is_empty() {
        return None;
    }
    if keep_order {
        members.sort_by_key(|member| std::cmp::Reverse(member.1));
    } else {
        members.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    let mut canonical = String::new();
    for (index, (name, weight)) in members.iter().enumerate() {
        if index > 0 {
            canonical.push_str(", ");
        }
        canonical.push_str(name);
        if *weight < 1000 {
            canonical.push_str(";q=");
            canonical.push_str(&format_weight(*weight));
        }
    }
    Some(canonical)
}

/// `name[;q=weight]` as the lower-cased name and the weight in
/// thousandths (RFC 9110 §12.4.2).
fn parse_member(member: &str) -> Option<(String, u16)> {
    let mut parts = member.split(';');
    let name = parts.next()?.trim_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return None;
    }
    let mut weight = 1000;
    for (index, parameter) in parts.enumerate() {
        let (key, value) = parameter.trim_matches([' ', '\t']).split_once('=')?;
        if index > 0 || !key.eq_ignore_ascii_case("q") {
            return None;
        }
        weight = parse_weight(value)?;
    }
    Some((name.to_ascii_lowercase(), weight))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_weight(value: &str) -> Option<u16> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// A weight in thousandths below 1, shortest (`500` is `0.5`, `0` is `0`).
fn format_weight(weight: u16) -> String {
    if weight == 0 {
        return "0".to_owned();
    }
    let digits = format!("{weight:03}");
    format!("0.{}", digits.trim_end_matches('0'))
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoding(lines: &[&str]) -> Option<String> {
        let lines: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        canonical(&header::ACCEPT_ENCODING, &lines)
    }

    fn language(lines: &[&str]) -> Option<String> {
        let lines: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        canonical(&header::ACCEPT_LANGUAGE, &lines)
    }

    #[test]
    fn equivalent_encodings_have_one_spelling_rfc9110_12_5_3() {
        let canonical = Some("br, gzip".to_owned());
        for spelling in [
            &["gzip, br"][..],
            &["BR,GZIP"],
            &["br;q=1.000 , gzip"],
            &["gzip", "br"],
            &[" gzip ,, br "],
        ] {
            assert_eq!(encoding(spelling), canonical, "{spelling:?}");
        }
        assert_eq!(
            encoding(&["gzip;q=0.50, identity;Q=0, br"]),
            Some("br, gzip;q=0.5, identity;q=0".to_owned())
        );
    }

    #[test]
    fn languages_keep_their_order_within_a_weight_rfc9110_12_5_4() {
        assert_eq!(
            language(&["fr-CH, FR;q=0.9, en;q=0.8, de;q=0.9"]),
            Some("fr-ch, fr;q=0.9, de;q=0.9, en;q=0.8".to_owned())
        );
        assert_ne!(language(&["en, fr"]), language(&["fr, en"]));
        assert_eq!(
            language(&["en-US", "fr;q=0.5"]),
            language(&["EN-us,fr;q=0.500"])
        );
    }

    #[test]
    fn anything_else_is_left_as_received() {
        for spelling in [
            "gzip;level=9",
            "gzip;q=2",
            "gzip;q=0.1234",
            "gzip;q=1.5",
            "gzip, gzip;q=0.5",
            "gz ip",
            "",
            "gzip;q=0.5;q=0.4",
        ] {
            assert_eq!(encoding(&[spelling]), None, "{spelling:?}");
        }
        let lines: Vec<&[u8]> = vec![b"text/html"];
        assert_eq!(canonical(&header::ACCEPT, &lines), None);
    }
}
