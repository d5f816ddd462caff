//! Soft purges through the Tower layer: the entries a purge reaches become
//! stale — revalidated with their validators, served stale within their
//! windows — instead of being removed (Varnish's `purge.soft`).

mod support;

use regex::Regex;
use support::{request, App};

#[tokio::test]
async fn a_soft_purge_makes_the_next_request_revalidate_instead_of_refetch() {
    let app = App::new();
    app.get("/api/cond").await;
    assert_eq!(
        app.cache.soft().purge_uri("/api/cond", None).await.unwrap(),
        1
    );
    // Still listed: stale, not gone.
    assert_eq!(app.cache.keys().await.unwrap().len(), 1);
    let next = app.get("/api/cond").await;
    assert_eq!((next.status.as_u16(), next.body.as_str()), (200, "body #1"));
    assert_eq!(
        app.origin.conditions(),
        ["inm=- ims=-", "inm=\"v1\" ims=-"],
        "revalidated with the stored ETag"
    );
    // Fresh again after the 304.
    assert_eq!(app.get("/api/cond").await.outcome(), "HIT");
    assert_eq!(app.origin.calls(), 2);
    let stats = app.cache.stats();
    assert_eq!((stats.purges["uri"], stats.soft_purges["uri"]), (1, 1));

    // A hard purge, for comparison: the next request fetches it whole.
    app.cache.purge_uri("/api/cond", None).await.unwrap();
    app.get("/api/cond").await;
    assert_eq!(app.origin.conditions()[2], "inm=- ims=-");
    assert_eq!(app.cache.stats().soft_purges["uri"], 1);
}

#[tokio::test]
async fn a_soft_purged_entry_is_served_stale_within_stale_while_revalidate() {
    let app = App::new();
    let news = || {
        request(
            "GET",
            "/api/respond",
            &[
                (
                    "x-respond-cache-control",
                    "max-age=60, stale-while-revalidate=30",
                ),
                ("x-respond-cache-tag", "news"),
            ],
        )
    };
    app.send(news()).await;
    assert_eq!(app.cache.soft().purge_tag("news").await.unwrap(), 1);
    let stale = app.send(news()).await;
    assert_eq!(stale.body, "headers #1");
    let status = stale.header("cache-status").unwrap();
    assert!(
        status.contains("fwd=stale") && status.contains("stale-while-revalidate"),
        "{status}"
    );
    assert_eq!(app.cache.stats().soft_purges["tag"], 1);
}

#[tokio::test]
async fn an_entry_that_would_not_be_kept_stale_is_removed() {
    let app = App::new();
    let plain = || {
        request(
            "GET",
            "/api/respond",
            &[("x-respond-cache-control", "max-age=60")],
        )
    };
    app.send(plain()).await;
    let pattern = Regex::new("^/api/respond").unwrap();
    assert_eq!(app.cache.soft().delete_matching(&pattern).await.unwrap(), 1);
    assert!(app.cache.keys().await.unwrap().is_empty());
    assert_eq!(app.send(plain()).await.outcome(), "MISS");
}

#[tokio::test]
async fn a_rule_can_make_its_invalidations_soft() {
    let app = App::with_rules("[[rules]]\npath = '^/api/'\nsoft_invalidation = true\n");
    let tagged = || request("GET", "/api/respond", &[("x-respond-etag", "\"e1\"")]);
    app.send(tagged()).await;
    let key = app.cache.keys().await.unwrap()[0].key.clone();
    assert_eq!(
        app.send(request("POST", "/api/respond", &[])).await.status,
        200
    );
    // Made stale, not removed, and counted as a soft invalidation.
    assert_eq!(app.cache.keys().await.unwrap()[0].key, key);
    let stats = app.cache.stats();
    assert_eq!(stats.soft_purges["invalidation"], 1);
    let next = app.send(tagged()).await;
    assert_eq!(next.body, "headers #3");
    assert!(
        next.header("cache-status").unwrap().contains("fwd=stale"),
        "{next:?}"
    );
}
