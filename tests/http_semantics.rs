//! RFC 9111 / RFC 9110 behaviour through the Tower layer, one test per rule,
//! each naming the section it follows.

mod support;

use cachet::clock::Clock;
use std::time::Duration;
use support::{request, App};

const RESPOND: &str = "/api/respond";

/// A GET to the echoing origin that answers with `headers` (`x-respond-NAME`).
fn respond(
    response_headers: &[(&str, String)],
    request_headers: &[(&str, &str)],
) -> http::Request<axum::body::Body> {
    let mut headers: Vec<(String, String)> = response_headers
        .iter()
        .map(|(name, value)| (format!("x-respond-{name}"), value.clone()))
        .collect();
    headers.extend(
        request_headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    request("GET", RESPOND, &refs)
}

fn http_date(app: &App, offset: i64) -> String {
    let now = app.clock.now();
    let at = if offset >= 0 {
        now + Duration::from_secs(offset.unsigned_abs())
    } else {
        now - Duration::from_secs(offset.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

#[tokio::test]
async fn origin_max_age_sets_freshness_rfc9111_4_2_1() {
    let app = App::new();
    let cc = [("cache-control", "max-age=10".to_owned())];
    assert_eq!(app.send(respond(&cc, &[])).await.outcome(), "MISS");
    app.clock.advance(Duration::from_secs(9));
    let hit = app.send(respond(&cc, &[])).await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=1"));
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.send(respond(&cc, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn s_maxage_beats_max_age_in_a_shared_cache_rfc9111_5_2_2_10() {
    let app = App::new();
    let cc = [("cache-control", "max-age=100, s-maxage=5".to_owned())];
    app.send(respond(&cc, &[])).await;
    app.clock.advance(Duration::from_secs(5));
    assert_eq!(app.send(respond(&cc, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn expires_minus_date_sets_freshness_rfc9111_4_2_1() {
    let app = App::new();
    let headers = [
        ("expires", http_date(&app, 30)),
        ("date", http_date(&app, 0)),
    ];
    app.send(respond(&headers, &[])).await;
    app.clock.advance(Duration::from_secs(29));
    assert_eq!(app.send(respond(&headers, &[])).await.outcome(), "HIT");
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(app.send(respond(&headers, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn invalid_expires_means_already_stale_rfc9111_5_3() {
    let app = App::with_rules(&format!("{}\n[headers]\ndebug = true\n", support::RULES));
    let headers = [("expires", "0".to_owned())];
    let first = app.send(respond(&headers, &[])).await;
    assert!(
        first
            .header("cache-status")
            .unwrap()
            .contains("detail=\"stale\""),
        "{first:?}"
    );
    assert_eq!(app.send(respond(&headers, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn upstream_age_is_subtracted_and_reported_rfc9111_4_2_3() {
    let app = App::new();
    let headers = [
        ("cache-control", "max-age=60".to_owned()),
        ("age", "20".to_owned()),
    ];
    app.send(respond(&headers, &[])).await;
    app.clock.advance(Duration::from_secs(5));
    let hit = app.send(respond(&headers, &[])).await;
    assert_eq!(hit.header("age"), Some("25"));
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=35"));
}

#[tokio::test]
async fn a_list_valued_age_uses_its_first_value_and_an_invalid_one_is_stale_rfc9111_5_1() {
    let app = App::new();
    let listed = [
        ("cache-control", "max-age=60".to_owned()),
        ("age", "20, 40".to_owned()),
    ];
    app.send(respond(&listed, &[])).await;
    let hit = app.send(respond(&listed, &[])).await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=40"));
    let app = App::new();
    let invalid = [
        ("cache-control", "max-age=60".to_owned()),
        ("age", "soon".to_owned()),
    ];
    app.send(respond(&invalid, &[])).await;
    assert_eq!(app.send(respond(&invalid, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn expires_in_the_obsolete_forms_and_any_case_sets_freshness_rfc9110_5_6_7() {
    let app = App::new();
    let at = app.clock.now() + Duration::from_secs(30);
    // RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`), upper case.
    let imf = httpdate::fmt_http_date(at);
    let (weekday, rest) = imf.split_once(", ").unwrap();
    let day = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]
    .into_iter()
    .find(|day| day.starts_with(weekday))
    .unwrap();
    let parts: Vec<&str> = rest.split(' ').collect();
    let rfc850 = format!(
        "{day}, {}-{}-{} {} GMT",
        parts[0],
        parts[1],
        &parts[2][2..],
        parts[3]
    )
    .to_uppercase();
    let headers = [
        ("expires", rfc850),
        ("date", http_date(&app, 0).to_lowercase()),
    ];
    app.send(respond(&headers, &[])).await;
    let hit = app.send(respond(&headers, &[])).await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=30"));
}

#[tokio::test]
async fn if_modified_since_without_last_modified_is_evaluated_against_date_rfc9110_13_1_3() {
    let app = App::new();
    let headers = [
        ("cache-control", "max-age=600".to_owned()),
        ("date", http_date(&app, -100)),
    ];
    app.send(respond(&headers, &[])).await;
    let since = http_date(&app, 0);
    let current = app
        .send(respond(&headers, &[("if-modified-since", &since)]))
        .await;
    assert_eq!(current.status.as_u16(), 304);
    let before = http_date(&app, -200);
    let older = app
        .send(respond(&headers, &[("if-modified-since", &before)]))
        .await;
    assert_eq!(older.status.as_u16(), 200);
    assert_eq!(app.origin.calls(), 1);
}

#[tokio::test]
async fn must_understand_stores_an_understood_status_despite_no_store_rfc9111_5_2_2_3() {
    let app = App::new();
    let headers = [(
        "cache-control",
        "must-understand, no-store, max-age=60".to_owned(),
    )];
    app.send(respond(&headers, &[])).await;
    assert_eq!(app.send(respond(&headers, &[])).await.outcome(), "HIT");
    let app = App::new();
    let plain = [("cache-control", "no-store, max-age=60".to_owned())];
    app.send(respond(&plain, &[])).await;
    assert_eq!(app.send(respond(&plain, &[])).await.outcome(), "MISS");
}

#[tokio::test]
async fn rule_ttl_is_the_fallback_without_freshness_information_rfc9111_4_2_2() {
    let app = App::new();
    app.get("/api/items").await;
    let hit = app.get("/api/items").await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=60"));
}

#[tokio::test]
async fn respect_origin_false_lets_the_rule_ttl_win_but_keeps_private() {
    let rules = "[[rules]]\npath = '^/api/respond$'\nttl = '2m'\nrespect_origin = false\n";
    let app = App::with_rules(rules);
    let cc = [("cache-control", "max-age=1".to_owned())];
    app.send(respond(&cc, &[])).await;
    app.clock.advance(Duration::from_secs(119));
    assert_eq!(app.send(respond(&cc, &[])).await.outcome(), "HIT");
    let private = [("cache-control", "private, max-age=600".to_owned())];
    let app = App::with_rules(rules);
    app.send(respond(&private, &[])).await;
    assert_eq!(app.send(respond(&private, &[])).await.outcome(), "MISS");
}

/// Sends the same request twice; the second answer's status and outcome.
async fn twice(app: &App, headers: &[(&str, &str)]) -> (u16, String) {
    app.send(request("GET", RESPOND, headers)).await;
    let again = app.send(request("GET", RESPOND, headers)).await;
    (again.status.as_u16(), again.outcome().to_owned())
}

#[tokio::test]
async fn non_200_statuses_need_explicit_freshness_not_the_rules_ttl() {
    // RFC 9110 §15.1 would let a cache store these heuristically; cachet
    // needs the origin to say how long they stay fresh, or a listing.
    for status in ["203", "204", "301", "404", "410"] {
        let app = App::new();
        assert_eq!(
            twice(&app, &[("x-status", status)]).await.1,
            "MISS",
            "{status}"
        );
        let app = App::new();
        let fresh = [
            ("x-status", status),
            ("x-respond-cache-control", "max-age=30"),
        ];
        assert_eq!(twice(&app, &fresh).await.1, "HIT", "{status}");
    }
}

#[tokio::test]
async fn errors_a_client_can_provoke_are_stored_only_when_listed_cpdos() {
    for status in ["400", "405", "414", "431", "500", "501", "503"] {
        let app = App::new();
        let fresh = [
            ("x-status", status),
            ("x-respond-cache-control", "public, max-age=3600"),
        ];
        assert_eq!(twice(&app, &fresh).await.1, "MISS", "{status}");
    }
    let app = App::with_rules("[[rules]]\npath = '^/api/respond$'\nstatuses = [503]\n");
    assert_eq!(
        twice(&app, &[("x-status", "503")]).await,
        (503, "HIT".to_owned())
    );
}

#[tokio::test]
async fn rules_can_list_more_statuses() {
    let app = App::with_rules("[[rules]]\npath = '^/api/respond$'\nstatuses = [302]\n");
    let found = [("x-status", "302"), ("x-respond-location", "/elsewhere")];
    app.send(request("GET", RESPOND, &found)).await;
    let again = app.send(request("GET", RESPOND, &found)).await;
    assert_eq!((again.status.as_u16(), again.outcome()), (302, "HIT"));
}

#[tokio::test]
async fn request_no_cache_goes_to_the_origin_and_refreshes_rfc9111_5_2_1_4() {
    let app = App::new();
    app.get("/api/items").await;
    for directive in [
        ("cache-control", "no-cache"),
        ("cache-control", "max-age=0"),
        ("pragma", "no-cache"),
    ] {
        let reply = app.send(request("GET", "/api/items", &[directive])).await;
        assert!(
            reply
                .header("cache-status")
                .unwrap()
                .starts_with("cachet; fwd=request"),
            "{directive:?}"
        );
    }
    assert_eq!(app.origin.calls(), 4);
    // The refreshed response is what later requests get.
    assert_eq!(app.get("/api/items").await.body, "items #4");
}

#[tokio::test]
async fn request_max_age_and_min_fresh_bound_what_is_served_rfc9111_5_2_1() {
    let app = App::new();
    app.get("/api/items").await;
    app.clock.advance(Duration::from_secs(30));
    let old = app
        .send(request(
            "GET",
            "/api/items",
            &[("cache-control", "max-age=10")],
        ))
        .await;
    assert!(old
        .header("cache-status")
        .unwrap()
        .starts_with("cachet; fwd=request"));
    app.clock.advance(Duration::from_secs(30));
    let short = app
        .send(request(
            "GET",
            "/api/items",
            &[("cache-control", "min-fresh=50")],
        ))
        .await;
    assert!(short
        .header("cache-status")
        .unwrap()
        .starts_with("cachet; fwd=request"));
    let ok = app
        .send(request(
            "GET",
            "/api/items",
            &[("cache-control", "min-fresh=5")],
        ))
        .await;
    assert_eq!(ok.outcome(), "HIT");
}

#[tokio::test]
async fn request_no_store_is_not_stored_rfc9111_5_2_1_5() {
    let app = App::new();
    app.send(request(
        "GET",
        "/api/items",
        &[("cache-control", "no-store")],
    ))
    .await;
    assert_eq!(app.get("/api/items").await.outcome(), "MISS");
}

#[tokio::test]
async fn only_if_cached_answers_504_on_a_miss_rfc9111_5_2_1_7() {
    let app = App::new();
    let only = [("cache-control", "only-if-cached")];
    let miss = app.send(request("GET", "/api/items", &only)).await;
    assert_eq!(miss.status, 504);
    assert_eq!(app.origin.calls(), 0);
    app.get("/api/items").await;
    let hit = app.send(request("GET", "/api/items", &only)).await;
    assert_eq!((hit.status.as_u16(), hit.body.as_str()), (200, "items #1"));
}

#[tokio::test]
async fn if_none_match_on_a_hit_answers_304_rfc9110_13_1_2() {
    let app = App::new();
    let first = app.get("/api/items").await;
    let etag = first.header("etag").expect("a generated ETag").to_owned();
    assert!(etag.starts_with('"'), "strong: {etag}");
    for condition in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let reply = app
            .send(request(
                "GET",
                "/api/items",
                &[("if-none-match", &condition)],
            ))
            .await;
        assert_eq!(reply.status, 304, "{condition}");
        assert_eq!(reply.body, "");
        assert_eq!(reply.header("etag"), Some(etag.as_str()));
        // No representation metadata; axum itself writes a zero length for
        // every empty body.
        assert!(
            matches!(reply.header("content-length"), None | Some("0")),
            "{reply:?}"
        );
        assert_eq!(reply.header("content-type"), None);
        assert!(reply
            .header("cache-status")
            .unwrap()
            .starts_with("cachet; hit"));
    }
    let other = app
        .send(request(
            "GET",
            "/api/items",
            &[("if-none-match", "\"other\"")],
        ))
        .await;
    assert_eq!(
        (other.status.as_u16(), other.body.as_str()),
        (200, "items #1")
    );
    assert_eq!(app.origin.calls(), 1);
}

#[tokio::test]
async fn the_origin_etag_is_kept_rfc9110_8_8_3() {
    let app = App::new();
    let headers = [("etag", "W/\"v7\"".to_owned())];
    app.send(respond(&headers, &[])).await;
    let hit = app
        .send(respond(&headers, &[("if-none-match", "\"v7\"")]))
        .await;
    assert_eq!(
        (hit.status.as_u16(), hit.header("etag")),
        (304, Some("W/\"v7\""))
    );
}

#[tokio::test]
async fn if_modified_since_on_a_hit_answers_304_rfc9110_13_1_3() {
    let app = App::new();
    let headers = [("last-modified", http_date(&app, -3600))];
    app.send(respond(&headers, &[])).await;
    let since = http_date(&app, -60);
    let reply = app
        .send(respond(&headers, &[("if-modified-since", &since)]))
        .await;
    assert_eq!(reply.status, 304);
    let before = http_date(&app, -7200);
    let reply = app
        .send(respond(&headers, &[("if-modified-since", &before)]))
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn if_none_match_takes_precedence_over_if_modified_since_rfc9110_13_2_2() {
    let app = App::new();
    let headers = [("last-modified", http_date(&app, -3600))];
    app.send(respond(&headers, &[])).await;
    let since = http_date(&app, 0);
    let both = [
        ("if-modified-since", since.as_str()),
        ("if-none-match", "\"nope\""),
    ];
    assert_eq!(app.send(respond(&headers, &both)).await.status, 200);
}

#[tokio::test]
async fn head_from_get_carries_the_get_headers_rfc9110_9_3_2() {
    let app = App::new();
    let get = app.get("/api/shared-head").await;
    let head = app.send(request("HEAD", "/api/shared-head", &[])).await;
    assert_eq!(head.header("etag"), get.header("etag"));
    assert_eq!(head.body, "");
}

#[tokio::test]
async fn cache_status_says_what_happened_rfc9211() {
    let app = App::new();
    let miss = app.get("/api/items").await;
    assert_eq!(
        miss.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; stored")
    );
    let hit = app.get("/api/items").await;
    assert_eq!(hit.header("cache-status"), Some("cachet; hit; ttl=60"));
    let refused = app
        .send(request(
            "GET",
            RESPOND,
            &[("x-respond-cache-control", "no-store")],
        ))
        .await;
    assert_eq!(
        refused.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200")
    );
    assert_eq!(hit.header("x-cache"), None);
}

#[tokio::test]
async fn debug_headers_add_key_and_detail_and_x_cache_is_optional_rfc9211_2() {
    let app = App::with_rules(&format!(
        "{}\n[headers]\ndebug = true\nx_cache = true\n",
        support::RULES
    ));
    let refused = app
        .send(request(
            "GET",
            RESPOND,
            &[("x-respond-cache-control", "private")],
        ))
        .await;
    assert_eq!(
        refused.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200; key=\"/api/respond GET\"; detail=\"private\"")
    );
    assert_eq!(refused.header("x-cache"), Some("MISS"));
    app.get("/api/items").await;
    let hit = app.get("/api/items").await;
    assert_eq!(
        hit.header("cache-status"),
        Some("cachet; hit; ttl=60; key=\"/api/items GET\"")
    );
    assert_eq!(hit.header("x-cache"), Some("HIT"));
}

#[tokio::test]
async fn authorization_with_must_revalidate_may_be_shared_rfc9111_3_5() {
    let app = App::new();
    let headers = [
        ("x-respond-cache-control", "max-age=60, must-revalidate"),
        ("authorization", "Bearer a"),
    ];
    app.send(request("GET", RESPOND, &headers)).await;
    assert_eq!(
        app.send(request("GET", RESPOND, &headers)).await.outcome(),
        "HIT"
    );
}
