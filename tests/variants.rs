//! Variants (RFC 9111 §4.1) through the Tower layer: responses stored under
//! the primary key by the request's values of the headers their `Vary`
//! names.

mod support;

use std::time::Duration;
use support::{request, App, Reply};

/// A GET to the echoing origin, whose response varies on `vary` (or not,
/// when `None`), with the request headers `headers`.
async fn get(app: &App, vary: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(vary) = vary {
        all.push(("x-respond-vary", vary));
    }
    app.send(request("GET", "/api/respond", &all)).await
}

const GZIP: (&str, &str) = ("accept-encoding", "gzip");
const BR: (&str, &str) = ("accept-encoding", "br");
const VARY: Option<&str> = Some("Accept-Encoding");

#[tokio::test]
async fn each_variant_is_stored_and_served_by_its_request_values_rfc9111_4_1() {
    let app = App::new();
    assert_eq!(get(&app, VARY, &[GZIP]).await.body, "headers #1");
    let br = get(&app, VARY, &[BR]).await;
    assert_eq!(br.body, "headers #2");
    assert_eq!(
        br.header("cache-status"),
        Some("cachet; fwd=vary-miss; fwd-status=200; stored")
    );
    let gzip = get(&app, VARY, &[GZIP]).await;
    assert_eq!((gzip.outcome(), gzip.body.as_str()), ("HIT", "headers #1"));
    let br = get(&app, VARY, &[BR]).await;
    assert_eq!((br.outcome(), br.body.as_str()), ("HIT", "headers #2"));
    assert_eq!(app.origin.calls(), 2);
}

#[tokio::test]
async fn variants_are_keyed_by_the_values_the_origin_received_rfc9111_4_1() {
    let app = App::new();
    get(&app, VARY, &[("accept-encoding", "gzip, br")]).await;
    // Accept-Encoding goes upstream in one canonical spelling, which the key
    // holds: equivalent spellings, and the same members in two lines, share
    // the variant.
    for same in [
        &[("accept-encoding", "GZIP, BR")][..],
        &[("accept-encoding", "gzip,br")],
        &[("accept-encoding", "br, gzip")],
        &[("accept-encoding", "gzip"), ("accept-encoding", "br")],
    ] {
        let reply = get(&app, VARY, same).await;
        assert_eq!(reply.outcome(), "HIT", "{same:?}");
    }
    assert_eq!(app.origin.calls(), 1);
    // A value it cannot respell is keyed as received: another spelling is
    // another variant, and lines an origin may read one of are answered,
    // never stored.
    let odd = [("accept-encoding", "gzip;level=1")];
    get(&app, VARY, &odd).await;
    assert_eq!(get(&app, VARY, &odd).await.outcome(), "HIT");
    let shouted = [("accept-encoding", "GZIP;level=1")];
    assert_eq!(get(&app, VARY, &shouted).await.outcome(), "MISS");
    let split = [
        ("accept-encoding", "gzip;level=1"),
        ("accept-encoding", "br"),
    ];
    assert_eq!(get(&app, VARY, &split).await.outcome(), "MISS");
    assert_eq!(get(&app, VARY, &split).await.outcome(), "MISS");
    assert_eq!(app.origin.calls(), 5);
}

#[tokio::test]
async fn vary_names_are_matched_case_insensitively_rfc9111_4_1() {
    let app = App::new();
    get(&app, Some(" accept-ENCODING "), &[GZIP]).await;
    assert_eq!(
        get(&app, Some("Accept-Encoding"), &[GZIP]).await.outcome(),
        "HIT"
    );
}

#[tokio::test]
async fn an_absent_header_differs_from_an_empty_one_rfc9111_4_1() {
    let app = App::new();
    get(&app, VARY, &[]).await;
    let empty = get(&app, VARY, &[("accept-encoding", "")]).await;
    assert_eq!(empty.outcome(), "MISS");
    assert_eq!(get(&app, VARY, &[]).await.outcome(), "HIT");
    assert_eq!(
        get(&app, VARY, &[("accept-encoding", "")]).await.outcome(),
        "HIT"
    );
}

#[tokio::test]
async fn a_response_without_vary_replaces_all_variants_rfc9111_4_1() {
    let app = App::new();
    get(&app, VARY, &[GZIP]).await;
    get(&app, VARY, &[BR]).await;
    // A new variant's response comes back without Vary: it is now the one
    // response for the URL, whatever the request's Accept-Encoding.
    let plain = get(&app, None, &[("accept-encoding", "zstd")]).await;
    assert_eq!(plain.body, "headers #3");
    for encoding in [GZIP, BR] {
        let reply = get(&app, None, &[encoding]).await;
        assert_eq!(
            (reply.outcome(), reply.body.as_str()),
            ("HIT", "headers #3")
        );
    }
}

#[tokio::test]
async fn purging_the_url_purges_all_its_variants_rfc9111_4_1() {
    let app = App::new();
    get(&app, VARY, &[GZIP]).await;
    get(&app, VARY, &[BR]).await;
    assert!(app.cache.delete("/api/respond GET").await.unwrap());
    // The next variant stored starts a new index: the old gzip variant is
    // never found again.
    assert_eq!(get(&app, VARY, &[BR]).await.body, "headers #3");
    let gzip = get(&app, VARY, &[GZIP]).await;
    assert_eq!((gzip.outcome(), gzip.body.as_str()), ("MISS", "headers #4"));
}

#[tokio::test]
async fn vary_star_is_never_stored_rfc9111_4_1() {
    let app = App::new();
    let star = get(&app, Some("*"), &[]).await;
    assert_eq!(
        star.header("cache-status"),
        Some("cachet; fwd=uri-miss; fwd-status=200")
    );
    assert_eq!(get(&app, Some("*"), &[]).await.outcome(), "MISS");
}

#[tokio::test]
async fn variants_by_cookie_never_put_the_cookie_in_a_key() {
    let app = App::new();
    get(&app, Some("Cookie"), &[("cookie", "session=s3cret")]).await;
    let other = get(&app, Some("Cookie"), &[("cookie", "session=other")]).await;
    assert_eq!(other.outcome(), "MISS");
    let keys = app.cache.keys().await.unwrap();
    assert!(
        keys.iter().all(|k| !k.key.as_str().contains("s3cret")),
        "{keys:?}"
    );
    assert_eq!(
        get(&app, Some("Cookie"), &[("cookie", "session=s3cret")])
            .await
            .body,
        "headers #1"
    );
}

#[tokio::test]
async fn variants_expire_on_their_own_ttl() {
    let app = App::new();
    let cc = ("x-respond-cache-control", "max-age=10");
    get(&app, VARY, &[GZIP, cc]).await;
    app.clock.advance(Duration::from_secs(5));
    get(&app, VARY, &[BR, cc]).await;
    app.clock.advance(Duration::from_secs(6));
    assert_eq!(get(&app, VARY, &[GZIP, cc]).await.outcome(), "MISS");
    assert_eq!(get(&app, VARY, &[BR, cc]).await.outcome(), "HIT");
}
