//! Properties over random input: keys never merge what the origin tells
//! apart, and no header, however extreme, makes the cache panic or answer
//! with a server error of its own.

use crate::client::RULES;
use crate::origin::resolve_path;
use axum::body::Body;
use cachet::adapter::{self, Plan, Route};
use cachet::{Cache, CacheLayer};
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use proptest::prelude::*;
use std::collections::HashMap;
use tower::{Layer, ServiceExt};

/// Path pieces that origins read in different ways.
fn segment() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        proptest::sample::select(vec![
            "a", "me", "api", "static", ".", "..", "%61", "%2e", "%2E%2e", "%2F", "%5C", ";x", "",
            "+", "%20", "%2B", "%6De", "%zz", "~", "%7E", "%C3%A9",
        ]),
        1..3,
    )
    .prop_map(|parts| parts.concat())
}

fn target() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(segment(), 1..5),
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(vec![
                "a=1", "b=2", "a=2", "", "q=a+b", "q=a%20b", "q=%2B", "a",
            ]),
            0..4,
        )),
    )
        .prop_map(|(segments, query)| {
            let mut target = format!("/{}", segments.join("/"));
            if let Some(pairs) = query {
                target.push('?');
                target.push_str(&pairs.join("&"));
            }
            target
        })
}

/// What the origin receives for `raw` under `plan`: the canonical target
/// when the front rewrites it, else the request's own.
fn origin_sees(plan: &Plan, raw: &str) -> String {
    plan.target()
        .map_or_else(|| raw.to_owned(), |target| target.as_str().to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Two requests share a key only if the origin sees the same target,
    /// and the rule that keyed a request is the one its target matches
    /// as the origin reads it.
    #[test]
    fn keys_are_shared_only_by_requests_the_origin_cannot_tell_apart(
        targets in proptest::collection::vec(target(), 1..12),
        normalize in any::<bool>(),
    ) {
        let rules = format!("{RULES}\n[[rules]]\npath = '^/'\nnormalize_query = {normalize}\n");
        let cache = Cache::from_toml(&rules).unwrap();
        let mut seen: HashMap<String, String> = HashMap::new();
        for raw in &targets {
            let Ok(req) = Request::get(raw.as_str()).body(()) else { continue };
            let Route::Cache(plan) = adapter::route(&cache, &req) else { continue };
            let sees = origin_sees(&plan, raw);
            if let Some(earlier) = seen.insert(plan.key().to_string(), sees.clone()) {
                prop_assert_eq!(&earlier, &sees, "one key, two targets");
            }
            let path = sees.split('?').next().unwrap();
            let resolved = resolve_path(path);
            // The first rule whose regex matches what the origin resolves.
            let by_origin = cache
                .rules()
                .position(|rule| regex::Regex::new(rule.path()).unwrap().is_match(&resolved));
            prop_assert_eq!(by_origin, plan.rule_index(), "{} is {} to the origin", raw, resolved);
        }
    }
}

/// Header values a client or an origin could send, extremes included.
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(
            proptest::sample::select(b"0123456789az=,;\" *-/.:\x80\xff".to_vec()),
            0..24
        ),
        proptest::sample::select(vec![
            b"max-age=18446744073709551615".to_vec(),
            b"max-age=99999999999999999999999999".to_vec(),
            b"s-maxage=18446744073709551616, stale-while-revalidate=18446744073709551615".to_vec(),
            b"stale-if-error=18446744073709551615, public".to_vec(),
            b"max-stale=18446744073709551615, min-fresh=18446744073709551615".to_vec(),
            b"18446744073709551615".to_vec(),
            b"99999999999999999999999".to_vec(),
            b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec(),
            b"Mon, 01 Jan 0001 00:00:00 GMT".to_vec(),
            b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec(),
            b"W/\"x\", *".to_vec(),
            b"bytes=0-1".to_vec(),
            b"sessionid=a; sessionid=b".to_vec(),
        ]),
    ]
}

const REQUEST_HEADERS: [&str; 10] = [
    "cache-control",
    "if-none-match",
    "if-modified-since",
    "range",
    "cookie",
    "authorization",
    "accept-language",
    "connection",
    "pragma",
    "content-length",
];

const RESPONSE_HEADERS: [&str; 8] = [
    "cache-control",
    "age",
    "expires",
    "date",
    "last-modified",
    "etag",
    "vary",
    "content-type",
];

fn headers(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    proptest::collection::vec((proptest::sample::select(names), value()), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the request and response headers, the cache answers with
    /// the origin's status (or a 304 of its own, or 504 to
    /// `only-if-cached`), never a panic.
    #[test]
    fn no_header_makes_the_cache_panic_or_fail(
        request_headers in headers(&REQUEST_HEADERS),
        response_headers in headers(&RESPONSE_HEADERS),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let cache = Cache::from_toml(RULES).unwrap();
            let response_headers = response_headers.clone();
            let origin = tower::service_fn(move |_req: Request<Body>| {
                let mut response = Response::builder();
                for (name, value) in &response_headers {
                    if let Ok(value) = HeaderValue::from_bytes(value) {
                        response = response.header(*name, value);
                    }
                }
                let response = response.body(Body::from("body")).unwrap();
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let service = CacheLayer::new(cache).layer(origin);
            for _ in 0..3 {
                let mut req = Request::get("/api/items/1");
                let mut only_if_cached = false;
                for (name, value) in &request_headers {
                    if let Ok(value) = HeaderValue::from_bytes(value) {
                        only_if_cached |= *name == "cache-control";
                        req = req.header(*name, value);
                    }
                }
                let response = service.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
                let status = response.status().as_u16();
                let _ = response.into_body().collect().await;
                prop_assert!(
                    status < 500 || (status == 504 && only_if_cached),
                    "answered {}", status
                );
            }
            Ok(())
        })?;
    }
}
