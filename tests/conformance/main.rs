//! One conformance table, run against an axum app with the Tower layers
//! and an actix-web app with the actix middleware, both built from the same
//! rules in front of the same origin — and again with each rule attached to
//! one route as a handler's rule (`HandlerLayer`, `HandlerCache`) instead
//! of matched by path. Any difference is a failure.
//!
//! Both run on actix-web's runtime (a current-thread Tokio runtime with a
//! local task set) with Tokio's clock paused: origin delays cost no time,
//! and the cache's clock is a `MockClock` the scenarios move.

#![allow(unreachable_pub)]

mod apps;
mod origin;
mod scenarios;
mod table;

use apps::actix::{app as actix_app, per_handler as actix_per_handler};
use apps::tower::TowerApp;
use origin::Origin;

/// Runs every scenario on apps `make` builds; panics listing each scenario
/// that failed and its first wrong step.
fn conform<A: apps::App>(adapter: &str, make: &impl AsyncFn(&cachet::Cache, Origin) -> A) {
    let failures = actix_web::rt::System::new().block_on(async {
        tokio::time::pause();
        let mut failures = Vec::new();
        for scenario in scenarios::all() {
            let (cache, clock) = apps::cache(scenario.rules);
            let origin = Origin::default();
            let app = make(&cache, origin.clone()).await;
            if let Err(why) = table::run(&scenario, &app, &origin, &clock).await {
                failures.push(format!("{adapter}: {}: {why}", scenario.name));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn tower_layers_conform() {
    conform("tower", &async |cache, origin| TowerApp::new(cache, origin));
}

#[test]
fn actix_middleware_conforms() {
    conform("actix", &async |cache, origin| {
        actix_app(cache, origin).await
    });
}

#[test]
fn tower_handler_layers_conform() {
    conform("tower per handler", &async |cache, origin| {
        TowerApp::per_handler(cache, origin)
    });
}

#[test]
fn actix_handler_caches_conform() {
    conform("actix per handler", &async |cache, origin| {
        actix_per_handler(cache, origin).await
    });
}
