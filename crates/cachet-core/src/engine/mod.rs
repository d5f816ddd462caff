//! The request path, as the steps an adapter drives (numbered as in
//! docs/ARCHITECTURE.md):
//!
//! 1. [`route`]: match the rules on the canonical target and build the key
//!    — or pass the request through untouched, or bypass the cache.
//! 2. [`lookup`]: a fresh entry the request's directives accept, one to
//!    revalidate, or a miss and why.
//! 3. [`answer`]: a hit's response (200, or 304 when the client's copy is
//!    current), with `Age` and `Cache-Status`; a hit that asks for one
//!    also starts a background refresh (step 5 without a client).
//! 4. [`coalesce`]: on a miss, fetch, or wait for the request already
//!    fetching the key.
//! 5. [`exchange`]: forward to the origin — conditionally when the entry
//!    has validators — and hand the response to step 6 or 7.
//! 6. [`admit`]: whether the response may be stored and for how long, then
//!    storing it (under its variant key when it has `Vary`).
//! 7. [`revalidate`]: a 304 merged into the stored entry, or the entry
//!    served `stale-if-error` when the origin fails.
//! 8. [`record`]: count what happened and label the response.
//!
//! Mutations take the side path of [`invalidate`].

pub(crate) mod admit;
pub(crate) mod answer;
pub(crate) mod coalesce;
pub(crate) mod exchange;
pub(crate) mod invalidate;
pub(crate) mod lookup;
pub(crate) mod record;
pub(crate) mod revalidate;
pub(crate) mod route;
pub(crate) mod scanned;

pub(crate) use self::admit::{Admission, StoreOutcome};
pub use self::answer::Answer;
pub(crate) use self::lookup::{Hit, Lookup};
pub(crate) use self::revalidate::Revalidation;
pub use self::route::{Plan, Route};
