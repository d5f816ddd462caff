//! What the attributes read from the function they wrap.

use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

/// What a function returns, as far as caching goes.
pub(crate) enum Returns {
    /// `Result<T, E>`: only `Ok` is stored, and evictions follow only `Ok`.
    Result,
    /// `Option<T>`: only `Some` is stored, unless `cache_none`.
    Option,
    /// Anything else: stored whole.
    Plain,
}

/// The function as the expansion needs it.
pub(crate) struct Signature {
    /// The arguments' names, `self` left out.
    pub(crate) arguments: Vec<Ident>,
    pub(crate) returns: Returns,
    /// The return type, `()` when none is written.
    pub(crate) output: Type,
}

/// The last path segment of `ty` and its first generic argument.
fn last_segment(ty: &Type) -> Option<(&Ident, Option<&Type>)> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    let first = match &segment.arguments {
        PathArguments::AngleBracketed(arguments) => {
            arguments.args.iter().find_map(|argument| match argument {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
        }
        _ => None,
    };
    Some((&segment.ident, first))
}

pub(crate) fn read(function: &ItemFn, attribute: &str) -> syn::Result<Signature> {
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            signature.fn_token,
            format!(
                "#[{attribute}] works on `async fn` only: the value cache may have to await a \
                 shared store (Redis); make `{}` async, or call the ValueCache from it",
                signature.ident
            ),
        ));
    }
    let mut arguments = Vec::new();
    for input in &signature.inputs {
        match input {
            FnArg::Receiver(_) => {}
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.subpat.is_none() => arguments.push(ident.ident.clone()),
                pattern => {
                    return Err(syn::Error::new_spanned(
                        pattern,
                        format!(
                            "#[{attribute}] needs a name for each argument (it keys and \
                             formats by name): write `name: Type` and destructure in the body"
                        ),
                    ))
                }
            },
        }
    }
    let output: Type = match &signature.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let returns = match last_segment(&output) {
        Some((ident, Some(_))) if ident == "Result" => Returns::Result,
        Some((ident, Some(_))) if ident == "Option" => Returns::Option,
        _ => Returns::Plain,
    };
    Ok(Signature {
        arguments,
        returns,
        output,
    })
}
