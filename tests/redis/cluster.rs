//! The two-instance scenario on a local three-master Redis Cluster: entries
//! spread over every master, and purges, patterns, clears, batches and the
//! distributed lock work across them.

use super::{connected, degraded, eventually, instance_on};
use crate::server::RedisCluster;
use crate::support::{request, App};
use regex::Regex;
use std::collections::HashMap;
use std::time::Duration;

fn on(cluster: &RedisCluster, more: &str) -> App {
    let nodes: Vec<String> = cluster
        .urls()
        .iter()
        .map(|node| format!("'{node}'"))
        .collect();
    let target = format!("cluster = [{}]", nodes.join(", "));
    instance_on(&target, "test:", "tiered", more)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_entries_and_purges_on_a_cluster() {
    let cluster = RedisCluster::start();
    let (a, b) = (on(&cluster, ""), on(&cluster, ""));
    connected(&a).await;
    connected(&b).await;
    let tagged = || request("GET", "/api/respond", &[("x-respond-cache-tag", "prices")]);
    a.send(tagged()).await;
    a.get("/api/items").await;
    for n in 0..20 {
        a.get(&format!("/api/small/{n}")).await;
    }
    // B asks the cluster, then its memory; the entries sit on every master.
    for uri in ["/api/respond", "/api/items"] {
        assert_eq!(b.get(uri).await.outcome(), "HIT", "{uri}");
    }
    for n in 0..20 {
        assert_eq!(b.get(&format!("/api/small/{n}")).await.outcome(), "HIT");
    }
    assert_eq!((a.origin.calls(), b.origin.calls()), (22, 0));
    for node in &cluster.nodes {
        let held = node.command("DBSIZE").unwrap_or_default();
        assert_ne!(held.trim(), ":0", "node {} holds none", node.port);
    }
    // A tag purge on B reaches A.
    assert_eq!(b.cache.purge_tag("prices").await.unwrap(), 1);
    eventually("A's memory drops the tagged entry", || async {
        a.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
    // A write on A purges B's memory (B takes the new copy first).
    assert_eq!(b.get("/api/respond").await.outcome(), "HIT");
    a.send(request("POST", "/api/respond", &[])).await;
    eventually("B's memory drops the written URI", || async {
        b.get("/api/respond").await.outcome() == "MISS"
    })
    .await;
    // A third instance, with nothing in memory, finds every key through a
    // SCAN of each master, and its purge reaches A and B.
    let c = on(&cluster, "");
    connected(&c).await;
    let pattern = Regex::new("^/api/small/1").unwrap();
    assert_eq!(c.cache.delete_matching(&pattern).await.unwrap(), 11);
    eventually(
        "A's and B's memories drop what the pattern matched",
        || async {
            a.get("/api/small/1").await.outcome() == "MISS"
                && b.get("/api/small/15").await.outcome() == "MISS"
        },
    )
    .await;
    assert_eq!(b.get("/api/small/2").await.outcome(), "HIT");
    // Clear on A: B's memory and every master lose the cache.
    a.cache.clear_all().await.unwrap();
    eventually("B's memory is cleared", || async {
        b.get("/api/small/3").await.outcome() == "MISS"
    })
    .await;
    assert_eq!(
        cluster.count("test:e:small:*"),
        1,
        "only B's new /api/small/3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_and_the_distributed_lock_work_across_slots() {
    let cluster = RedisCluster::start();
    let a = on(&cluster, "distributed_lock = true");
    let b = on(&cluster, "distributed_lock = true");
    connected(&a).await;
    connected(&b).await;
    a.cache.values().ping().await.unwrap();
    assert!(a
        .cache
        .values()
        .info()
        .await
        .store
        .contains("the cluster of"));
    // set_many's commands go to each key's master; get_many's MGET is
    // split by slot.
    let items = (0..50).map(|n| (format!("item:{n}"), n));
    b.cache
        .values()
        .set_many(items, Duration::from_secs(60))
        .await
        .unwrap();
    let wanted: Vec<String> = (0..60).map(|n| format!("item:{n}")).collect();
    let many: HashMap<String, i32> = a.cache.values().get_many(&wanted).await.unwrap();
    assert_eq!(many.len(), 50);
    assert_eq!(many["item:7"], 7);
    // The lock and the entry it guards live in different slots.
    let slow = || request("GET", "/api/respond", &[("x-delay-ms", "300")]);
    let (one, two) = tokio::join!(a.send(slow()), b.send(slow()));
    assert_eq!((one.status.as_u16(), two.status.as_u16()), (200, 200));
    assert_eq!(a.origin.calls() + b.origin.calls(), 1);
    assert_eq!(one.body, two.body);
    assert_eq!(cluster.count("test:l:*"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_fails_no_request_and_the_tier_comes_back() {
    let mut cluster = RedisCluster::start();
    let (a, b) = (on(&cluster, ""), on(&cluster, ""));
    connected(&a).await;
    connected(&b).await;
    // Four entries: what A's 8 KiB `small` cache holds at once (the store
    // evicts as it inserts).
    for n in 0..4 {
        a.get(&format!("/api/small/{n}")).await;
    }
    cluster.nodes[1].kill();
    // Its slots are gone: memory and the origin answer, nothing fails.
    for n in 0..20 {
        let answer = b.get(&format!("/api/small/{n}")).await;
        assert_eq!(answer.status.as_u16(), 200, "/api/small/{n}");
        let hit = a.get(&format!("/api/small/{}", n % 4)).await;
        assert_eq!((hit.status.as_u16(), hit.outcome()), (200, "HIT"));
    }
    eventually("health says degraded", || async {
        degraded(&b.cache).await
    })
    .await;
    // And stays so while the master is dead (the probe that brings the
    // tier back, every 50-500 ms, must ask every master).
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(1) {
        assert!(
            degraded(&b.cache).await,
            "the tier came back with a master dead"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(b.cache.values().ping().await.is_err());
    assert!(b.cache.stats().caches["small"].store_errors > 0);
    // Back on its port with its cluster configuration: the tier resumes.
    cluster.nodes[1].restart();
    cluster.wait_ready();
    connected(&a).await;
    connected(&b).await;
    b.cache.values().ping().await.unwrap();
    a.get("/api/items").await;
    assert_eq!(b.get("/api/items").await.outcome(), "HIT");
}
