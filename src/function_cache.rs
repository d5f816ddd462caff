//! `#[cached]` and `#[cache_evict]`, documented where applications use them.

/// Caches an `async fn`'s result in a value cache: Django's and FastAPI's
/// `@cached(ttl=300, key_builder=…, unless=…)`, `@cache_result`,
/// `@cache_method_result`.
///
/// ```
/// use cachet::{cached, Cache};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct User { id: u64, name: String }
///
/// #[derive(Debug)]
/// struct DbError;
///
/// #[cached(ttl = "5m")]
/// async fn get_user(id: u64) -> Result<User, DbError> {
///     Ok(User { id, name: "ada".into() }) // the database read
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// cachet::install(Cache::builder().build().unwrap()).unwrap();
/// assert_eq!(get_user(7).await.unwrap().name, "ada"); // computed, stored
/// assert_eq!(get_user(7).await.unwrap().name, "ada"); // read from the cache
/// # });
/// ```
///
/// # Options
///
/// | option | what it does |
/// |---|---|
/// | `ttl = "5m"` | how long a result is kept (humantime: `"90s"`, `"1h 30m"`); without it, the value cache's default TTL (its `[caches.NAME] ttl`) |
/// | `key = "user:{id}"` | the key, from a template whose `{name}`s are arguments formatted with `Display` |
/// | `key_with = path::to::fn` | the key from a function taking the arguments by reference (`&self` first for a method) and returning a `String` |
/// | `cache = "user"` | the named value cache of the installed handle ([`Cache::values_in`](crate::Cache::values_in)) |
/// | `values = expr` | an explicit [`ValueCache`](crate::values::ValueCache) (or a reference to one): `self.values`, an argument's name, `cache.values_in("user")?` |
/// | `unless = path::to::fn` | receives `&T`; `true` skips storing that result (an empty list, a placeholder) |
/// | `tags = ["user:{id}"]` | tags for the stored value, templates like `key`: [`Evict::tag`](crate::values::Evict::tag), `#[cache_evict(tags = …)]` and a purge by tag reach it |
/// | `cache_none = true` | for an `Option` return, store `None` too |
///
/// An unknown option, an option given twice, a `{name}` that is no
/// argument, `key` with `key_with`, `cache` with `values`, or a `ttl` that
/// does not parse is a compile error at the option.
///
/// # What is stored
///
/// - `Result<T, E>`: only `Ok(T)`. An `Err` is returned to its caller and
///   never stored; the next call runs the body again.
/// - `Option<T>`: only `Some(T)`, unless `cache_none = true`.
/// - Anything else: every result.
///
/// `T` must be `Serialize + DeserializeOwned`: values are stored in the
/// value cache's codec, so they are shared by every instance on a Redis
/// tier and survive restarts in a dump.
///
/// # Keys
///
/// Without `key` or `key_with`, the key is the function's path (methods of
/// different types apart) then its arguments in the value cache's codec
/// ([`ValueCache::function_key`](crate::values::ValueCache::function_key));
/// every argument must then be `Serialize`, and the compiler's error points
/// at the one that is not. `self` is never part of the default key: two
/// instances of one type share results for equal arguments; put what tells
/// them apart in `key` or `key_with`. An argument named by `values` is left
/// out too.
///
/// # One computation per key
///
/// Concurrent callers for one key run the body once; the others wait for
/// it and read what it stored (across instances too, on a Redis tier with
/// `distributed_lock`). A cache that fails (an unreachable Redis, a value
/// that no longer decodes) never fails the call: the body runs.
///
/// # Where the cache comes from
///
/// - **Installed** (the default): the handle given to
///   [`cachet::install`](crate::install) at start-up — Django's
///   `from django.core.cache import cache`. Before `install`, the body runs
///   on every call and a warning is logged once per function. Use it for an
///   application with one cache.
/// - **Explicit** (`values = …`): the expression is evaluated on each call,
///   inside the function, so it can read `self` or an argument. Use it in
///   tests (each test builds its own cache) and in a process with several
///   caches.
///
/// ```
/// use cachet::{cached, values::ValueCache};
///
/// struct Prices { values: ValueCache }
///
/// impl Prices {
///     #[cached(values = &self.values, key = "price:{sku}", ttl = "30s")]
///     async fn price(&self, sku: &str) -> Option<u32> {
///         (sku == "tea").then_some(350) // the slow lookup
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let prices = Prices { values: cachet::Cache::builder().build().unwrap().values() };
/// assert_eq!(prices.price("tea").await, Some(350));
/// assert!(prices.values.exists("price:tea").await.unwrap());
/// assert_eq!(prices.price("cake").await, None);
/// assert!(!prices.values.exists("price:cake").await.unwrap(), "None is not stored");
/// # });
/// ```
///
/// # Only `async fn`
///
/// A value cache may have to await a shared store, so the attribute takes
/// `async fn`s only (free functions, methods, associated functions); on a
/// plain `fn` it is a compile error. A synchronous function can call
/// [`ValueCache`](crate::values::ValueCache) from an async context instead.
#[doc(inline)]
pub use cachet_macros::cached;

/// Evicts keys, glob patterns or tags around an `async fn`: Django's
/// `@cache_evict(pattern="user:*", before=False)`.
///
/// ```
/// use cachet::{cache_evict, values::ValueCache};
/// use std::time::Duration;
///
/// #[cache_evict(values = values, key = "user:{id}", pattern = "users:page:*")]
/// async fn rename(values: &ValueCache, id: u64, name: &str) -> Result<(), std::io::Error> {
///     Ok(()) // the database write
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let values = cachet::Cache::builder().build().unwrap().values();
/// values.set("user:7", &"ada", Duration::from_secs(60)).await.unwrap();
/// values.set("users:page:1", &[7], Duration::from_secs(60)).await.unwrap();
/// rename(&values, 7, "grace").await.unwrap();
/// assert!(values.keys_like("*").await.unwrap().is_empty());
/// # });
/// ```
///
/// | option | what it evicts or does |
/// |---|---|
/// | `key = "user:{id}"` | a key (a template whose `{name}`s are arguments; may be given several times) |
/// | `keys = ["user:list", "user:stats"]` | several keys |
/// | `pattern = "user:*"`, `patterns = [...]` | every key a glob matches (`*`, `?`), within the value cache |
/// | `tags = ["user:{id}"]` | every value and HTTP entry under each tag, in every named cache |
/// | `before = true` | evict before the body runs instead of after it |
/// | `cache = "user"`, `values = expr` | which value cache, as for [`cached`] |
///
/// After the body, it evicts only when the body succeeded: `Ok` for a
/// `Result`, any return otherwise; never after an `Err`. With
/// `before = true` it evicts first, whatever the body then returns. An
/// eviction that fails is logged; the function's result is returned as it
/// is.
#[doc(inline)]
pub use cachet_macros::cache_evict;
