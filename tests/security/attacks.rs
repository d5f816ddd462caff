//! One test per attack, each played on both fronts.

use crate::client::{get, send, Front, FRONTS};

const VICTIM: (&str, &str) = ("cookie", "sessionid=VICTIM");

#[tokio::test]
async fn an_encoded_path_never_serves_a_private_page_to_others() {
    for front in FRONTS {
        let app = front.start("").await;
        let victim = get(app.addr, "/api/m%65", &[VICTIM], "").await;
        assert_eq!(victim.body, "profile of VICTIM");
        for target in ["/api/m%65", "/api/me", "/api/%6De"] {
            let anonymous = get(app.addr, target, &[], "").await;
            assert_eq!(anonymous.body, "profile of anonymous", "{front:?} {target}");
        }
    }
}

#[tokio::test]
async fn an_encoded_separator_or_dot_segment_never_serves_a_private_page_to_others() {
    for front in FRONTS {
        let app = front.start("").await;
        for target in [
            "/static/..%2Fapi/me",
            "/static/..%2fapi/me",
            "/static/%2e%2e/api/me",
            "/static/..%5Capi/me",
            "/static/..;/api/me",
            "/static//../api/me",
            "/static/../api/me",
        ] {
            let victim = get(app.addr, target, &[VICTIM], "").await;
            assert_eq!(victim.body, "profile of VICTIM", "{front:?} {target}");
            let anonymous = get(app.addr, target, &[], "").await;
            assert_eq!(anonymous.body, "profile of anonymous", "{front:?} {target}");
        }
    }
}

#[tokio::test]
async fn a_method_override_never_plants_an_error() {
    for front in FRONTS {
        let app = front.start("").await;
        for name in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            get(app.addr, "/api/items/1", &[(name, "DELETE")], "").await;
            let victim = get(app.addr, "/api/items/1", &[], "").await;
            assert_eq!(
                (victim.status.as_u16(), victim.body.as_str()),
                (200, "item 1"),
                "{front:?} {name}"
            );
        }
    }
}

#[tokio::test]
async fn a_get_body_is_never_reflected_to_others() {
    for front in FRONTS {
        let app = front.start("").await;
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let attacker = get(app.addr, "/api/search", &form, "&q=<script>").await;
        assert_eq!(attacker.body, "results for <script>", "the origin read it");
        assert!(attacker.cache_status().contains("fwd=bypass"), "{front:?}");
        let victim = get(app.addr, "/api/search", &[], "").await;
        assert_eq!(victim.body, "results for ", "{front:?}");
    }
}

#[tokio::test]
async fn a_header_named_in_connection_never_plants_the_wrong_variant() {
    for front in FRONTS {
        let app = front.start("").await;
        let hop = [("accept-language", "de"), ("connection", "accept-language")];
        get(app.addr, "/api/page", &hop, "").await;
        let german = get(app.addr, "/api/page", &[("accept-language", "de")], "").await;
        assert!(
            german.body.starts_with("lang=de "),
            "{front:?}: {}",
            german.body
        );
        let default = get(app.addr, "/api/page", &[], "").await;
        assert!(
            default.body.starts_with("lang=en "),
            "{front:?}: {}",
            default.body
        );
    }
}

#[tokio::test]
async fn a_cookie_spelled_otherwise_never_plants_a_personal_page() {
    for front in FRONTS {
        let app = front.start("").await;
        for cookie in [
            "sessionid =ATTACKER",
            " sessionid=ATTACKER",
            "SESSIONID=ATTACKER",
            "sessionid=; sessionid=ATTACKER",
        ] {
            for path in ["/api/me", "/api/feed"] {
                get(app.addr, path, &[("cookie", cookie)], "").await;
                let victim = get(app.addr, path, &[], "").await;
                assert!(
                    victim.body.ends_with("anonymous"),
                    "{front:?} {cookie} {path}: {}",
                    victim.body
                );
            }
        }
    }
}

#[tokio::test]
async fn a_cookie_on_a_shared_rule_is_not_stored_for_everyone() {
    for front in FRONTS {
        let app = front.start("").await;
        let mine = get(app.addr, "/api/feed", &[VICTIM], "").await;
        assert_eq!(mine.body, "feed for VICTIM");
        assert!(
            mine.cache_status().contains("fwd=uri-miss"),
            "{front:?}: {}",
            mine.cache_status()
        );
        let anonymous = get(app.addr, "/api/feed", &[], "").await;
        assert_eq!(anonymous.body, "feed for anonymous", "{front:?}");
        let again = get(app.addr, "/api/feed", &[], "").await;
        assert!(
            again.cache_status().contains("hit"),
            "cookieless responses are shared"
        );
    }
}

#[tokio::test]
async fn a_long_target_never_plants_an_error() {
    for front in FRONTS {
        let app = front.start("").await;
        let ampersands = format!("/api/items/x?{}", "&".repeat(5_000));
        let attacker = get(app.addr, &ampersands, &[], "").await;
        assert_eq!(attacker.status.as_u16(), 414);
        let before = app.origin.calls();
        let again = get(app.addr, &ampersands, &[], "").await;
        assert_eq!(again.status.as_u16(), 414);
        assert_eq!(
            app.origin.calls(),
            before + 1,
            "{front:?}: an error is not stored"
        );
        let victim = get(app.addr, "/api/items/x", &[], "").await;
        assert_eq!(
            (victim.status.as_u16(), victim.body.as_str()),
            (200, "item x"),
            "{front:?}"
        );
        // Past `max_key_bytes`, the cache keeps nothing of it.
        let huge = format!("/api/items/y?{}", "q".repeat(9_000));
        let huge = get(app.addr, &huge, &[], "").await;
        assert!(
            huge.cache_status().contains("fwd=bypass"),
            "{front:?}: {}",
            huge.cache_status()
        );
    }
}

#[tokio::test]
async fn a_forwarded_host_never_reaches_the_origin_unkeyed() {
    let evil = [
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "host=evil.example"),
    ];
    // The proxy removes the client's own, with or without setting them itself.
    for extra in ["[proxy]\nforwarded_headers = false\n", ""] {
        let app = Front::Proxy.start(extra).await;
        let attacker = get(app.addr, "/api/page", &evil, "").await;
        assert!(!attacker.body.contains("evil"), "{}", attacker.body);
        let victim = get(app.addr, "/api/page", &[], "").await;
        assert!(!victim.body.contains("evil"), "{}", victim.body);
    }
    // An application behind a load balancer that passes it on lists it.
    let app = Front::Tower
        .start("[security]\nbypass_headers = [\"x-forwarded-host\", \"forwarded\", \"x-http-method-override\"]\n")
        .await;
    let attacker = get(app.addr, "/api/page", &evil, "").await;
    assert!(attacker.cache_status().contains("fwd=bypass"));
    let victim = get(app.addr, "/api/page", &[], "").await;
    assert!(!victim.body.contains("evil"), "{}", victim.body);
}

#[tokio::test]
async fn a_mutation_on_one_host_never_clears_another() {
    let app = Front::Proxy.start("").await;
    for host in ["a.example", "b.example"] {
        get(app.addr, "/api/feed", &[("host", host)], "").await;
    }
    let posted = send(
        app.addr,
        "POST",
        "/api/feed",
        &[("host", "A.example:80")],
        "",
    )
    .await;
    assert_eq!(posted.status.as_u16(), 204);
    let a = get(app.addr, "/api/feed", &[("host", "a.example")], "").await;
    assert!(
        a.cache_status().contains("fwd=uri-miss"),
        "{}",
        a.cache_status()
    );
    let b = get(app.addr, "/api/feed", &[("host", "b.example")], "").await;
    assert!(b.cache_status().contains("hit"), "{}", b.cache_status());
}
