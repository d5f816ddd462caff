//! A rule's path regex, with a shortcut for the shapes most rules take:
//! `^/api/` (a literal prefix) and `^/health$` (one literal path), which a
//! byte comparison decides without running the regex.

use regex::Regex;
use regex_syntax::hir::{Hir, HirKind, Look};

/// A compiled path regex and, when it is a literal prefix or path, that
/// literal.
#[derive(Debug, Clone)]
pub(crate) struct PathPattern {
    regex: Regex,
    literal: Option<Literal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Literal {
    /// `^` then literal text: paths that start with it.
    Prefix(Box<[u8]>),
    /// `^`, literal text, `$`: that path alone.
    Whole(Box<[u8]>),
}

impl PathPattern {
    pub(crate) fn new(regex: Regex) -> Self {
        let literal = literal(regex.as_str());
        Self { regex, literal }
    }

    /// The pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether `path` matches, as the regex would say.
    pub(crate) fn is_match(&self, path: &str) -> bool {
        match &self.literal {
            Some(Literal::Prefix(prefix)) => path.as_bytes().starts_with(prefix),
            Some(Literal::Whole(whole)) => path.as_bytes() == &**whole,
            None => self.regex.is_match(path),
        }
    }
}

/// The literal a pattern amounts to, parsed as the `regex` crate parses it
/// (Unicode on, case-sensitive, `^` and `$` the text's ends): only a
/// `Concat` of a start anchor and one literal, and maybe an end anchor.
/// Anything else — a class, a flag such as `(?i)` or `(?m)`, a repetition,
/// an alternation — keeps the regex.
fn literal(pattern: &str) -> Option<Literal> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    match parts.as_slice() {
        [start, body] if is_look(start, Look::Start) => Some(Literal::Prefix(text(body)?)),
        [start, body, end] if is_look(start, Look::Start) && is_look(end, Look::End) => {
            Some(Literal::Whole(text(body)?))
        }
        _ => None,
    }
}

fn is_look(hir: &Hir, look: Look) -> bool {
    matches!(hir.kind(), HirKind::Look(found) if *found == look)
}

fn text(hir: &Hir) -> Option<Box<[u8]>> {
    match hir.kind() {
        HirKind::Literal(literal) => Some(literal.0.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_shapes_are_recognised_and_nothing_else() {
        let prefix = |text: &str| Some(Literal::Prefix(text.as_bytes().into()));
        let whole = |text: &str| Some(Literal::Whole(text.as_bytes().into()));
        assert_eq!(literal("^/api/"), prefix("/api/"));
        assert_eq!(literal("^/"), prefix("/"));
        assert_eq!(literal(r"\A/api"), prefix("/api"));
        assert_eq!(literal(r"^/a\.b"), prefix("/a.b"));
        assert_eq!(literal("^/health$"), whole("/health"));
        assert_eq!(literal("^/café/"), prefix("/café/"));
        for pattern in [
            "/api/",
            "^/a.b",
            "(?i)^/api",
            "(?m)^/api",
            r"^/api/\d+",
            "^/(a|b)",
            "^/api/?",
            "^/x$|^/y$",
            "^$",
            "^",
            "",
            "^/api/$x",
        ] {
            assert_eq!(literal(pattern), None, "{pattern}");
        }
    }

    #[test]
    fn the_shortcut_answers_as_the_regex() {
        let patterns = [
            "^/api/",
            "^/",
            "^/health$",
            r"^/a\.b",
            "^/café/",
            "^/api/v1",
            "^/api",
            "/api/",
            "(?i)^/API/",
            r"^/items/\d+$",
            "^$",
        ];
        let paths = [
            "",
            "/",
            "/api",
            "/api/",
            "/api/v1/items",
            "/API/x",
            "/health",
            "/health/",
            "/healthz",
            "/a.b",
            "/axb",
            "/café/x",
            "/cafe/x",
            "/items/42",
            "/x/api/",
        ];
        for pattern in patterns {
            let regex = Regex::new(pattern).unwrap();
            let path_pattern = PathPattern::new(regex.clone());
            for path in paths {
                assert_eq!(
                    path_pattern.is_match(path),
                    regex.is_match(path),
                    "{pattern} on {path:?}"
                );
            }
        }
    }
}
