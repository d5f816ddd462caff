//! The management API on a listener of its own (`[admin] listen`), never on
//! the proxied port, with the proxied port's connection bounds.

use crate::config::ProxyConfig;
use crate::connection::{self, Policy};
use cachet_tower::AdminService;
use std::future::Future;
use tokio::net::TcpListener;

/// How many admin connections are served at once (at most the proxied
/// port's cap); more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// Serves `config`'s management API (configured by its `[admin]`
/// section) on `listener` until `shutdown` completes, under the
/// same connection bounds as the proxied port (`[proxy]`'s timeouts and
/// header limits). The future it returns borrows nothing from `config`.
pub fn serve_admin<F: Future<Output = ()>>(
    config: &ProxyConfig,
    listener: TcpListener,
    shutdown: F,
) -> impl Future<Output = ()> {
    let service = AdminService::new(config.admin.clone());
    let policy = Policy::of(config).at_most(MAX_CONNECTIONS);
    connection::serve(
        listener,
        policy,
        move |_| service.clone(),
        shutdown,
        "admin",
    )
}
