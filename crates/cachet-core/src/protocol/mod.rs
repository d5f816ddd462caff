//! HTTP caching as the RFCs define it, free of any cache state: each module
//! reads or writes headers and computes, and the engine decides.
//!
//! Named `protocol` rather than `http`, which would shadow the `http` crate
//! inside this crate.

pub(crate) mod cache_control;
pub(crate) mod cache_status;
pub(crate) mod conditional;
pub(crate) mod directives;
pub(crate) mod freshness;
pub(crate) mod hop_by_hop;
pub(crate) mod host;
pub(crate) mod negotiation;
pub(crate) mod range;
pub(crate) mod response_headers;
pub(crate) mod storability;
pub(crate) mod tags;
pub(crate) mod target;
pub(crate) mod targeted;
pub(crate) mod vary;
