//! Key and tag templates: `"user:{id}"`, whose `{name}`s are arguments.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Ident, LitStr};

/// The argument names a template refers to, in order, each once; an error
/// for a `{}` without a name, or a name that is no argument.
fn names(template: &LitStr, arguments: &[Ident]) -> syn::Result<Vec<Ident>> {
    let text = template.value();
    let mut chars = text.chars().peekable();
    let mut found: Vec<Ident> = Vec::new();
    while let Some(ch) = chars.next() {
        match ch {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut field = String::new();
                for next in chars.by_ref() {
                    if next == '}' {
                        break;
                    }
                    field.push(next);
                }
                let name = field.split(':').next().unwrap_or_default().trim();
                if name.is_empty() {
                    return Err(syn::Error::new(
                        template.span(),
                        "name the argument in each `{}` of a template: `{id}`",
                    ));
                }
                let Some(argument) = arguments.iter().find(|argument| *argument == name) else {
                    let known: Vec<String> = arguments.iter().map(ToString::to_string).collect();
                    let known = if known.is_empty() {
                        "it has none".to_owned()
                    } else {
                        format!("they are {}", known.join(", "))
                    };
                    return Err(syn::Error::new(
                        template.span(),
                        format!("`{{{name}}}` names no argument of this function ({known})"),
                    ));
                };
                if !found.contains(argument) {
                    found.push(argument.clone());
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

/// `format!(template, name = name, …)`: a `String` built from the arguments
/// with `Display`.
pub(crate) fn format(template: &LitStr, arguments: &[Ident]) -> syn::Result<TokenStream> {
    let names = names(template, arguments)?;
    Ok(quote! { ::std::format!(#template, #(#names = #names),*) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::Span;

    fn idents(names: &[&str]) -> Vec<Ident> {
        names
            .iter()
            .map(|name| Ident::new(name, Span::call_site()))
            .collect()
    }

    #[test]
    fn names_are_read_once_past_escapes_and_format_specs() {
        let template = LitStr::new("{{x}} user:{id}:{page:>3}:{id}", Span::call_site());
        let found = names(&template, &idents(&["id", "page"])).unwrap();
        assert_eq!(found, idents(&["id", "page"]));
    }

    #[test]
    fn an_unknown_or_missing_name_is_an_error_listing_the_arguments() {
        let template = LitStr::new("user:{nope}", Span::call_site());
        let error = names(&template, &idents(&["id"])).unwrap_err().to_string();
        assert_eq!(
            error,
            "`{nope}` names no argument of this function (they are id)"
        );
        let template = LitStr::new("user:{}", Span::call_site());
        assert!(names(&template, &idents(&["id"])).is_err());
    }
}
