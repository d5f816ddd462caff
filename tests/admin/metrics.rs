//! `GET /metrics` read by a Prometheus text parser: the families are there,
//! and the counters move with a miss and a hit through the Tower layer.

use crate::mounts::{self, TOKEN};
use axum::routing::get;
use cachet::admin::{AdminConfig, AdminService};
use cachet::CacheLayer;
use tower::ServiceExt;

/// The samples of one scrape, by metric name and labels.
fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("a valid exposition")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(key) == Some(*value))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{name}: {other:?}"),
    }
}

async fn metrics(app: &axum::Router) -> prometheus_parse::Scrape {
    let req = http::Request::get("/_cachet/metrics")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    scrape(std::str::from_utf8(&body).unwrap())
}

#[tokio::test]
async fn the_counters_move_with_a_miss_and_a_hit() {
    let admin = mounts::admin(AdminConfig::new().token(TOKEN));
    let cache = admin.cache().clone();
    let app = axum::Router::new()
        .route("/api/items", get(|| async { "[]" }))
        .layer(CacheLayer::new(cache.clone()))
        .nest_service("/_cachet", AdminService::new(admin));
    let before = metrics(&app).await;
    let requests = |scrape: &prometheus_parse::Scrape, status| {
        value(
            scrape,
            "cachet_requests_total",
            &[("cache", "default"), ("status", status)],
        )
    };
    assert_eq!(requests(&before, "miss"), 0.0);
    assert_eq!(
        value(&before, "cachet_max_bytes", &[("cache", "pages")]),
        8_388_608.0
    );
    for _ in 0..2 {
        let req = http::Request::get("/api/items")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
    }
    let after = metrics(&app).await;
    assert_eq!(requests(&after, "miss"), 1.0);
    assert_eq!(requests(&after, "hit"), 1.0);
    assert_eq!(
        value(
            &after,
            "cachet_origin_requests_total",
            &[("cache", "default"), ("outcome", "2xx")]
        ),
        1.0
    );
    assert_eq!(
        value(&after, "cachet_entries", &[("cache", "default")]),
        1.0
    );
    assert!(value(&after, "cachet_bytes", &[("cache", "default")]) > 0.0);
    assert_eq!(
        value(
            &after,
            "cachet_origin_duration_seconds_count",
            &[("cache", "default")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "cachet_evictions_total",
            &[("cache", "default"), ("reason", "size")]
        ),
        0.0
    );
    // A bypass (a method the rule does not cache) has a status of its own.
    let req = http::Request::post("/api/items")
        .body(axum::body::Body::empty())
        .unwrap();
    let _ = app.clone().oneshot(req).await.unwrap();
    let bypassed = metrics(&app).await;
    assert_eq!(requests(&bypassed, "bypass"), 1.0);
}
