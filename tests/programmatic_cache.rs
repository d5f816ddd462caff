//! The programmatic cache: typed values, key builder, get-or-compute with
//! one computation per key, and eviction helpers.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use cachet::clock::MockClock;
use cachet::values::{Codec, Evict, ValueCache, ValueKey};
use cachet::{Cache, Rule};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

const MINUTE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Material {
    id: u32,
    name: String,
    grades: Vec<String>,
    density: Option<f64>,
}

fn steel() -> Material {
    Material {
        id: 42,
        name: "steel".into(),
        grades: vec!["S235".into(), "S355".into()],
        density: Some(7.85),
    }
}

fn cache(codec: Codec) -> (ValueCache, MockClock) {
    let clock = MockClock::new();
    let cache = Cache::builder()
        .value_codec(codec)
        .clock(clock.clone())
        .build()
        .unwrap();
    (cache.values(), clock)
}

#[tokio::test]
async fn typed_values_round_trip_in_both_codecs() {
    for codec in [Codec::Binary, Codec::Json] {
        let (cache, _) = cache(codec);
        cache.set("material:42", &steel(), MINUTE).await.unwrap();
        let back: Option<Material> = cache.get("material:42").await.unwrap();
        assert_eq!(back, Some(steel()), "{codec:?}");
        assert_eq!(cache.get::<Material>("material:7").await.unwrap(), None);
        // A value read as another type is an error, not garbage.
        assert!(cache.get::<Vec<u64>>("material:42").await.is_err());
    }
}

#[tokio::test]
async fn ping_and_info_describe_the_store() {
    let (values, _clock) = cache(Codec::Binary);
    values.ping().await.unwrap();
    let empty = values.info().await;
    assert_eq!((empty.usage.entries, empty.usage.bytes), (0, 0));
    values.set("a", &steel(), MINUTE).await.unwrap();
    values.set("b", &steel(), MINUTE).await.unwrap();
    let info = values.info().await;
    assert_eq!((info.store.as_str(), info.shared), ("memory", false));
    assert_eq!(info.usage.entries, 2);
    assert!(info.usage.bytes > 0 && info.usage.bytes < info.max_bytes);
    assert_eq!(info.degraded, None);
}

#[tokio::test]
async fn exists_ttl_and_expire_follow_the_clock() {
    let (cache, clock) = cache(Codec::Binary);
    cache
        .set("k", &1_u8, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(cache.exists("k").await.unwrap());
    clock.advance(Duration::from_secs(4));
    assert_eq!(cache.ttl("k").await.unwrap(), Some(Duration::from_secs(6)));
    assert!(cache.expire("k", Duration::from_secs(30)).await.unwrap());
    clock.advance(Duration::from_secs(29));
    assert!(cache.exists("k").await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(!cache.exists("k").await.unwrap());
    assert_eq!(cache.ttl("k").await.unwrap(), None);
    assert!(!cache.expire("k", MINUTE).await.unwrap());
}

#[tokio::test]
async fn get_many_and_set_many() {
    let (cache, _) = cache(Codec::Binary);
    cache
        .set_many([("a", 1_u32), ("b", 2), ("c", 3)], MINUTE)
        .await
        .unwrap();
    let found = cache
        .get_many::<u32, _>(&["a", "c", "missing"])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!((found["a"], found["c"]), (1, 3));
}

#[tokio::test]
async fn pattern_deletion_and_listing_use_globs() {
    let (cache, _) = cache(Codec::Binary);
    for key in [
        "user:1:profile",
        "user:2:profile",
        "user:2:cart",
        "material:1",
    ] {
        cache.set(key, &key, MINUTE).await.unwrap();
    }
    assert_eq!(
        cache.keys_like("user:*:profile").await.unwrap(),
        ["user:1:profile", "user:2:profile"]
    );
    assert_eq!(cache.delete_pattern("user:*").await.unwrap(), 3);
    assert_eq!(cache.keys_like("*").await.unwrap(), ["material:1"]);
    assert!(cache.delete("material:1").await.unwrap());
    assert!(cache.keys_like("*").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_thousand_concurrent_callers_run_the_function_once() {
    let (cache, _) = cache(Codec::Binary);
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, calls) = (cache.clone(), Arc::clone(&calls));
            tokio::spawn(async move {
                cache
                    .get_or_compute("report", MINUTE, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Let the other callers pile up behind this one.
                        for _ in 0..10 {
                            tokio::task::yield_now().await;
                        }
                        Ok::<_, std::io::Error>(steel())
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), steel());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn errors_are_never_cached() {
    let (cache, _) = cache(Codec::Binary);
    let failed: Result<u32, &str> = cache
        .get_or_compute("flaky", MINUTE, || async { Err("database down") })
        .await;
    assert_eq!(failed, Err("database down"));
    assert!(!cache.exists("flaky").await.unwrap());
    let recovered: Result<u32, &str> = cache
        .get_or_compute("flaky", MINUTE, || async { Ok(7) })
        .await;
    assert_eq!(recovered, Ok(7));
    let cached: Result<u32, &str> = cache
        .get_or_compute("flaky", MINUTE, || async { Ok(8) })
        .await;
    assert_eq!(cached, Ok(7));
}

#[tokio::test]
async fn unless_skips_storing_some_results() {
    let (cache, _) = cache(Codec::Binary);
    let empty: Result<Vec<u32>, ()> = cache
        .get_or_compute_unless("list", MINUTE, Vec::is_empty, || async { Ok(vec![]) })
        .await;
    assert_eq!(empty, Ok(vec![]));
    assert!(!cache.exists("list").await.unwrap());
    let full: Result<Vec<u32>, ()> = cache
        .get_or_compute_unless("list", MINUTE, Vec::is_empty, || async { Ok(vec![1]) })
        .await;
    assert_eq!(full, Ok(vec![1]));
    assert!(cache.exists("list").await.unwrap());
}

#[tokio::test]
async fn evict_after_runs_only_on_success() {
    let (cache, _) = cache(Codec::Binary);
    cache
        .set_tagged("material:42:detail", &steel(), MINUTE, &["material:42"])
        .await
        .unwrap();
    cache.set("materials:page:1", &1_u8, MINUTE).await.unwrap();
    let evict = Evict::new().tag("material:42").pattern("materials:*");
    let failed: Result<(), &str> = cache.evict_after(&evict, async { Err("rejected") }).await;
    assert!(failed.is_err());
    assert!(cache.exists("material:42:detail").await.unwrap());
    let saved: Result<&str, ()> = cache.evict_after(&evict, async { Ok("saved") }).await;
    assert_eq!(saved, Ok("saved"));
    assert!(!cache.exists("material:42:detail").await.unwrap());
    assert!(!cache.exists("materials:page:1").await.unwrap());
}

#[tokio::test]
async fn evict_before_clears_first() {
    let (cache, _) = cache(Codec::Binary);
    cache.set("k", &1_u8, MINUTE).await.unwrap();
    let seen = cache
        .evict_before(&Evict::new().key("k"), async {
            Ok::<_, ()>(cache.exists("k").await.unwrap())
        })
        .await;
    assert_eq!(seen, Ok(false));
}

#[tokio::test]
async fn per_user_keys_hash_the_user_id() {
    let (cache, _) = cache(Codec::Binary);
    let alice = ValueKey::new("cart")
        .user(&cache, "alice@example.com")
        .to_string();
    let bob = ValueKey::new("cart")
        .user(&cache, "bob@example.com")
        .to_string();
    assert_ne!(alice, bob);
    assert!(!alice.contains("alice"), "{alice}");
    assert!(alice.starts_with("cart:u="), "{alice}");
}

#[tokio::test]
async fn handlers_reach_the_cache_through_axum_state() {
    let (cache, _) = cache(Codec::Binary);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = Router::new()
        .route(
            "/report",
            get(move |State(cache): State<ValueCache>| {
                let calls = Arc::clone(&counted);
                async move {
                    let total: u64 = cache
                        .get_or_compute("report:total", MINUTE, || async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(99)
                        })
                        .await
                        .unwrap();
                    total.to_string()
                }
            }),
        )
        .with_state(cache);
    for _ in 0..3 {
        let response = app
            .clone()
            .oneshot(
                http::Request::get("/report")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Values live in their own named cache: their patterns, listings and
/// clears never reach an HTTP entry, while a tag reaches both.
#[tokio::test]
async fn value_patterns_never_reach_http_entries() {
    let cache = Cache::builder().rule(Rule::new("^/")).build().unwrap();
    let values = cache.values();
    values.set("page:1", &1_u8, MINUTE).await.unwrap();
    let req = http::Request::get("/page").body(()).unwrap();
    let cachet::adapter::Route::Cache(plan) = cachet::adapter::route(&cache, &req) else {
        panic!("the rule matches")
    };
    let origin = |_req: http::Request<()>| async {
        let body = http_body_util::Full::new(bytes::Bytes::from("page"));
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .header("cache-tag", "page")
                .body(body)
                .unwrap(),
        )
    };
    cachet::adapter::serve(cache.clone(), plan.into(), origin, req)
        .await
        .unwrap();
    assert_eq!(
        cache.keys().await.unwrap().len(),
        2,
        "an HTTP entry and a value"
    );

    assert_eq!(values.keys_like("*").await.unwrap(), ["page:1"]);
    assert_eq!(values.delete_pattern("*").await.unwrap(), 1);
    let left = cache.keys().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].cache.as_str(), left[0].key.as_str()),
        ("default", "/page GET")
    );
    values.set("page:1", &1_u8, MINUTE).await.unwrap();
    values.clear().await.unwrap();
    assert_eq!(cache.keys().await.unwrap().len(), 1);

    // A tag is the one thing both share: a write evicts the pages too.
    values
        .set_tagged("page:1", &1_u8, MINUTE, &["page"])
        .await
        .unwrap();
    assert_eq!(values.evict(&Evict::new().tag("page")).await.unwrap(), 2);
    assert!(cache.keys().await.unwrap().is_empty());
}

#[test]
fn no_rule_may_store_responses_in_the_values_cache() {
    let error = Cache::builder()
        .rule(Rule::new("^/").cache("values"))
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("rule 0 (^/): field `cache`: `values` holds"),
        "{error}"
    );
}

#[tokio::test]
async fn named_value_caches_keep_their_own_budget_ttl_and_patterns() {
    let cache = Cache::from_toml(
        r#"
        [caches.user]
        max_bytes = "1MiB"
        ttl = "10m"

        [caches.pages]
        max_bytes = "1MiB"
        ttl = "1m"

        [[rules]]
        path = '^/pages/'
        cache = "pages"
        "#,
    )
    .unwrap();
    let users = cache.values_in("user").unwrap();
    let values = cache.values();
    assert_eq!(users.default_ttl(), Duration::from_secs(600));
    let info = users.info().await;
    assert_eq!((info.cache.as_str(), info.max_bytes), ("user", 1024 * 1024));

    users.set("user:1", &"ada", MINUTE).await.unwrap();
    values.set("user:1", &"other", MINUTE).await.unwrap();
    // One key in two value caches: two values, and a pattern deletion in
    // one never reaches the other.
    assert_eq!(users.get::<String>("user:1").await.unwrap().unwrap(), "ada");
    assert_eq!(users.delete_pattern("*").await.unwrap(), 1);
    assert_eq!(
        values.get::<String>("user:1").await.unwrap().unwrap(),
        "other"
    );
    assert_eq!(values.keys_like("*").await.unwrap(), ["user:1"]);

    // Handles for one name share their computations in flight.
    let again = cache.values_in("user").unwrap();
    assert_eq!(again.cache_name(), "user");

    let rule_cache = cache.values_in("pages").unwrap_err().to_string();
    assert!(
        rule_cache.contains("`^/pages/` stores responses"),
        "{rule_cache}"
    );
    let unknown = cache.values_in("nope").unwrap_err().to_string();
    assert!(unknown.contains("default, user, values"), "{unknown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_increments_count_exactly() {
    let (values, _clock) = cache(Codec::Binary);
    let increments: Vec<_> = (0..1000)
        .map(|_| {
            let values = values.clone();
            tokio::spawn(async move { values.incr("hits", 1, MINUTE).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for increment in increments {
        seen.push(increment.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=1000).collect::<Vec<i64>>(),
        "each addition saw its own value"
    );
    assert_eq!(values.get::<i64>("hits").await.unwrap(), Some(1000));
}

#[tokio::test]
async fn a_counter_keeps_the_window_it_was_created_with() {
    for codec in [Codec::Binary, Codec::Json] {
        let (values, clock) = cache(codec);
        assert_eq!(values.incr("window", 5, MINUTE).await.unwrap(), 5);
        clock.advance(Duration::from_secs(40));
        assert_eq!(values.decr("window", 2, MINUTE).await.unwrap(), 3);
        assert_eq!(
            values.ttl("window").await.unwrap(),
            Some(Duration::from_secs(20))
        );
        clock.advance(Duration::from_secs(21));
        assert_eq!(
            values.incr("window", 1, MINUTE).await.unwrap(),
            1,
            "a new window"
        );
        assert!(values.delete("window").await.unwrap());
        assert_eq!(values.decr("window", 1, MINUTE).await.unwrap(), -1);
    }
}

#[tokio::test]
async fn counter_errors_change_nothing() {
    let (values, _clock) = cache(Codec::Binary);
    values.incr("big", i64::MAX, MINUTE).await.unwrap();
    let overflow = values.incr("big", 1, MINUTE).await.unwrap_err().to_string();
    assert!(overflow.contains("overflows"), "{overflow}");
    assert_eq!(values.get::<i64>("big").await.unwrap(), Some(i64::MAX));
    assert!(values.decr("big", i64::MIN, MINUTE).await.is_err());

    values.set("name", &"steel", MINUTE).await.unwrap();
    let not_counter = values
        .incr("name", 1, MINUTE)
        .await
        .unwrap_err()
        .to_string();
    assert!(not_counter.contains("holds no counter"), "{not_counter}");
    assert_eq!(
        values.get::<String>("name").await.unwrap().unwrap(),
        "steel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_adds_for_one_key_exactly_one_wins() {
    let (values, clock) = cache(Codec::Binary);
    let adds: Vec<_> = (0..100)
        .map(|n| {
            let values = values.clone();
            tokio::spawn(async move { values.add("job:daily", &n, MINUTE).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for add in adds {
        won += usize::from(add.await.unwrap());
    }
    assert_eq!(won, 1);
    let winner: u32 = values.get("job:daily").await.unwrap().unwrap();
    assert!(!values.add("job:daily", &999_u32, MINUTE).await.unwrap());
    assert_eq!(
        values.get::<u32>("job:daily").await.unwrap(),
        Some(winner),
        "left alone"
    );
    clock.advance(MINUTE);
    assert!(
        values.add("job:daily", &999_u32, MINUTE).await.unwrap(),
        "expired: absent again"
    );
}
