//! The table: every behaviour both adapters must share, as scenarios.

use crate::table::{expect, get, req, Scenario, Step, Step::*};
use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);

const STORED: &str = "cachet; fwd=uri-miss; fwd-status=200; stored";

fn send(req: crate::table::Req, expect: crate::table::Expect) -> Step {
    Send(req, expect)
}

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "miss then hit, Age and ttl from the mock clock; no rule, no cache",
            rules: "[[rules]]\npath = '^/api/'\nttl = \"60s\"\n",
            steps: vec![
                send(get("/api/items"), expect(200).body("GET /api/items #1").cache(STORED)),
                send(
                    get("/api/items"),
                    expect(200)
                        .body("GET /api/items #1")
                        .cache("cachet; hit; ttl=60")
                        .header("age", "0")
                        .header("content-length", "17"),
                ),
                Advance(10 * SECOND),
                send(
                    get("/api/items"),
                    expect(200).cache("cachet; hit; ttl=50").header("age", "10"),
                ),
                Calls(1),
                send(get("/elsewhere"), expect(200).body("GET /elsewhere #2").no_header("cache-status")),
                send(get("/elsewhere"), expect(200).body("GET /elsewhere #3")),
            ],
        },
        Scenario {
            name: "vary by user: one entry per Authorization, a shared one without",
            rules: "[[rules]]\npath = '^/api/me$'\nvary_by_user = true\n\n[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(alice(get("/api/me")), expect(200).body("GET /api/me #1 authorization=alice").cache(STORED)),
                send(bob(get("/api/me")), expect(200).body("GET /api/me #2 authorization=bob").cache(STORED)),
                send(alice(get("/api/me")), expect(200).body("GET /api/me #1 authorization=alice").cache("cachet; hit; ttl=300")),
                send(bob(get("/api/me")), expect(200).body("GET /api/me #2 authorization=bob")),
                send(get("/api/me").header("x-echo", "authorization"), expect(200).body("GET /api/me #3 authorization=-")),
                send(get("/api/me").header("x-echo", "authorization"), expect(200).body("GET /api/me #3 authorization=-")),
                Calls(3),
                // A rule without vary_by_user does not store a response to
                // a request with credentials (RFC 9111 §3.5).
                send(alice(get("/api/shared")), expect(200).body("GET /api/shared #4 authorization=alice").cache("cachet; fwd=uri-miss; fwd-status=200")),
                send(bob(get("/api/shared")), expect(200).body("GET /api/shared #5 authorization=bob")),
            ],
        },
        Scenario {
            name: "vary by method, and HEAD answered from the GET entry",
            rules: "[[rules]]\npath = '^/api/doc$'\nvary_by_method = false\n\n[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/doc"), expect(200).body("GET /api/doc #1").cache(STORED)),
                send(
                    req("HEAD", "/api/doc"),
                    expect(200).body("").cache("cachet; hit; ttl=300").header("content-length", "15"),
                ),
                Calls(1),
                send(req("HEAD", "/api/page"), expect(200).body("")),
                send(get("/api/page"), expect(200).body("GET /api/page #3").cache(STORED)),
                send(get("/api/page"), expect(200).body("GET /api/page #3").cache("cachet; hit; ttl=300")),
                Calls(3),
                // With vary_by_method too, a stored GET answers a HEAD (RFC 9111 §4),
                // with its Content-Length and no body.
                send(get("/api/both"), expect(200).body("GET /api/both #4").cache(STORED)),
                send(req("HEAD", "/api/both"), expect(200).body("").cache("cachet; hit; ttl=300").header("content-length", "16")),
                Calls(4),
                // Both entries exist for /api/page: the GET entry answers.
                send(req("HEAD", "/api/page"), expect(200).body("").cache("cachet; hit; ttl=300")),
                Calls(4),
            ],
        },
        Scenario {
            name: "queries are keyed exactly as received by default",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/search?b=2&a=1"), expect(200).body("GET /api/search #1").cache(STORED)),
                send(get("/api/search?a=1&b=2"), expect(200).body("GET /api/search #2").cache(STORED)),
                send(get("/api/search?b=2&a=1"), expect(200).body("GET /api/search #1").cache("cachet; hit; ttl=300")),
                send(get("/api/search?&b=2&a=1"), expect(200).body("GET /api/search #3").cache(STORED)),
                Calls(3),
            ],
        },
        Scenario {
            name: "normalize_query: parameter order does not matter, values do",
            rules: "[[rules]]\npath = '^/api/'\nnormalize_query = true\n",
            steps: vec![
                send(get("/api/search?b=2&a=1"), expect(200).body("GET /api/search #1").cache(STORED)),
                send(get("/api/search?a=1&b=2"), expect(200).body("GET /api/search #1").cache("cachet; hit; ttl=300")),
                send(get("/api/search?a=1&b=3"), expect(200).body("GET /api/search #2").cache(STORED)),
                Calls(2),
            ],
        },
        Scenario {
            name: "Vary variants: one entry per Accept-Language",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(lang("en"), expect(200).body("GET /api/lang #1 accept-language=en").cache(STORED).header("vary", "accept-language")),
                send(lang("fr"), expect(200).body("GET /api/lang #2 accept-language=fr").cache("cachet; fwd=vary-miss; fwd-status=200; stored")),
                send(lang("en"), expect(200).body("GET /api/lang #1 accept-language=en").cache("cachet; hit; ttl=300")),
                send(lang("fr"), expect(200).body("GET /api/lang #2 accept-language=fr").cache("cachet; hit; ttl=300")),
                Calls(2),
                // Equivalent spellings share a variant, and the origin receives
                // the canonical one the key holds.
                send(lang("EN-us, fr;q=0.50"), expect(200).body("GET /api/lang #3 accept-language=en-us, fr;q=0.5").cache("cachet; fwd=vary-miss; fwd-status=200; stored")),
                send(lang("en-US,fr;q=0.5"), expect(200).body("GET /api/lang #3 accept-language=en-us, fr;q=0.5").cache("cachet; hit; ttl=300")),
                send(lang("fr;q=0.5, en-us"), expect(200).body("GET /api/lang #3 accept-language=en-us, fr;q=0.5")),
                // Within one weight, order is a preference: another variant.
                send(lang("fr, en"), expect(200).body("GET /api/lang #4 accept-language=fr, en")),
                Calls(4),
            ],
        },
        Scenario {
            name: "invalidation on POST, PUT, PATCH and DELETE; not after a failure",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: ["POST", "PUT", "PATCH", "DELETE"]
                .into_iter()
                .enumerate()
                .flat_map(|(round, method)| {
                    let n = round * 2;
                    vec![
                        send(get("/api/items"), expect(200).body(&format!("GET /api/items #{}", n + 1)).cache(STORED)),
                        send(req(method, "/api/items"), expect(200).body(&format!("{method} /api/items #{}", n + 2)).cache("cachet; fwd=method")),
                    ]
                })
                .chain([
                    send(get("/api/items"), expect(200).body("GET /api/items #9").cache(STORED)),
                    send(req("PUT", "/api/items").header("x-status", "500"), expect(500)),
                    send(get("/api/items"), expect(200).body("GET /api/items #9").cache("cachet; hit; ttl=300")),
                    Calls(10),
                ])
                .collect(),
        },
        Scenario {
            name: "invalidation scoped to the user",
            rules: "[[rules]]\npath = '^/api/me$'\nvary_by_user = true\ninvalidate_scope = \"user\"\n",
            steps: vec![
                send(alice(get("/api/me")), expect(200).body("GET /api/me #1 authorization=alice")),
                send(bob(get("/api/me")), expect(200).body("GET /api/me #2 authorization=bob")),
                send(alice(req("DELETE", "/api/me")), expect(200).body("DELETE /api/me #3 authorization=alice")),
                send(alice(get("/api/me")), expect(200).body("GET /api/me #4 authorization=alice").cache(STORED)),
                send(bob(get("/api/me")), expect(200).body("GET /api/me #2 authorization=bob").cache("cachet; hit; ttl=300")),
            ],
        },
        Scenario {
            name: "tags: a mutation's Cache-Tag clears the entries tagged with it",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/a").header("x-respond-cache-tag", "t1"), expect(200).body("GET /api/a #1").cache(STORED)),
                send(get("/api/b").header("x-respond-cache-tag", "t1, t2"), expect(200).body("GET /api/b #2")),
                send(get("/api/c").header("x-respond-cache-tag", "t2"), expect(200).body("GET /api/c #3")),
                send(req("POST", "/api/elsewhere").header("x-respond-cache-tag", "t1"), expect(200)),
                send(get("/api/a"), expect(200).body("GET /api/a #5").cache(STORED)),
                send(get("/api/b"), expect(200).body("GET /api/b #6").cache(STORED)),
                send(get("/api/c"), expect(200).body("GET /api/c #3").cache("cachet; hit; ttl=300")),
            ],
        },
        Scenario {
            name: "304 on If-None-Match, from a hit and from a miss",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(
                    get("/api/cond").header("x-etag", "\"v1\"").header("if-none-match", "\"v1\""),
                    expect(304).body("").cache(STORED).header("etag", "\"v1\""),
                ),
                send(get("/api/cond").header("if-none-match", "\"v1\""), expect(304).body("").cache("cachet; hit; ttl=300").header("etag", "\"v1\"")),
                send(get("/api/cond").header("if-none-match", "\"v0\", W/\"v1\""), expect(304).body("")),
                send(get("/api/cond").header("if-none-match", "\"v0\""), expect(200).body("GET /api/cond #1").header("etag", "\"v1\"")),
                Calls(1),
            ],
        },
        Scenario {
            name: "Cache-Status for bypasses, client directives, only-if-cached and errors",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/items").header("upgrade", "websocket"), expect(200).cache("cachet; fwd=bypass")),
                send(get("/api/items"), expect(200).body("GET /api/items #2").cache(STORED)),
                send(get("/api/items").header("cache-control", "no-cache"), expect(200).body("GET /api/items #3").cache("cachet; fwd=request; fwd-status=200; stored")),
                send(get("/api/items").header("cache-control", "max-age=0"), expect(200).body("GET /api/items #4")),
                send(get("/api/cold").header("cache-control", "only-if-cached"), expect(504).cache("cachet; detail=\"only-if-cached\"")),
                send(get("/api/error").header("x-status", "503"), expect(503).cache("cachet; fwd=uri-miss; fwd-status=503")),
                Calls(5),
            ],
        },
        Scenario {
            name: "Set-Cookie, private and no-store are never shared",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/cookie").header("x-respond-set-cookie", "session=alice"), expect(200).body("GET /api/cookie #1").header("set-cookie", "session=alice")),
                send(get("/api/cookie"), expect(200).body("GET /api/cookie #2").no_header("set-cookie")),
                send(get("/api/private").header("x-respond-cache-control", "private"), expect(200).body("GET /api/private #3")),
                send(get("/api/private"), expect(200).body("GET /api/private #4")),
                send(get("/api/nostore").header("x-respond-cache-control", "no-store"), expect(200).body("GET /api/nostore #5")),
                send(get("/api/nostore"), expect(200).body("GET /api/nostore #6")),
                Calls(6),
            ],
        },
        Scenario {
            name: "stale-while-revalidate: stale at once, one refresh in the background",
            rules: "[[rules]]\npath = '^/api/'\nttl = \"10s\"\nstale_while_revalidate = \"30s\"\n",
            steps: vec![
                send(get("/api/news"), expect(200).body("GET /api/news #1")),
                Advance(15 * SECOND),
                send(get("/api/news"), expect(200).body("GET /api/news #1").header("age", "15").cache("cachet; hit; fwd=stale; ttl=-5; detail=stale-while-revalidate")),
                send(get("/api/news"), expect(200).body("GET /api/news #1")),
                Settle,
                Calls(2),
                send(get("/api/news"), expect(200).body("GET /api/news #2").cache("cachet; hit; ttl=10")),
            ],
        },
        Scenario {
            name: "stale-if-error: the stale entry answers an origin error",
            rules: "[[rules]]\npath = '^/api/'\nttl = \"10s\"\nstale_if_error = \"60s\"\n",
            steps: vec![
                send(get("/api/news"), expect(200).body("GET /api/news #1")),
                Advance(15 * SECOND),
                send(get("/api/news").header("x-status", "503"), expect(200).body("GET /api/news #1").cache("cachet; fwd=stale; fwd-status=503; ttl=-5; detail=stale-if-error")),
                send(get("/api/news"), expect(200).body("GET /api/news #3").cache("cachet; fwd=stale; fwd-status=200; stored")),
                Calls(3),
            ],
        },
        Scenario {
            name: "revalidation: a stale entry with an ETag is revalidated, 304 refreshes it",
            rules: "[[rules]]\npath = '^/api/'\nttl = \"10s\"\n",
            steps: vec![
                send(get("/api/cond").header("x-etag", "\"v1\""), expect(200).body("GET /api/cond #1").cache(STORED)),
                Advance(15 * SECOND),
                send(get("/api/cond").header("x-etag", "\"v1\""), expect(200).body("GET /api/cond #1").cache("cachet; fwd=stale; fwd-status=304; stored")),
                send(get("/api/cond"), expect(200).body("GET /api/cond #1").cache("cachet; hit; ttl=10")),
                Advance(15 * SECOND),
                send(get("/api/cond").header("x-etag", "\"v2\""), expect(200).body("GET /api/cond #3").cache("cachet; fwd=stale; fwd-status=200; stored")),
                Calls(3),
            ],
        },
        Scenario {
            name: "coalescing: concurrent misses make one origin call",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                Together(20, get("/api/slow").header("x-delay-ms", "100"), expect(200).body("GET /api/slow #1")),
                Calls(1),
            ],
        },
        Scenario {
            name: "large bodies pass through whole; small streamed ones are stored",
            rules: "[[rules]]\npath = '^/api/'\nmax_body = \"1KiB\"\n",
            steps: vec![
                send(get("/api/big").header("x-body-bytes", "4096"), expect(200).body_len(4096).header("content-length", "4096")),
                send(get("/api/big").header("x-body-bytes", "4096"), expect(200).body_len(4096)),
                send(get("/api/stream").header("x-stream-bytes", "100000"), expect(200).body_len(100000)),
                send(get("/api/stream").header("x-stream-bytes", "100000"), expect(200).body_len(100000)),
                Calls(4),
                // Streamed to the client, stored at its end.
                send(get("/api/little").header("x-stream-bytes", "512"), expect(200).body_len(512).cache("cachet; fwd=uri-miss; fwd-status=200")),
                send(get("/api/little"), expect(200).body_len(512).cache("cachet; hit; ttl=300").header("content-length", "512")),
                Calls(5),
            ],
        },
        Scenario {
            name: "bad header values are ignored, never a failure",
            rules: "[[rules]]\npath = '^/api/me$'\nvary_by_user = true\n\n[[rules]]\npath = '^/api/'\nvary_headers = [\"Accept-Language\"]\n",
            steps: vec![
                send(get("/api/items").header("cache-control", "max-age=abc, ,,=, no-cache=\"x"), expect(200).body("GET /api/items #1")),
                send(get("/api/items").header("if-none-match", "W/\"").header("if-modified-since", "yesterday"), expect(200).body("GET /api/items #1")),
                send(get("/api/items").raw_header("accept-language", b"\xff\xfe"), expect(200).body("GET /api/items #2")),
                send(get("/api/items").raw_header("accept-language", b"\xff\xfe"), expect(200).body("GET /api/items #2")),
                send(get("/api/me").raw_header("authorization", b"Bearer \xff"), expect(200).body("GET /api/me #3")),
                send(get("/api/me"), expect(200).body("GET /api/me #4")),
                send(get("/api/items").header("x-respond-cache-control", "max-age=-1, s-maxage=\"3"), expect(200)),
            ],
        },
        Scenario {
            name: "Range from a stored response: 206, suffix, open-ended, 416, If-Range, several ranges (RFC 9110 §14)",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                // A miss with Range asks the origin for the whole (it sees no
                // Range), stores it, and answers the range from it.
                send(get("/api/fill").header("range", "bytes=0-2").header("x-echo", "range"), expect(206).body("GET").header("content-range", "bytes 0-2/24").cache(STORED)),
                send(get("/api/fill"), expect(200).body("GET /api/fill #1 range=-").cache("cachet; hit; ttl=300")),
                send(get("/api/file").header("range", "bytes=0-2").header("if-range", "\"v0\"").header("x-etag", "\"v1\""), expect(200).body("GET /api/file #2").cache(STORED)),
                send(get("/api/file").header("range", "bytes=0-2"), expect(206).body("GET").header("content-range", "bytes 0-2/16").header("content-length", "3").cache("cachet; hit; ttl=300")),
                send(get("/api/file").header("range", "bytes=-2"), expect(206).body("#2").header("content-range", "bytes 14-15/16")),
                send(get("/api/file").header("range", "bytes=4-"), expect(206).body("/api/file #2").header("content-range", "bytes 4-15/16")),
                send(get("/api/file").header("range", "bytes=16-"), expect(416).body("").header("content-range", "bytes */16")),
                send(get("/api/file").header("range", "bytes=0-2").header("if-range", "\"v1\""), expect(206).body("GET")),
                send(get("/api/file").header("range", "bytes=0-2").header("if-range", "\"v0\""), expect(200).body("GET /api/file #2")),
                send(get("/api/file").header("range", "bytes=0-2, 4-5"), expect(200).body("GET /api/file #2")),
                send(get("/api/file").header("range", "lines=1-2"), expect(200).body("GET /api/file #2")),
                // Only a GET has ranges: a HEAD gets the whole head, from the GET entry.
                send(req("HEAD", "/api/file").header("range", "bytes=0-2"), expect(200).body("").header("content-length", "16")),
                Calls(2),
            ],
        },
        Scenario {
            name: "Cache Groups: a response's Cache-Group-Invalidation clears its origin's groups (RFC 9875)",
            rules: "[[rules]]\npath = '^/api/'\n",
            steps: vec![
                send(get("/api/a").header("x-respond-cache-groups", "\"g1\""), expect(200).body("GET /api/a #1").cache(STORED).header("cache-groups", "\"g1\"")),
                send(get("/api/b").header("x-respond-cache-groups", "\"g1\", \"g 2\""), expect(200).body("GET /api/b #2").cache(STORED)),
                send(get("/api/c").header("x-respond-cache-groups", "\"g 2\""), expect(200).body("GET /api/c #3").cache(STORED)),
                send(get("/api/d").header("x-respond-cache-groups", "\"g1"), expect(200).body("GET /api/d #4").cache(STORED)),
                // Malformed: ignored, never an error; nothing else is cleared.
                send(req("POST", "/api/other").header("x-respond-cache-group-invalidation", "\"g1\",,"), expect(200).body("POST /api/other #5")),
                send(get("/api/a"), expect(200).body("GET /api/a #1")),
                // Another origin's groups are other groups.
                send(req("POST", "/api/other").header("host", "elsewhere.example").header("x-respond-cache-group-invalidation", "\"g1\""), expect(200).body("POST /api/other #6")),
                send(get("/api/a"), expect(200).body("GET /api/a #1")),
                send(req("POST", "/api/other").header("x-respond-cache-group-invalidation", "\"g1\""), expect(200).body("POST /api/other #7")),
                send(get("/api/a"), expect(200).body("GET /api/a #8").cache(STORED)),
                send(get("/api/b"), expect(200).body("GET /api/b #9").cache(STORED)),
                send(get("/api/c"), expect(200).body("GET /api/c #3").cache("cachet; hit; ttl=300")),
                // A malformed Cache-Groups put /api/d in no group.
                send(get("/api/d"), expect(200).body("GET /api/d #4")),
                // Not after a failure (RFC 9111 §4.4).
                send(req("POST", "/api/other").header("x-status", "500").header("x-respond-cache-group-invalidation", "\"g 2\""), expect(500)),
                send(get("/api/c"), expect(200).body("GET /api/c #3")),
                Calls(10),
            ],
        },
        Scenario {
            name: "targeted cache control: cachet's own field, then CDN-Cache-Control, decide over Cache-Control and Expires (RFC 9213)",
            rules: "[headers]\ntarget = \"Cachet-Cache-Control\"\n\n[[rules]]\npath = '^/api/'\nttl = \"300s\"\n",
            steps: vec![
                // CDN-Cache-Control stores what Cache-Control and Expires forbid;
                // the client sees both fields unchanged.
                send(
                    get("/api/cdn").header("x-respond-cache-control", "no-store").header("x-respond-expires", "0").header("x-respond-cdn-cache-control", "max-age=60"),
                    expect(200).body("GET /api/cdn #1").cache(STORED).header("cache-control", "no-store").header("cdn-cache-control", "max-age=60"),
                ),
                send(get("/api/cdn"), expect(200).body("GET /api/cdn #1").cache("cachet; hit; ttl=60").header("cache-control", "no-store")),
                // ...and forbids what Cache-Control allows.
                send(
                    get("/api/cdn-no-store").header("x-respond-cache-control", "max-age=600").header("x-respond-cdn-cache-control", "no-store"),
                    expect(200).cache("cachet; fwd=uri-miss; fwd-status=200"),
                ),
                send(get("/api/cdn-no-store"), expect(200).body("GET /api/cdn-no-store #3")),
                // cachet's own field wins over CDN-Cache-Control and never reaches the client.
                send(
                    get("/api/own").header("x-respond-cdn-cache-control", "no-store").header("x-respond-cachet-cache-control", "max-age=30"),
                    expect(200).body("GET /api/own #4").cache(STORED).header("cdn-cache-control", "no-store").no_header("cachet-cache-control"),
                ),
                send(get("/api/own"), expect(200).body("GET /api/own #4").cache("cachet; hit; ttl=30").no_header("cachet-cache-control")),
                // An invalid targeted field is ignored: Cache-Control decides.
                send(
                    get("/api/bad").header("x-respond-cache-control", "max-age=20").header("x-respond-cdn-cache-control", "max-age=\"60"),
                    expect(200).body("GET /api/bad #5").cache(STORED),
                ),
                send(get("/api/bad"), expect(200).cache("cachet; hit; ttl=20")),
                // The stale extensions come from the targeted field too.
                send(
                    get("/api/swr").header("x-respond-cache-control", "max-age=600, must-revalidate").header("x-respond-cdn-cache-control", "max-age=10, stale-if-error=60"),
                    expect(200).body("GET /api/swr #6").cache(STORED),
                ),
                Advance(20 * SECOND),
                send(get("/api/swr").header("x-status", "500"), expect(200).body("GET /api/swr #6")),
                Calls(7),
            ],
        },
    ]
}

fn alice(req: crate::table::Req) -> crate::table::Req {
    req.header("authorization", "alice")
        .header("x-echo", "authorization")
}

fn bob(req: crate::table::Req) -> crate::table::Req {
    req.header("authorization", "bob")
        .header("x-echo", "authorization")
}

fn lang(lang: &str) -> crate::table::Req {
    get("/api/lang")
        .header("accept-language", lang)
        .header("x-echo", "accept-language")
        .header("x-respond-vary", "accept-language")
}
