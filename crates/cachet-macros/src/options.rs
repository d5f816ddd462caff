//! The attributes' options, parsed and checked where they are written.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Expr, LitBool, LitStr, Path, Token};

/// Where the value cache comes from.
pub(crate) enum Source {
    /// The process-wide handle of `cachet::install`, in its `values`
    /// cache or the named one.
    Installed(Option<LitStr>),
    /// An expression giving a `ValueCache` (or a reference to one).
    Explicit(Expr),
}

/// `#[cached(...)]`.
pub(crate) struct Cached {
    pub(crate) ttl: Option<u64>,
    pub(crate) key: Option<LitStr>,
    pub(crate) key_with: Option<Path>,
    pub(crate) source: Source,
    pub(crate) unless: Option<Path>,
    pub(crate) tags: Vec<LitStr>,
    pub(crate) cache_none: bool,
}

/// `#[cache_evict(...)]`.
pub(crate) struct Evict {
    pub(crate) keys: Vec<LitStr>,
    pub(crate) patterns: Vec<LitStr>,
    pub(crate) tags: Vec<LitStr>,
    pub(crate) before: bool,
    pub(crate) source: Source,
}

const CACHED_OPTIONS: &str = "ttl, key, key_with, cache, values, unless, tags, cache_none";
const EVICT_OPTIONS: &str = "key, keys, pattern, patterns, tags, before, cache, values";

/// The option's name (`ttl` in `ttl = "5m"`).
fn option_name(meta: &ParseNestedMeta<'_>) -> String {
    meta.path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn string(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// `= ["a", "b"]`.
fn strings(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<LitStr>> {
    let value = meta.value()?;
    let content;
    syn::bracketed!(content in value);
    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

fn flag(meta: &ParseNestedMeta<'_>) -> syn::Result<bool> {
    Ok(meta.value()?.parse::<LitBool>()?.value)
}

/// A duration as humantime writes it (`"90s"`, `"5m"`, `"1h 30m"`), in
/// nanoseconds; zero is refused (it would store nothing).
fn duration(literal: &LitStr) -> syn::Result<u64> {
    let parsed = humantime::parse_duration(&literal.value()).map_err(|error| {
        syn::Error::new(
            literal.span(),
            format!("`ttl`: {error} (write a duration such as \"90s\", \"5m\" or \"1h 30m\")"),
        )
    })?;
    if parsed.is_zero() {
        return Err(syn::Error::new(
            literal.span(),
            "`ttl`: zero would store nothing; leave `ttl` out for the cache's default",
        ));
    }
    u64::try_from(parsed.as_nanos()).map_err(|_| syn::Error::new(literal.span(), "`ttl`: too long"))
}

/// Fills in `name` once; a second `name` is an error.
fn once<T>(slot: &mut Option<T>, meta: &ParseNestedMeta<'_>, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(meta.error("this option is given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn source(cache: Option<LitStr>, values: Option<Expr>, attribute: &str) -> syn::Result<Source> {
    match (cache, values) {
        (Some(cache), Some(_)) => Err(syn::Error::new(
            cache.span(),
            format!(
                "#[{attribute}]: give `cache` (a named cache of the installed handle) or \
                 `values` (an explicit ValueCache, e.g. `cache.values_in(\"user\")?`), not both"
            ),
        )),
        (cache, None) => Ok(Source::Installed(cache)),
        (None, Some(values)) => Ok(Source::Explicit(values)),
    }
}

pub(crate) fn cached(attribute: TokenStream) -> syn::Result<Cached> {
    let (mut ttl, mut key, mut key_with, mut cache, mut values, mut unless) =
        (None, None, None, None, None, None);
    let (mut tags, mut cache_none) = (None, None);
    let parser = syn::meta::parser(|meta| {
        let name = option_name(&meta);
        match name.as_str() {
            "ttl" => {
                let literal = string(&meta)?;
                once(&mut ttl, &meta, duration(&literal)?)
            }
            "key" => once(&mut key, &meta, string(&meta)?),
            "key_with" => once(&mut key_with, &meta, meta.value()?.parse::<Path>()?),
            "cache" => once(&mut cache, &meta, string(&meta)?),
            "values" => once(&mut values, &meta, meta.value()?.parse::<Expr>()?),
            "unless" => once(&mut unless, &meta, meta.value()?.parse::<Path>()?),
            "tags" => once(&mut tags, &meta, strings(&meta)?),
            "cache_none" => once(&mut cache_none, &meta, flag(&meta)?),
            _ => Err(meta.error(format!(
                "unknown option of #[cached]; the options are {CACHED_OPTIONS}"
            ))),
        }
    });
    syn::parse::Parser::parse2(parser, attribute)?;
    if let (Some(key), Some(_)) = (&key, &key_with) {
        return Err(syn::Error::new(
            key.span(),
            "#[cached]: give `key` (a template) or `key_with` (a function), not both",
        ));
    }
    Ok(Cached {
        ttl,
        key,
        key_with,
        source: source(cache, values, "cached")?,
        unless,
        tags: tags.unwrap_or_default(),
        cache_none: cache_none.unwrap_or(false),
    })
}

pub(crate) fn evict(attribute: TokenStream) -> syn::Result<Evict> {
    let (mut keys, mut patterns, mut tags) = (Vec::new(), Vec::new(), Vec::new());
    let (mut before, mut cache, mut values) = (None, None, None);
    let parser = syn::meta::parser(|meta| {
        let name = option_name(&meta);
        match name.as_str() {
            "key" => string(&meta).map(|key| keys.push(key)),
            "keys" => strings(&meta).map(|list| keys.extend(list)),
            "pattern" => string(&meta).map(|pattern| patterns.push(pattern)),
            "patterns" => strings(&meta).map(|list| patterns.extend(list)),
            "tags" => strings(&meta).map(|list| tags.extend(list)),
            "before" => once(&mut before, &meta, flag(&meta)?),
            "cache" => once(&mut cache, &meta, string(&meta)?),
            "values" => once(&mut values, &meta, meta.value()?.parse::<Expr>()?),
            _ => Err(meta.error(format!(
                "unknown option of #[cache_evict]; the options are {EVICT_OPTIONS}"
            ))),
        }
    });
    syn::parse::Parser::parse2(parser, attribute.clone())?;
    if keys.is_empty() && patterns.is_empty() && tags.is_empty() {
        return Err(syn::Error::new_spanned(
            attribute,
            "#[cache_evict] evicts nothing: give `key`, `keys`, `pattern`, `patterns` or `tags`",
        ));
    }
    Ok(Evict {
        keys,
        patterns,
        tags,
        before: before.unwrap_or(false),
        source: source(cache, values, "cache_evict")?,
    })
}
