//! The code the attributes write around a function's body.

use crate::options::{self, Source};
use crate::signature::{self, Returns, Signature};
use crate::template;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Expr, FnArg, Ident, ItemFn};

/// A local of the expansion, invisible to the body (mixed-site hygiene).
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// The value cache, as an `Option<ValueCache>` expression (declaring the
/// statics it needs to resolve the installed handle once).
fn source(source: &Source, function: &TokenStream, warned: &Ident) -> TokenStream {
    match source {
        Source::Installed(cache) => {
            let cache = match cache {
                Some(name) => quote!(::std::option::Option::Some(#name)),
                None => quote!(::std::option::Option::None),
            };
            let resolved = local("__CACHET_RESOLVED");
            quote!({
                static #resolved: ::cachet::__private::OnceLock<::cachet::values::ValueCache> =
                    ::cachet::__private::OnceLock::new();
                ::cachet::__private::installed_values(#cache, #function, &#resolved, &#warned)
            })
        }
        Source::Explicit(values) => quote!(::cachet::__private::explicit(#values)),
    }
}

/// The argument a `values = name` option names, which is no part of a key.
fn source_argument(source: &Source) -> Option<&Ident> {
    match source {
        Source::Explicit(Expr::Path(path)) if path.qself.is_none() => path.path.get_ident(),
        _ => None,
    }
}

/// `self` as a key builder receives it: by reference.
fn receiver(function: &ItemFn) -> Option<TokenStream> {
    function.sig.inputs.iter().find_map(|input| match input {
        FnArg::Receiver(receiver) if receiver.reference.is_some() => Some(quote!(&*self)),
        FnArg::Receiver(_) => Some(quote!(&self)),
        FnArg::Typed(_) => None,
    })
}

/// `function` with its body replaced: `statements` (which declare the
/// locals they need, and the `warned` flag declared here), then the
/// original body as a future of the function's `output`, bound to `body`
/// for the `tail` expression to await.
fn around(
    function: ItemFn,
    output: &syn::Type,
    warned: &Ident,
    statements: &TokenStream,
    tail: &TokenStream,
) -> TokenStream {
    let body = local("body");
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    quote! {
        #(#attrs)*
        #vis #sig {
            static #warned: ::cachet::__private::AtomicBool =
                ::cachet::__private::AtomicBool::new(false);
            #statements
            let #body = ::cachet::__private::typed::<#output, _>(async move #block);
            #tail
        }
    }
}

fn templates(templates: &[syn::LitStr], arguments: &[Ident]) -> syn::Result<Vec<TokenStream>> {
    templates
        .iter()
        .map(|literal| template::format(literal, arguments))
        .collect()
}

pub(crate) fn cached(attribute: TokenStream, function: ItemFn) -> syn::Result<TokenStream> {
    let options = options::cached(attribute)?;
    let Signature {
        arguments,
        returns,
        output,
        ..
    } = signature::read(&function, "cached")?;
    let (values, key, memo, body, name, warned, here) = (
        local("values"),
        local("key"),
        local("memo"),
        local("body"),
        local("function"),
        local("__CACHET_WARNED"),
        local("__cachet_here"),
    );
    let path = local("__CACHET_PATH");
    let values_cache = local("values_cache");
    let key_expr = if let Some(template) = &options.key {
        let key = template::format(template, &arguments)?;
        quote!(::std::option::Option::Some(#key))
    } else if let Some(builder) = &options.key_with {
        let receiver = receiver(&function);
        let receiver = receiver.iter();
        quote!(::std::option::Option::Some(::std::string::String::from(
            #builder(#(#receiver,)* #(&#arguments),*)
        )))
    } else {
        let skipped = source_argument(&options.source);
        let keyed = arguments
            .iter()
            .filter(|argument| Some(*argument) != skipped);
        let arguments_so_far = local("arguments");
        let pushed = keyed.map(|argument| {
            quote_spanned!(argument.span()=>
                let #arguments_so_far = ::cachet::__private::key_part(#arguments_so_far, &#argument);
            )
        });
        quote!({
            let #arguments_so_far = ::cachet::__private::key_arguments(#values_cache);
            #(#pushed)*
            ::cachet::__private::default_key(#values_cache, #name, #arguments_so_far)
        })
    };
    let tag_exprs = templates(&options.tags, &arguments)?;
    let ttl = match options.ttl {
        Some(nanos) => {
            quote!(::std::option::Option::Some(::cachet::__private::Duration::from_nanos(#nanos)))
        }
        None => quote!(::std::option::Option::None),
    };
    let unless = match &options.unless {
        Some(path) => quote!(#path),
        None => quote!(|_| false),
    };
    let helper = match (returns, options.cache_none) {
        (Returns::Result, _) => quote!(result),
        (Returns::Option, false) => quote!(option),
        (Returns::Option, true) | (Returns::Plain, _) => quote!(value),
    };
    let source = source(&options.source, &quote!(#name), &warned);
    let statements = quote! {
        fn #here() {}
        static #path: ::cachet::__private::OnceLock<::std::string::String> =
            ::cachet::__private::OnceLock::new();
        let #name: &'static str = ::cachet::__private::function_name(
            &#path,
            ::std::any::type_name_of_val(&#here),
        );
        let #values: ::std::option::Option<::cachet::values::ValueCache> = #source;
        let #key: ::std::option::Option<::std::string::String> = match &#values {
            ::std::option::Option::Some(#values_cache) => #key_expr,
            ::std::option::Option::None => ::std::option::Option::None,
        };
        let #memo = ::cachet::__private::Memo {
            values: #values,
            key: #key,
            ttl: #ttl,
            tags: ::std::vec![#(#tag_exprs),*],
        };
    };
    let tail = quote!(#memo.#helper(#unless, #body).await);
    Ok(around(function, &output, &warned, &statements, &tail))
}

pub(crate) fn cache_evict(attribute: TokenStream, function: ItemFn) -> syn::Result<TokenStream> {
    let options = options::evict(attribute)?;
    let Signature {
        arguments,
        returns,
        output,
        ..
    } = signature::read(&function, "cache_evict")?;
    let (values, evict, body, warned) = (
        local("values"),
        local("evict"),
        local("body"),
        local("__CACHET_WARNED"),
    );
    let keys = templates(&options.keys, &arguments)?;
    let patterns = templates(&options.patterns, &arguments)?;
    let tags = templates(&options.tags, &arguments)?;
    let before = options.before;
    let function_name = function.sig.ident.to_string();
    let name = quote!(::std::concat!(::std::module_path!(), "::", #function_name));
    let source = source(&options.source, &name, &warned);
    let helper = match returns {
        Returns::Result => quote!(evict_result),
        Returns::Option | Returns::Plain => quote!(evict_value),
    };
    let statements = quote! {
        let #values: ::std::option::Option<::cachet::values::ValueCache> = #source;
        let #evict = ::cachet::values::Evict::new()
            #(.key(#keys))*
            #(.pattern(#patterns))*
            #(.tag(#tags))*;
    };
    let tail = quote!(::cachet::__private::#helper(#values, #evict, #before, #body).await);
    Ok(around(function, &output, &warned, &statements, &tail))
}
