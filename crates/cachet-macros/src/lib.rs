//! The `#[cached]` and `#[cache_evict]` attributes of
//! [cachet](https://docs.rs/cachet): a Django or FastAPI app's
//! `@cached(ttl=300, key_builder=…, unless=…)` and
//! `@cache_evict(pattern="user:*")`, on `async fn`s.
//!
//! Use them through the `cachet` crate (`cachet::cached`,
//! `cachet::cache_evict`): they expand to calls into it.
//!
//! ```
//! use cachet::{cache_evict, cached, Cache};
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! struct User { id: u64, name: String }
//!
//! #[cached(ttl = "5m", key = "user:{id}", tags = ["user:{id}"])]
//! async fn get_user(id: u64) -> Result<User, std::io::Error> {
//!     Ok(User { id, name: "ada".into() }) // the database read
//! }
//!
//! #[cache_evict(key = "user:{id}")]
//! async fn rename(id: u64, name: &str) -> Result<(), std::io::Error> {
//!     Ok(()) // the database write
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! cachet::install(Cache::builder().build()?).expect("installed once");
//! let user = get_user(42).await?; // computed and stored
//! let again = get_user(42).await?; // from the cache
//! assert_eq!(again.name, user.name);
//! rename(42, "grace").await?; // evicts `user:42`
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! See `cachet::cached` and `cachet::cache_evict` for every option.

mod expand;
mod options;
mod signature;
mod template;

use proc_macro::TokenStream;
use syn::ItemFn;

/// Caches an `async fn`'s result in a value cache; see `cachet::cached`.
#[proc_macro_attribute]
pub fn cached(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as ItemFn);
    expand::cached(attribute.into(), function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Evicts keys, patterns or tags around an `async fn`; see
/// `cachet::cache_evict`.
#[proc_macro_attribute]
pub fn cache_evict(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let function = syn::parse_macro_input!(item as ItemFn);
    expand::cache_evict(attribute.into(), function)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
