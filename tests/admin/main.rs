//! The management API, played as one table of requests against each way
//! to mount it — the Tower service under axum's `nest_service`, the
//! actix-web scope, and `cachet-proxy`'s admin listener — over 127.0.0.1;
//! then its authentication modes, its Prometheus exposition, and (with the
//! `external-tests` feature) the dashboard in headless Chromium.

mod client;
mod metrics;
mod mounts;
mod table;

#[cfg(feature = "external-tests")]
mod browser;
