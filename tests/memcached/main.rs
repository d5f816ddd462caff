//! The Memcached tier against real `memcached` processes of each test's
//! own: two instances (two caches on one or two servers, each behind the
//! Tower layer) share entries, key listings and purges, and no request
//! fails when a server is down, killed, slow or loses the tier's indexes.
//! Run with `--features external-tests`.

mod server;
#[path = "../support/mod.rs"]
mod support;

use cachet::clock::MockClock;
use cachet::Identity;
use regex::Regex;
use server::MemcachedServer;
use std::future::Future;
use std::time::{Duration, Instant};
use support::{request, App, RULES};

/// An instance: [`RULES`] behind the Tower layer, on `servers` under
/// `prefix` (`[memcached]` written as an application would), reading the
/// log every 50 ms.
fn instance(servers: &[&MemcachedServer], prefix: &str, mode: &str, more: &str) -> App {
    let list: Vec<String> = servers
        .iter()
        .map(|server| format!("'{}'", server.address()))
        .collect();
    instance_on(&list.join(", "), prefix, mode, more)
}

fn instance_on(servers: &str, prefix: &str, mode: &str, more: &str) -> App {
    let text = format!(
        "{RULES}\n[memcached]\nservers = [{servers}]\nprefix = '{prefix}'\nmode = '{mode}'\n\
         command_timeout = '200ms'\npoll_interval = '50ms'\n{more}\n"
    );
    let clock = MockClock::new();
    let config = cachet::Config::from_toml(&text).unwrap();
    let builder = config
        .cache
        .identity(Identity::default().secret("shared by every instance"))
        .clock(clock.clone());
    let cache = cachet::memcached::install_with_env(builder, config.memcached, |_| None)
        .unwrap()
        .build()
        .unwrap();
    App::around(cache, clock)
}

/// Two tiered instances on `servers`, connected and following the log.
async fn pair(servers: &[&MemcachedServer], prefix: &str) -> (App, App) {
    let a = instance(servers, prefix, "tiered", "");
    let b = instance(servers, prefix, "tiered", "");
    connected(&a).await;
    connected(&b).await;
    (a, b)
}

/// Waits (a second or two at most: polls between processes) until
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

async fn degraded(cache: &cachet::Cache) -> bool {
    matches!(cache.health().await, cachet::stats::Health::Degraded { .. })
}

async fn connected(app: &App) {
    eventually("the tier connects and follows the log", || async {
        app.cache.health().await == cachet::stats::Health::Ok
    })
    .await;
}

/// The keys `cache` lists (its memory and the registry).
async fn listed(app: &App) -> Vec<String> {
    let keys = app.cache.keys().await.unwrap();
    keys.into_iter()
        .map(|listed| listed.key.as_str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_on_one_instance_fills_memcached_and_the_other_hits_it() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "test:").await;
    let first = a.get("/api/items").await;
    assert_eq!((first.outcome(), first.body.as_str()), ("MISS", "items #1"));
    // B has never seen it: from Memcached, then from its own memory.
    for _ in 0..3 {
        let hit = b.get("/api/items").await;
        assert_eq!((hit.outcome(), hit.body.as_str()), ("HIT", "items #1"));
    }
    assert_eq!((a.origin.calls(), b.origin.calls()), (1, 0));
    // B's copy, read from Memcached into its memory, shares a prepared form
    // of its headers between hits, counted in its weight: A, which stored
    // the same entry and never hit it, weighs it without one.
    let bytes = |app: &App| app.cache.stats().caches["default"].bytes;
    assert!(bytes(&b) > bytes(&a), "{} vs {}", bytes(&b), bytes(&a));
    // Freshness travels with the entry: B's clock decides, not Memcached's.
    b.clock.advance(Duration::from_secs(60));
    assert_eq!(b.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.origin.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_purge_on_one_instance_makes_the_others_revalidate() {
    let server = MemcachedServer::start();
    let (a, b) = pair(&[&server], "soft:").await;
    a.get("/api/cond").await;
    assert_eq!(b.get("/api/cond").await.outcome(), "HIT");
    assert_eq!(a.get("/api/cond").await.outcome(), "HIT");
    assert_eq!(
        b.cache.soft().purge_uri("/api/cond", None).await.unwrap(),
        1
    );
    // A's memory drops its fresh copy; the stale one in Memcached is then
    // revalidated with its ETag instead of fetched whole.
    eventually("A revalidates the soft-purged entry", || async {
        a.get("/api/cond").await.outcome() == "MISS"
    })
    .await;
    assert!(
        a.origin
            .conditions()
            .contains(&"inm=\"v1\" ims=-".to_owned()),
        "{:?}",
        a.origin.conditions()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_group_invalidation_on_one_instance_reaches_the_others_memory_rfc9875_3() {
    let server = MemcachedServer::start();
    let (a, b) = pair(&[&server], "groups:").await;
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
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "test:").await;
    a.get("/api/respond").await;
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    let post = a.send(request("POST", "/api/respond", &[])).await;
    assert_eq!(post.status, 200);
    // Memcached lost it at once; B's memory at its next read of the log.
    eventually("B's memory drops the purged entry", || async {
        b.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_uri_pattern_and_key_purges_on_one_reach_the_other() {
    let one = MemcachedServer::start();
    let two = MemcachedServer::start();
    let (a, b) = pair(&[&one, &two], "test:").await;
    let tagged = || request("GET", "/api/respond", &[("x-respond-cache-tag", "prices")]);
    a.send(tagged()).await;
    a.get("/api/items").await;
    a.get("/api/small/1").await;
    a.get("/api/small/2").await;
    for uri in ["/api/respond", "/api/items", "/api/small/1", "/api/small/2"] {
        assert_eq!(b.get(uri).await.outcome(), "HIT", "{uri}");
    }
    // A purge on B needs no read of A's memory: the tag index finds it.
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
    let pattern = Regex::new("^/api/small/1").unwrap();
    assert!(b.cache.delete_matching(&pattern).await.unwrap() >= 1);
    eventually("A's memory drops what the pattern matched", || async {
        a.get("/api/small/1").await.outcome() == "MISS"
    })
    .await;
    let key = listed(&b)
        .await
        .into_iter()
        .find(|key| key.starts_with("/api/small/2"))
        .expect("B lists the entry");
    assert!(b.cache.delete(&key).await.unwrap());
    eventually("A's memory drops the deleted key", || async {
        a.get("/api/small/2").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_listing_on_one_instance_shows_the_others_keys() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "test:").await;
    for uri in ["/api/items", "/api/small/1", "/api/small/2"] {
        a.get(uri).await;
    }
    let on_b = listed(&b).await;
    assert_eq!(on_b.len(), 3, "{on_b:?}");
    assert!(on_b.iter().all(|key| key.starts_with("/api/")), "{on_b:?}");
    // What a purge removed is listed no more; what expired neither.
    b.cache.purge_uri("/api/items", None).await.unwrap();
    assert_eq!(listed(&b).await.len(), 2);
    b.clock.advance(Duration::from_secs(61));
    assert_eq!(listed(&b).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_on_one_instance_clears_the_others_memory_and_memcached_only_its_keys() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "test:").await;
    // Someone else's key on the same server.
    assert_eq!(
        memcached.command("set theirs 0 0 2\r\nok").as_deref(),
        Some("STORED\r\n")
    );
    a.get("/api/items").await;
    a.get("/api/small/1").await;
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    a.cache.clear_all().await.unwrap();
    eventually("B's memory is cleared", || async {
        b.get("/api/items").await.outcome() == "MISS"
    })
    .await;
    // Memcached's copies read as misses on a third instance too.
    let c = instance(&[&memcached], "test:", "tiered", "");
    connected(&c).await;
    assert_eq!(c.get("/api/small/1").await.outcome(), "MISS");
    assert!(memcached
        .command("get theirs")
        .unwrap()
        .starts_with("VALUE theirs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stay_in_memory_and_are_still_purged_everywhere() {
    let memcached = MemcachedServer::start();
    let a = instance(&[&memcached], "big:", "tiered", "max_shared_body = 4");
    let b = instance(&[&memcached], "big:", "tiered", "max_shared_body = 4");
    connected(&a).await;
    connected(&b).await;
    a.get("/api/items").await;
    assert_eq!(a.get("/api/items").await.outcome(), "HIT");
    // "items #1" is over 4 bytes: B must ask the origin itself...
    assert_eq!(b.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    // ...yet a purge on B still finds A's copy through the registry.
    b.cache.purge_uri("/api/items", None).await.unwrap();
    eventually("A's memory-only entry is purged", || async {
        a.get("/api/items").await.outcome() == "MISS"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_memcached_under_load_fails_no_request_and_memory_is_emptied_when_it_returns() {
    let mut memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "kill:").await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    a.get("/api/items").await;
    a.cache.values().ping().await.unwrap();
    // Four clients keep asking both instances while Memcached dies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|n| {
            let (app, stop) = (if n % 2 == 0 { a.clone() } else { b.clone() }, stop.clone());
            tokio::spawn(async move {
                let (mut answered, mut failed) = (0, 0);
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let reply = app.get(&format!("/api/target?n={}", i % 50)).await;
                    if reply.status.as_u16() == 200 {
                        answered += 1;
                    } else {
                        failed += 1;
                    }
                    i += 1;
                    // A hit from memory never waits: let the test's own task run.
                    tokio::task::yield_now().await;
                }
                (answered, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    memcached.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Served from memory, and from the origin.
    let hit = a.get("/api/items").await;
    assert_eq!((hit.status.as_u16(), hit.outcome()), (200, "HIT"));
    eventually("health says degraded", || async {
        degraded(&a.cache).await && degraded(&b.cache).await
    })
    .await;
    let down = a.cache.values().ping().await.unwrap_err().to_string();
    assert!(down.contains("memcached at 127.0.0.1"), "{down}");
    assert!(a.cache.values().info().await.degraded.is_some());
    memcached.restart();
    connected(&a).await;
    connected(&b).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in load {
        let (answered, failed) = client.await.unwrap();
        assert_eq!(failed, 0, "no request fails");
        total += answered;
    }
    assert!(total > 100, "{total} requests answered");
    a.cache.values().ping().await.unwrap();
    // Both emptied their memory (purges may have been missed), and
    // Memcached shares again.
    assert_eq!(a.get("/api/items").await.outcome(), "MISS");
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_down_at_start_serves_from_memory_and_the_origin() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("'127.0.0.1:{}'", free.local_addr().unwrap().port());
    drop(free);
    let a = instance_on(&address, "down:", "tiered", "");
    assert_eq!(a.get("/api/items").await.outcome(), "MISS");
    assert_eq!(a.get("/api/items").await.outcome(), "HIT");
    let health = a.cache.health().await;
    assert!(
        matches!(&health, cachet::stats::Health::Degraded { degraded } if degraded.contains("down")),
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_servers_killed_leaves_the_others_keys_shared() {
    let one = MemcachedServer::start();
    let two = MemcachedServer::start();
    let (a, b) = pair(&[&one, &two], "halves:").await;
    let uris: Vec<String> = (0..40).map(|n| format!("/api/target?page={n}")).collect();
    for uri in &uris {
        a.get(uri).await;
    }
    // Both servers hold entries.
    let (on_one, on_two) = (one.keys(), two.keys());
    let entries = |keys: &[String]| {
        keys.iter()
            .filter(|key| key.starts_with("halves:e:"))
            .count()
    };
    assert!(
        entries(&on_one) > 3 && entries(&on_two) > 3,
        "{on_one:?} and {on_two:?}"
    );
    // Kill the one that does not hold the log: the other's keys stay shared.
    let log_on_one = on_one.iter().any(|key| key.starts_with("halves:a:"));
    let (mut dead, alive) = if log_on_one { (two, one) } else { (one, two) };
    let on_alive: Vec<String> = alive.keys();
    dead.kill();
    let c = instance(&[&alive, &dead], "halves:", "tiered", "");
    eventually("C follows the log on the live server", || async {
        let health = c.cache.health().await;
        matches!(&health, cachet::stats::Health::Degraded { degraded }
            if degraded.contains("down") && !degraded.contains("not followed"))
    })
    .await;
    let mut hits = 0;
    for uri in &uris {
        let reply = c.get(uri).await;
        assert_eq!(reply.status.as_u16(), 200);
        hits += usize::from(reply.outcome() == "HIT");
    }
    assert!(
        hits > 3 && hits < uris.len(),
        "{hits} hits of {}",
        uris.len()
    );
    assert!(!on_alive.is_empty());
    assert!(degraded(&b.cache).await || degraded(&c.cache).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_memcached_is_a_miss_not_a_failure() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "slow:").await;
    a.get("/api/items").await;
    memcached.pause();
    let started = Instant::now();
    let slow = b.get("/api/items").await;
    assert_eq!((slow.status.as_u16(), slow.outcome()), (200, "MISS"));
    // One deadline (200 ms), not a hang.
    assert!(started.elapsed() < Duration::from_secs(2));
    memcached.resume();
    // Counted where operators look: the lookup that could not use Memcached.
    assert_eq!(b.cache.stats().caches["default"].store_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_index_is_detected_and_no_purged_entry_is_served() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "evict:").await;
    a.get("/api/items").await;
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    // Memcached evicts the registry (here, deleted by hand).
    let segments: Vec<String> = memcached
        .keys()
        .into_iter()
        .filter(|key| key.starts_with("evict:r:"))
        .collect();
    assert!(!segments.is_empty());
    for segment in &segments {
        assert_eq!(
            memcached.command(&format!("delete {segment}")).as_deref(),
            Some("DELETED\r\n")
        );
    }
    // A pattern purge on B cannot find the entry in the registry: it sees
    // the loss, and the anchor changes, so neither the copy in Memcached
    // nor A's memory serves it again.
    b.cache
        .delete_matching(&Regex::new("^/api/").unwrap())
        .await
        .unwrap();
    eventually("A's memory drops everything of the cache", || async {
        a.get("/api/items").await.outcome() == "MISS"
    })
    .await;
    let c = instance(&[&memcached], "evict:", "tiered", "");
    connected(&c).await;
    // What A stored since, under the new anchor, is shared again.
    assert_eq!(c.get("/api/items").await.body, "items #2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_purge_in_the_log_empties_memory() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "gap:").await;
    a.get("/api/items").await;
    a.get("/api/small/1").await;
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
    assert_eq!(b.get("/api/small/1").await.outcome(), "HIT");
    // A purge numbered but never written (its writer died between the
    // two commands): B cannot know what it was, so it empties its memory.
    a.get("/api/respond").await;
    a.send(request("POST", "/api/respond", &[])).await;
    let numbered = memcached.command("incr gap:log 1").unwrap();
    assert!(numbered.trim().parse::<u64>().is_ok(), "{numbered}");
    eventually("B empties its memory", || async {
        b.cache.stats().caches["small"].entries == 0
    })
    .await;
    // Memcached still shares what it holds.
    assert_eq!(b.get("/api/small/1").await.outcome(), "HIT");
    // The counter itself evicted: B cannot tell what it missed either.
    assert_eq!(
        memcached.command("delete gap:log").as_deref(),
        Some("DELETED\r\n")
    );
    eventually("B empties its memory again", || async {
        b.cache.stats().caches["small"].entries == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mode_keeps_nothing_in_memory() {
    let memcached = MemcachedServer::start();
    let a = instance(&[&memcached], "shared:", "shared", "");
    let b = instance(&[&memcached], "shared:", "shared", "");
    connected(&a).await;
    connected(&b).await;
    a.get("/api/respond").await;
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    a.send(request("POST", "/api/respond", &[])).await;
    // Nothing to wait for: nothing was in memory.
    assert_eq!(b.get("/api/respond").await.outcome(), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_programmatic_cache_round_trips_and_prefixes_keep_apart() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "values:").await;
    let other = instance(&[&memcached], "other:", "tiered", "");
    connected(&other).await;
    let (va, vb) = (a.cache.values(), b.cache.values());
    let minute = Duration::from_secs(60);
    va.set("greeting", &"hello", minute).await.unwrap();
    assert_eq!(
        vb.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    assert!(vb.exists("greeting").await.unwrap());
    assert_eq!(
        other
            .cache
            .values()
            .get::<String>("greeting")
            .await
            .unwrap(),
        None
    );
    let info = va.info().await;
    let expected = format!("memory, then Memcached at {}", memcached.address());
    assert_eq!(
        (info.store.as_str(), info.shared, info.degraded),
        (expected.as_str(), true, None)
    );
    // Many at once, each server's share in one round trip.
    let items = (0..50).map(|n| (format!("item:{n}"), n));
    vb.set_many(items, minute).await.unwrap();
    let wanted: Vec<String> = (0..60).map(|n| format!("item:{n}")).collect();
    let many: std::collections::HashMap<String, i32> = va.get_many(&wanted).await.unwrap();
    assert_eq!((many.len(), many["item:49"]), (50, 49));
    // Keys and pattern deletes through the registry.
    let mut like = va.keys_like("item:4*").await.unwrap();
    like.sort();
    assert_eq!(like.len(), 11, "{like:?}");
    assert_eq!(vb.delete_pattern("item:1*").await.unwrap(), 11);
    eventually("A's memory drops what B deleted", || async {
        va.get_many::<i32, _>(&wanted).await.unwrap().len() == 39
    })
    .await;
    // TTLs by the reader's clock; `expire` (Django's `touch`) extends one.
    b.clock.advance(Duration::from_secs(30));
    assert_eq!(
        vb.ttl("greeting").await.unwrap(),
        Some(Duration::from_secs(30))
    );
    assert!(vb
        .expire("greeting", Duration::from_secs(120))
        .await
        .unwrap());
    a.clock.advance(Duration::from_secs(90));
    eventually("A reads the extended value", || async {
        va.get::<String>("greeting").await.unwrap().as_deref() == Some("hello")
    })
    .await;
    assert!(va.delete("greeting").await.unwrap());
    eventually("B's memory drops the deleted value", || async {
        vb.get::<String>("greeting").await.unwrap().is_none()
    })
    .await;
    va.clear().await.unwrap();
    eventually("B's memory is cleared too", || async {
        vb.get_many::<i32, _>(&wanted).await.unwrap().is_empty()
    })
    .await;
    vb.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_distributed_lock_two_instances_make_one_origin_call() {
    let memcached = MemcachedServer::start();
    for (lock, expected) in [(false, 2), (true, 1)] {
        let more = format!("distributed_lock = {lock}");
        let prefix = format!("lock-{lock}:");
        let a = instance(&[&memcached], &prefix, "tiered", &more);
        let b = instance(&[&memcached], &prefix, "tiered", &more);
        connected(&a).await;
        connected(&b).await;
        // A cold key, asked of both at once; the origin takes 300 ms.
        let slow = || request("GET", "/api/respond", &[("x-delay-ms", "300")]);
        let (one, two) = tokio::join!(a.send(slow()), b.send(slow()));
        assert_eq!((one.status.as_u16(), two.status.as_u16()), (200, 200));
        let calls = a.origin.calls() + b.origin.calls();
        assert_eq!(calls, expected, "distributed_lock = {lock}");
        if lock {
            assert_eq!(one.body, two.body);
            // The lock is gone once the fetch is over.
            let keys = memcached.keys();
            assert!(
                !keys
                    .iter()
                    .any(|key| key.starts_with(&format!("{prefix}l:"))),
                "{keys:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_exact_under_a_thousand_increments_from_two_instances() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "count:").await;
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
    let after = b
        .cache
        .values()
        .decr("ratelimit:10.0.0.1", 1000, minute)
        .await
        .unwrap();
    assert_eq!(after, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_adds_on_two_instances_exactly_one_wins() {
    let memcached = MemcachedServer::start();
    let (a, b) = pair(&[&memcached], "add:").await;
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

#[test]
fn redis_and_memcached_together_is_a_configuration_error() {
    let error = cachet::Config::from_toml(
        "[redis]\nurl = 'redis://127.0.0.1:1'\n[memcached]\nservers = ['127.0.0.1:1']\n",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("one shared tier"), "{error}");
}
