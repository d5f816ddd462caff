//! The Redis tier against a real `redis-server` of each test's own: two
//! instances (two caches on one Redis, each behind the Tower layer) share
//! entries and purges, and no request fails when Redis is down, killed or
//! slow. Run with `--features external-tests`.

mod cluster;
mod server;
#[path = "../support/mod.rs"]
mod support;

use cachet::Identity;

use cachet::clock::MockClock;
use regex::Regex;
use server::RedisServer;
use std::future::Future;
use std::time::{Duration, Instant};
use support::{request, App, RULES};

/// An instance: [`RULES`] behind the Tower layer, on the Redis at `url`
/// under `prefix` (`[redis]` written as an application would).
fn instance(url: &str, prefix: &str, mode: &str) -> App {
    instance_with(url, prefix, mode, "")
}

/// [`instance`] with more lines for `[redis]`.
fn instance_with(url: &str, prefix: &str, mode: &str, more: &str) -> App {
    instance_on(&format!("url = '{url}'"), prefix, mode, more)
}

/// An instance on the Redis `target` names (its `url` or `cluster` line).
fn instance_on(target: &str, prefix: &str, mode: &str, more: &str) -> App {
    let text = format!(
        "{RULES}\n[redis]\n{target}\nprefix = '{prefix}'\nmode = '{mode}'\ncommand_timeout = '200ms'\n{more}\n"
    );
    let clock = MockClock::new();
    let config = cachet::Config::from_toml(&text).unwrap();
    let builder = config
        .cache
        .identity(Identity::default().secret("shared by every instance"))
        .clock(clock.clone());
    let cache = cachet::redis::install_with_env(builder, config.redis, |_| None)
        .unwrap()
        .build()
        .unwrap();
    App::around(cache, clock)
}

/// Two tiered instances on `redis`, connected and listening.
async fn pair(redis: &RedisServer) -> (App, App) {
    let a = instance(&redis.url(), "test:", "tiered");
    let b = instance(&redis.url(), "test:", "tiered");
    connected(&a).await;
    connected(&b).await;
    (a, b)
}

/// Waits (a second or two at most: messages between processes) until
/// `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 3 s");
}

/// Whether `cache`'s health says a tier is failing while it serves.
pub(crate) async fn degraded(cache: &cachet::Cache) -> bool {
    matches!(cache.health().await, cachet::stats::Health::Degraded { .. })
}

async fn connected(app: &App) {
    eventually("the tier connects and listens", || async {
        app.cache.health().await == cachet::stats::Health::Ok
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_on_one_instance_fills_redis_and_the_other_hits_it() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    let first = a.get("/api/items").await;
    assert_eq!((first.outcome(), first.body.as_str()), ("MISS", "items #1"));
    // B has never seen it: from Redis, then from its own memory.
    for _ in 0..3 {
        let hit = b.get("/api/items").await;
        assert_eq!((hit.outcome(), hit.body.as_str()), ("HIT", "items #1"));
    }
    assert_eq!((a.origin.calls(), b.origin.calls()), (1, 0));
    // B's copy, read from Redis into its memory, shares a prepared form of
    // its headers between hits, counted in its weight: A, which stored the
    // same entry and never hit it, weighs it without one.
    let bytes = |app: &App| app.cache.stats().caches["default"].bytes;
    assert!(bytes(&b) > bytes(&a), "{} vs {}", bytes(&b), bytes(&a));
    // Freshness travels with the entry: B's clock decides, not Redis's.
    b.clock.advance(Duration::from_secs(60));
    assert_eq!(b.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_group_invalidation_on_one_instance_reaches_the_others_memory_rfc9875_3() {
    let server = RedisServer::start();
    let (a, b) = pair(&server).await;
    let grouped = request(
        "GET",
        "/api/respond",
        &[("x-respond-cache-groups", "\"prices\"")],
    );
    a.send(grouped).await;
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    assert_eq!(a.get("/api/respond").await.outcome(), "HIT");
    // A write elsewhere whose response names the group, on B.
    let invalidating = request(
        "POST",
        "/api/respond?elsewhere",
        &[("x-respond-cache-group-invalidation", "\"prices\"")],
    );
    assert_eq!(b.send(invalidating).await.status, 200);
    eventually("A's memory drops the grouped entry", || async {
        a.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_one_instance_purges_the_others_memory() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    a.get("/api/respond").await;
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    let post = a.send(request("POST", "/api/respond", &[])).await;
    assert_eq!(post.status, 200);
    // Redis lost it at once; B's memory when the purge arrives.
    eventually("B's memory drops the purged entry", || async {
        b.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_uri_and_pattern_purges_on_one_reach_the_other() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    let tagged = || request("GET", "/api/respond", &[("x-respond-cache-tag", "prices")]);
    a.send(tagged()).await;
    a.get("/api/items").await;
    a.get("/api/small/1").await;
    for uri in ["/api/respond", "/api/items", "/api/small/1"] {
        assert_eq!(b.get(uri).await.outcome(), "HIT", "{uri}");
    }
    assert_eq!(b.cache.purge_tag("prices").await.unwrap(), 1);
    eventually("A's memory drops the tagged entry", || async {
        a.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
    assert!(b.cache.purge_uri("/api/items", None).await.unwrap() >= 1);
    eventually("A's memory drops the purged URI", || async {
        a.get("/api/items").await.outcome() == "MISS"
    })
    .await;
    let pattern = Regex::new("^/api/small/").unwrap();
    assert!(b.cache.delete_matching(&pattern).await.unwrap() >= 1);
    eventually("A's memory drops what the pattern matched", || async {
        a.get("/api/small/1").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_on_one_instance_clears_the_others_memory_and_redis() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    a.get("/api/items").await;
    a.get("/api/small/1").await;
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    a.cache.clear_all().await.unwrap();
    eventually("B's memory is cleared", || async {
        b.get("/api/items").await.outcome() == "MISS"
    })
    .await;
    // Redis kept nothing of the small cache (B has not asked for it again).
    assert_eq!(
        redis.command("KEYS test:*small*").as_deref(),
        Some("*0\r\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stay_in_memory_and_are_still_purged_everywhere() {
    let redis = RedisServer::start();
    let a = instance_with(&redis.url(), "big:", "tiered", "max_shared_body = 4");
    let b = instance_with(&redis.url(), "big:", "tiered", "max_shared_body = 4");
    connected(&a).await;
    connected(&b).await;
    a.get("/api/items").await;
    assert_eq!(a.get("/api/items").await.outcome(), "HIT");
    // "items #1" is over 4 bytes: B must ask the origin itself...
    assert_eq!(b.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    // ...yet a purge on B still finds A's copy through Redis's marker.
    b.cache.purge_uri("/api/items", None).await.unwrap();
    eventually("A's memory-only entry is purged", || async {
        a.get("/api/items").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_fails_no_request_and_the_tier_comes_back() {
    let mut redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    a.get("/api/items").await;
    a.cache.values().ping().await.unwrap();
    redis.kill();
    // Served from memory, and from the origin: nothing fails.
    for _ in 0..5 {
        let hit = a.get("/api/items").await;
        assert_eq!((hit.status.as_u16(), hit.outcome()), (200, "HIT"));
        let other = b.get("/api/small/2").await;
        assert_eq!(other.status.as_u16(), 200);
    }
    eventually("health says degraded", || async {
        degraded(&a.cache).await && degraded(&b.cache).await
    })
    .await;
    assert!(b.cache.stats().caches["small"].store_errors > 0);
    // The programmatic cache's ping says Redis is down; info says why.
    let down = a.cache.values().ping().await.unwrap_err().to_string();
    assert!(down.contains("down"), "{down}");
    assert!(a.cache.values().info().await.degraded.is_some());
    redis.restart();
    connected(&a).await;
    connected(&b).await;
    a.cache.values().ping().await.unwrap();
    // Both emptied their memory on reconnecting (purges may have been
    // missed), and Redis shares again.
    assert_eq!(a.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_serves_from_memory_and_the_origin() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}/0", free.local_addr().unwrap().port());
    drop(free);
    let a = instance(&url, "down:", "tiered");
    assert_eq!(a.get("/api/items").await.outcome(), "MISS");
    assert_eq!(a.get("/api/items").await.outcome(), "HIT");
    let health = a.cache.health().await;
    assert!(
        matches!(&health, cachet::stats::Health::Degraded { degraded } if degraded.contains("down")),
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_is_a_miss_not_a_failure() {
    let redis = RedisServer::start_with(&["--enable-debug-command", "local"]);
    let (a, b) = pair(&redis).await;
    a.get("/api/items").await;
    // Redis busy for a second: B's lookup passes its 200 ms deadline.
    let port = redis.port;
    let sleeper = std::thread::spawn(move || {
        let server = RedisServer::attach(port);
        server.command("DEBUG SLEEP 1")
    });
    std::thread::sleep(Duration::from_millis(100));
    let slow = b.get("/api/items").await;
    assert_eq!((slow.status.as_u16(), slow.outcome()), (200, "MISS"));
    assert!(b.cache.stats().caches["default"].store_errors >= 1);
    sleeper.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mode_keeps_nothing_in_memory() {
    let redis = RedisServer::start();
    let a = instance(&redis.url(), "shared:", "shared");
    let b = instance(&redis.url(), "shared:", "shared");
    connected(&a).await;
    connected(&b).await;
    a.get("/api/respond").await;
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    a.send(request("POST", "/api/respond", &[])).await;
    // No message to wait for: nothing was in memory.
    assert_eq!(b.get("/api/respond").await.outcome(), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_shared_and_prefixes_keep_apart() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    let other = instance(&redis.url(), "other:", "tiered");
    connected(&other).await;
    a.cache
        .values()
        .set("greeting", &"hello", Duration::from_secs(60))
        .await
        .unwrap();
    let seen: Option<String> = b.cache.values().get("greeting").await.unwrap();
    assert_eq!(seen.as_deref(), Some("hello"));
    let apart: Option<String> = other.cache.values().get("greeting").await.unwrap();
    assert_eq!(apart, None);
    let info = a.cache.values().info().await;
    let expected = format!("memory, then Redis at {}", redis.url());
    assert_eq!(
        (info.store.as_str(), info.shared),
        (expected.as_str(), true)
    );
    assert_eq!((info.usage.entries, info.degraded), (1, None));
    // The value's TTL holds on the reader's clock.
    b.clock.advance(Duration::from_secs(61));
    let gone: Option<String> = b.cache.values().get("greeting").await.unwrap();
    assert_eq!(gone, None);
    // Many at once: one pipeline out from B, one MGET back on A (whose
    // memory holds none of them).
    let items = (0..50).map(|n| (format!("item:{n}"), n));
    b.cache
        .values()
        .set_many(items, Duration::from_secs(60))
        .await
        .unwrap();
    let wanted: Vec<String> = (0..60).map(|n| format!("item:{n}")).collect();
    let many: std::collections::HashMap<String, i32> =
        a.cache.values().get_many(&wanted).await.unwrap();
    assert_eq!(many.len(), 50);
    assert_eq!(many["item:49"], 49);
    assert!(a.cache.values().delete("greeting").await.unwrap());
    let deleted: Option<String> = a.cache.values().get("greeting").await.unwrap();
    assert_eq!(deleted, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_distributed_lock_two_instances_make_one_origin_call() {
    let redis = RedisServer::start();
    for (lock, expected) in [(false, 2), (true, 1)] {
        let more = format!("distributed_lock = {lock}");
        let prefix = format!("lock-{lock}:");
        let a = instance_with(&redis.url(), &prefix, "tiered", &more);
        let b = instance_with(&redis.url(), &prefix, "tiered", &more);
        connected(&a).await;
        connected(&b).await;
        // A cold key, asked of both at once; the origin takes 300 ms.
        let slow = || request("GET", "/api/respond", &[("x-delay-ms", "300")]);
        let (one, two) = tokio::join!(a.send(slow()), b.send(slow()));
        assert_eq!((one.status.as_u16(), two.status.as_u16()), (200, 200));
        let calls = a.origin.calls() + b.origin.calls();
        assert_eq!(calls, expected, "distributed_lock = {lock}");
        if lock {
            // Both answered with the one origin call's body, and the lock
            // is gone once the fetch is over.
            assert_eq!(one.body, two.body);
            let locks = redis.command(&format!("KEYS {prefix}l:*")).unwrap();
            assert_eq!(locks, "*0\r\n");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_compute_computes_once_across_instances_with_the_lock() {
    let redis = RedisServer::start();
    let a = instance_with(
        &redis.url(),
        "compute:",
        "tiered",
        "distributed_lock = true",
    );
    let b = instance_with(
        &redis.url(),
        "compute:",
        "tiered",
        "distributed_lock = true",
    );
    connected(&a).await;
    connected(&b).await;
    let computed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let compute = |cache: cachet::Cache| {
        let computed = std::sync::Arc::clone(&computed);
        async move {
            cache
                .values()
                .get_or_compute("report", Duration::from_secs(60), || async move {
                    computed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::convert::Infallible>("the report".to_owned())
                })
                .await
                .unwrap()
        }
    };
    let (one, two) = tokio::join!(compute(a.cache.clone()), compute(b.cache.clone()));
    assert_eq!((one.as_str(), two.as_str()), ("the report", "the report"));
    assert_eq!(computed.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_exact_under_a_thousand_increments_from_two_instances() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    let minute = Duration::from_secs(60);
    let increments: Vec<_> = (0..1000)
        .map(|n| {
            let values = if n % 2 == 0 {
                a.cache.values()
            } else {
                b.cache.values()
            };
            tokio::spawn(async move { values.incr("ratelimit:10.0.0.1", 1, minute).await })
        })
        .collect();
    let mut seen = Vec::new();
    for increment in increments {
        seen.push(increment.await.unwrap().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=1000).collect::<Vec<i64>>(),
        "each addition saw its own value"
    );
    // Each instance's memory drops the other's stale copies.
    for app in [&a, &b] {
        eventually("both instances read 1000", || async {
            app.cache
                .values()
                .get::<i64>("ratelimit:10.0.0.1")
                .await
                .unwrap()
                == Some(1000)
        })
        .await;
    }
    assert_eq!(
        b.cache
            .values()
            .decr("ratelimit:10.0.0.1", 1000, minute)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_adds_on_two_instances_exactly_one_wins() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis).await;
    let adds: Vec<_> = (0..100)
        .map(|n| {
            let values = if n % 2 == 0 {
                a.cache.values()
            } else {
                b.cache.values()
            };
            tokio::spawn(async move { values.add("job:daily", &n, Duration::from_secs(60)).await })
        })
        .collect();
    let mut won = 0;
    for add in adds {
        won += usize::from(add.await.unwrap().unwrap());
    }
    assert_eq!(won, 1);
}
