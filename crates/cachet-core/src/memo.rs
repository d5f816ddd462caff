//! What `#[cached]` and `#[cache_evict]` expand to, through the facade's
//! `cachet::__private`. Not an API: the attributes are.
//!
//! Every path here fails open: a missing handle, an unknown named cache, a
//! key that cannot be encoded or a store error runs the function's body as
//! if it were not cached, and says why in the log (once per function for
//! the setup errors, which would otherwise repeat on every call).

use crate::cache::installed;
use crate::values::{Evict, ValueCache};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Borrow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering;

pub use std::sync::OnceLock;

pub use std::sync::atomic::AtomicBool;
pub use std::time::Duration;

/// `values = expr`: the value cache the attribute names.
pub fn explicit<V: Borrow<ValueCache>>(values: V) -> Option<ValueCache> {
    Some(values.borrow().clone())
}

/// The installed handle's value cache — `values`, or the named `cache` —
/// or `None` (logged once per function) when there is none. Resolved once
/// per function into `resolved` (the installed handle never changes), so a
/// call costs one clone.
pub fn installed_values(
    cache: Option<&str>,
    function: &str,
    resolved: &'static OnceLock<ValueCache>,
    warned: &'static AtomicBool,
) -> Option<ValueCache> {
    if let Some(values) = resolved.get() {
        return Some(values.clone());
    }
    let warn = |why: &dyn std::fmt::Display| {
        if !warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(function, "not cached: {why}; the body runs on every call");
        }
    };
    let Some(handle) = installed() else {
        warn(&"no cache is installed (call cachet::install at start-up)");
        return None;
    };
    let values = match cache {
        None => handle.values(),
        Some(name) => match handle.values_in(name) {
            Ok(values) => values,
            Err(error) => {
                warn(&error);
                return None;
            }
        },
    };
    Some(resolved.get_or_init(|| values).clone())
}

/// The default key's arguments so far ([`key_arguments`], then
/// [`KeyArguments::push`] for each).
pub use crate::values::KeyArguments;

/// No argument of the default key yet.
pub fn key_arguments(values: &ValueCache) -> KeyArguments {
    values.function_key_arguments()
}

/// One argument of the default key, which must be `Serialize` (the
/// compiler's error points at the argument that is not).
pub fn key_part<T: Serialize + ?Sized>(arguments: KeyArguments, argument: &T) -> KeyArguments {
    arguments.push(argument)
}

/// The default key ([`ValueCache::function_key`]) of `arguments`, or
/// `None` (logged) when one failed to encode.
pub fn default_key(values: &ValueCache, function: &str, arguments: KeyArguments) -> Option<String> {
    match values.function_key_of(function, arguments) {
        Ok(key) => Some(key),
        Err(error) => {
            tracing::warn!(function, %error, "not cached: the arguments do not encode");
            None
        }
    }
}

/// The body's future, its output fixed to the function's return type (so
/// that `?` in the body converts errors as the function would).
pub fn typed<O, F: Future<Output = O>>(body: F) -> F {
    body
}

/// Where and how a `#[cached]` call stores its result.
#[derive(Debug)]
pub struct Memo {
    /// The value cache, or `None` to run the body uncached.
    pub values: Option<ValueCache>,
    /// The key, or `None` (it could not be built) to run the body uncached.
    pub key: Option<String>,
    /// The attribute's `ttl`, else the value cache's default.
    pub ttl: Option<Duration>,
    /// The attribute's `tags`, formatted.
    pub tags: Vec<String>,
}

impl Memo {
    /// A function returning `Result<T, E>`: only `Ok` is stored.
    pub async fn result<T, E, F>(self, unless: impl FnOnce(&T) -> bool, body: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        let (Some(values), Some(key)) = (self.values, self.key) else {
            return body.await;
        };
        let ttl = self.ttl.unwrap_or_else(|| values.default_ttl());
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        values
            .get_or_compute_tagged(&key, ttl, &tags, unless, || body)
            .await
    }

    /// A function returning `Option<T>`: only `Some` is stored
    /// (`cache_none` stores the whole `Option` through [`value`](Self::value)).
    pub async fn option<T, F>(self, unless: impl FnOnce(&T) -> bool, body: F) -> Option<T>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Option<T>>,
    {
        let body = async move { body.await.ok_or(Absent) };
        self.result(unless, body).await.ok()
    }

    /// A function returning any other `T`: every result is stored.
    pub async fn value<T, F>(self, unless: impl FnOnce(&T) -> bool, body: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = T>,
    {
        let body = async move { Ok::<T, Infallible>(body.await) };
        match self.result(unless, body).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

/// What `None` becomes while an `Option` is computed: an outcome never stored.
#[derive(Debug)]
pub struct Absent;

/// `#[cache_evict]` on a function returning `Result`: evicts before the
/// body, or after it only when it returns `Ok`.
pub async fn evict_result<T, E, F>(
    values: Option<ValueCache>,
    evict: Evict,
    before: bool,
    body: F,
) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    match (values, before) {
        (None, _) => body.await,
        (Some(values), true) => values.evict_before(&evict, body).await,
        (Some(values), false) => values.evict_after(&evict, body).await,
    }
}

/// `#[cache_evict]` on a function returning anything else: evicts before
/// or after the body.
pub async fn evict_value<T, F>(values: Option<ValueCache>, evict: Evict, before: bool, body: F) -> T
where
    F: Future<Output = T>,
{
    let body = async move { Ok::<T, Infallible>(body.await) };
    match evict_result(values, evict, before, body).await {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

/// A `#[cached]` function's path, from the type name of the item the
/// expansion declares inside it (`shop::get_user::{{closure}}::__cachet_here`):
/// unique per function, methods of different types apart. Read once per
/// function into `name`.
pub fn function_name(name: &'static OnceLock<String>, here: &'static str) -> &'static str {
    name.get_or_init(|| {
        let path = here.strip_suffix("::__cachet_here").unwrap_or(here);
        path.replace("::{{closure}}", "")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_installed_handle_a_function_runs_uncached_and_warns_once() {
        static WARNED: AtomicBool = AtomicBool::new(false);
        static RESOLVED: OnceLock<ValueCache> = OnceLock::new();
        // No test of this crate installs a handle.
        assert!(installed_values(None, "shop::get_user", &RESOLVED, &WARNED).is_none());
        assert!(WARNED.load(Ordering::Relaxed), "the first call warns");
        assert!(installed_values(Some("user"), "shop::get_user", &RESOLVED, &WARNED).is_none());
        assert!(RESOLVED.get().is_none(), "nothing to remember");
    }

    #[test]
    fn function_names_drop_the_marker_and_async_closures() {
        static NAME: OnceLock<String> = OnceLock::new();
        let here = "shop::Repo::get::{{closure}}::__cachet_here";
        assert_eq!(function_name(&NAME, here), "shop::Repo::get");
    }
}
