//! The request path, as the steps an adapter drives (numbered as in
//! docs/ARCHITECTURE.md):
//!
//! 1. [`route`]: match the rules on the canonical target and build the key
//!    — or pass the request through untouched, or bypass the cache.
//! 2. [`lookup`]: a fresh entry the request's directives accept, one to
//!    revalidate, or a miss and why.
//! 3. [`answer`]: a hit's response (200, or 304 when the client's copy is
//!    current), with `Age` and `Cache-Status`.
//! 4. [`coalesce`]: on a miss, fetch, or wait for the request already
//!    fetching the key.
//! 5. [`exchange`]: forward to the origin (conditionally for an entry with
//!    validators), then [`store`] the response or [`revalidate`] the entry
//!    with a 304, or serve it `stale-if-error` when the origin fails.
//! 6. [`record`]: count what happened and label the response.
//!
//! Mutations take the side path of [`invalidate`].

pub(crate) mod answer;
pub(crate) mod coalesce;
pub(crate) mod exchange;
pub(crate) mod invalidate;
pub(crate) mod lookup;
pub(crate) mod record;
pub(crate) mod revalidate;
pub(crate) mod route;
pub(crate) mod store;

pub use self::answer::Answer;
pub use self::lookup::{Hit, Lookup};
pub use self::revalidate::Revalidation;
pub use self::route::{Plan, Route};
pub(crate) use self::store::{Admission, Storage};
