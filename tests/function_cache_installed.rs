//! `#[cached]` and `#[cache_evict]` on the process-wide handle of
//! `cachet::install`: this binary's one test owns it.

use cachet::{cache_evict, cached, Cache};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static RUNS: AtomicUsize = AtomicUsize::new(0);

fn runs() -> usize {
    RUNS.load(Ordering::SeqCst)
}

#[cached(key = "square:{n}")]
async fn square(n: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[cached(cache = "user", key = "name:{id}", ttl = "1m")]
async fn name(id: u64) -> Result<String, std::io::Error> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("user {id}"))
}

#[cached(cache = "nope")]
async fn misconfigured(n: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    n
}

#[cache_evict(cache = "user", pattern = "name:*")]
async fn rename_all() -> Result<(), std::io::Error> {
    Ok(())
}

#[tokio::test]
async fn the_installed_handle_serves_every_function_that_names_no_values() {
    // Before install: the body runs on every call.
    assert_eq!(square(3).await, 9);
    assert_eq!(square(3).await, 9);
    assert_eq!(runs(), 2);

    let cache = Cache::from_toml(
        r#"
        [caches.user]
        max_bytes = "1MiB"
        ttl = "10m"
        "#,
    )
    .unwrap();
    cachet::install(cache.clone()).unwrap();
    assert!(cachet::install(cache.clone()).is_err(), "once per process");

    assert_eq!(square(3).await, 9);
    assert_eq!(square(3).await, 9);
    assert_eq!(runs(), 3, "stored in the installed handle's `values`");
    assert!(cache.values().exists("square:3").await.unwrap());

    name(1).await.unwrap();
    name(1).await.unwrap();
    assert_eq!(runs(), 4);
    let users = cache.values_in("user").unwrap();
    assert!(users.exists("name:1").await.unwrap(), "in the named cache");
    assert!(!cache.values().exists("name:1").await.unwrap());
    let left = users.ttl("name:1").await.unwrap().unwrap();
    assert!(
        left <= Duration::from_secs(60),
        "the attribute's ttl: {left:?}"
    );

    rename_all().await.unwrap();
    assert!(!users.exists("name:1").await.unwrap());

    // An unknown named cache: not cached, never failing.
    assert_eq!(misconfigured(5).await, 5);
    assert_eq!(misconfigured(5).await, 5);
    assert_eq!(runs(), 6);
}
