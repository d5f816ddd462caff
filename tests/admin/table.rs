//! The shared table: the same requests, in order, against every mount, and
//! what each must answer. `{users}` in a target is the percent-encoded key
//! of `/api/users` as the mount's cache holds it.

use crate::client::send;
use crate::mounts::{self, Mount, TOKEN};
use cachet::admin::{Admin, AdminConfig};
use cachet::Cache;

#[derive(Debug, Clone, Copy)]
enum Token {
    Good,
    Wrong,
    Absent,
}

struct Step {
    method: &'static str,
    target: &'static str,
    token: Token,
    body: &'static str,
    status: u16,
    /// Fragments the body contains.
    contains: &'static [&'static str],
}

const fn step(
    method: &'static str,
    target: &'static str,
    status: u16,
    contains: &'static [&'static str],
) -> Step {
    Step {
        method,
        target,
        token: Token::Good,
        body: "",
        status,
        contains,
    }
}

const TABLE: &[Step] = &[
    Step {
        token: Token::Absent,
        ..step("GET", "/stats", 401, &["unauthorized"])
    },
    Step {
        token: Token::Wrong,
        ..step("GET", "/stats", 401, &["unauthorized"])
    },
    Step {
        token: Token::Absent,
        ..step("GET", "/", 200, &["id=\"caches\"", "sessionStorage"])
    },
    step(
        "GET",
        "/stats",
        200,
        &[
            "\"caches\"",
            "\"overall\"",
            "\"pages\"",
            "\"process_rss_bytes\"",
            "\"hit_rate\"",
        ],
    ),
    step("GET", "/health", 200, &["\"status\":\"ok\""]),
    step(
        "GET",
        "/metrics",
        200,
        &[
            "cachet_requests_total{cache=\"default\",status=\"miss\"} 2",
            "cachet_max_bytes{cache=\"pages\"} 8388608",
        ],
    ),
    step("GET", "/keys", 200, &["\"total\":3"]),
    step(
        "GET",
        "/keys?cache=pages",
        200,
        &["\"total\":1", "/pages/home"],
    ),
    step("GET", "/keys?cache=nope", 404, &["no cache named `nope`"]),
    step("GET", "/keys?pattern=(", 400, &["invalid pattern"]),
    step(
        "GET",
        "/keys?limit=1",
        200,
        &["\"next_cursor\":\"1\"", "\"total\":3"],
    ),
    step(
        "GET",
        "/keys?limit=1&cursor=2",
        200,
        &["\"next_cursor\":null"],
    ),
    step("GET", "/keys?limit=99999999", 200, &["\"total\":3"]),
    step("GET", "/keys?limit=lots", 400, &["whole number"]),
    step(
        "GET",
        "/keys/stats?pattern=%5E/api/",
        200,
        &[
            "\"default\":{\"bytes\":",
            "\"count\":2",
            "\"pages\":{\"bytes\":0,\"count\":0}",
        ],
    ),
    step("PUT", "/keys/{users}?ttl=5m", 200, &["\"touched\":1"]),
    step("PUT", "/keys/{users}?ttl=soon", 400, &["`ttl`"]),
    step("PUT", "/keys/{users}", 400, &["give a `ttl`"]),
    step("PUT", "/keys/%2Fnope?ttl=5m", 404, &["no such key"]),
    step("DELETE", "/keys/{users}", 200, &["\"deleted\":1"]),
    step("DELETE", "/keys/{users}", 404, &["no such key"]),
    step(
        "PUT",
        "/keys?pattern=%5E/api/&ttl=1h",
        200,
        &["\"touched\":1"],
    ),
    step("DELETE", "/keys", 400, &["give a `pattern`"]),
    Step {
        body: "{\"tags\":[\"items\"],\"uris\":[\"/nothing\"]}",
        ..step(
            "POST",
            "/purge",
            200,
            &["\"tags\":1", "\"uris\":0", "\"patterns\":0"],
        )
    },
    // Soft: the tag's entries made stale (none left here), counted apart.
    Step {
        body: "{\"tags\":[\"items\"],\"soft\":true}",
        ..step("POST", "/purge", 200, &["\"tags\":0"])
    },
    Step {
        body: "{\"patterns\":[\"(\"]}",
        ..step("POST", "/purge", 400, &["invalid pattern"])
    },
    Step {
        body: "tags=items",
        ..step("POST", "/purge", 400, &["the body must be"])
    },
    step("POST", "/dump", 409, &["no dump file is configured"]),
    step("GET", "/auto-dump", 200, &["\"running\":false"]),
    step(
        "PUT",
        "/auto-dump?interval=5m",
        409,
        &["no dump file is configured"],
    ),
    step("PUT", "/auto-dump?interval=soon", 400, &["`interval`"]),
    step("DELETE", "/caches/nope", 404, &["no cache named `nope`"]),
    step("DELETE", "/caches/pages", 200, &["\"cleared\":[\"pages\"]"]),
    step("GET", "/keys?cache=pages", 200, &["\"total\":0"]),
    step(
        "DELETE",
        "/caches",
        200,
        &["\"cleared\":[\"default\",\"pages\",\"values\"]"],
    ),
    step("GET", "/keys", 200, &["\"total\":0"]),
    step(
        "GET",
        "/metrics",
        200,
        &[
            "cachet_purges_total{kind=\"tag\"} 2",
            "cachet_soft_purges_total{kind=\"tag\"} 1",
            "cachet_soft_purges_total{kind=\"uri\"} 0",
            "cachet_purges_total{kind=\"clear\"} 2",
            "cachet_purges_total{kind=\"key\"} 2",
        ],
    ),
    step("POST", "/stats", 405, &["method not allowed"]),
    step("GET", "/nope", 404, &["no such endpoint"]),
];

/// Plays [`TABLE`] against `mount`, whose cache is `cache`.
async fn play(name: &str, mount: Mount, cache: &Cache) {
    mounts::fill(cache).await;
    let users = cache
        .keys()
        .await
        .unwrap()
        .into_iter()
        .find(|listed| listed.key.as_str().starts_with("/api/users"))
        .expect("filled")
        .key;
    let users =
        percent_encoding::utf8_percent_encode(users.as_str(), percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    for (index, step) in TABLE.iter().enumerate() {
        let target = format!("{}{}", mount.prefix, step.target.replace("{users}", &users));
        let token = match step.token {
            Token::Good => Some(TOKEN),
            Token::Wrong => Some("s3cret-admin-tokeN"),
            Token::Absent => None,
        };
        let reply = send(mount.addr, step.method, &target, token, step.body).await;
        let what = format!("{name} step {index}: {} {target}", step.method);
        assert_eq!(reply.status, step.status, "{what}: {}", reply.body);
        for fragment in step.contains {
            assert!(
                reply.body.contains(fragment),
                "{what}: no {fragment:?} in {}",
                reply.body
            );
        }
        assert_eq!(reply.headers["cache-control"], "no-store", "{what}");
        assert!(!reply.body.contains(TOKEN), "{what}: the token leaked");
        if reply.status == 401 {
            assert_eq!(
                reply.headers["www-authenticate"], "Bearer realm=\"cachet\"",
                "{what}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_service_answers_the_table() {
    let admin = mounts::admin(AdminConfig::new().token(TOKEN));
    let cache = admin.cache().clone();
    let mount = mounts::tower(admin).await;
    play("tower", mount, &cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actix_scope_answers_the_table() {
    let admin = mounts::admin(AdminConfig::new().token(TOKEN));
    let cache = admin.cache().clone();
    let mount = mounts::actix(admin);
    play("actix", mount, &cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_admin_listener_answers_the_table() {
    let variable = mounts::token_variable();
    let (mount, cache) = mounts::proxy(&format!("token_env = \"{variable}\"")).await;
    play("proxy", mount, &cache).await;
}

/// A read-only API answers its GET endpoints and refuses every mutation.
#[tokio::test]
async fn read_only_refuses_mutations() {
    let admin = mounts::admin(AdminConfig::new().token(TOKEN).read_only(true));
    let cache = admin.cache().clone();
    mounts::fill(&cache).await;
    let mount = mounts::tower(admin).await;
    for (method, target, body) in [
        ("DELETE", "/_cachet/caches", ""),
        ("DELETE", "/_cachet/caches/pages", ""),
        ("DELETE", "/_cachet/keys?pattern=.", ""),
        ("PUT", "/_cachet/keys?pattern=.&ttl=1h", ""),
        ("POST", "/_cachet/purge", "{\"tags\":[\"items\"]}"),
    ] {
        let reply = send(mount.addr, method, target, Some(TOKEN), body).await;
        assert_eq!(reply.status, 403, "{method} {target}: {}", reply.body);
    }
    assert_eq!(cache.keys().await.unwrap().len(), 3, "nothing was removed");
    let stats = send(mount.addr, "GET", "/_cachet/stats", Some(TOKEN), "").await;
    assert_eq!(stats.status, 200);
    assert!(stats.body.contains("\"read_only\":true"));
    // Credentials come first: without them, 401, not 403.
    let anonymous = send(mount.addr, "DELETE", "/_cachet/caches", None, "").await;
    assert_eq!(anonymous.status, 401);
}

/// Without a token, everything but the page is refused; `auth = "none"`
/// opens everything; `metrics_public` opens only the metrics.
#[tokio::test]
async fn authentication_modes() {
    let unset = mounts::tower(mounts::admin(AdminConfig::new())).await;
    for target in [
        "/_cachet/stats",
        "/_cachet/health",
        "/_cachet/metrics",
        "/_cachet/keys",
    ] {
        assert_eq!(
            send(unset.addr, "GET", target, Some("anything"), "")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        send(unset.addr, "GET", "/_cachet/", None, "").await.status,
        200
    );
    assert_eq!(
        send(unset.addr, "GET", "/_cachet", None, "").await.status,
        200
    );

    let open = mounts::tower(mounts::admin(AdminConfig::new().no_auth())).await;
    assert_eq!(
        send(open.addr, "GET", "/_cachet/stats", None, "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(open.addr, "DELETE", "/_cachet/caches", None, "")
            .await
            .status,
        200
    );

    let scraped = mounts::tower(mounts::admin(
        AdminConfig::new().token(TOKEN).metrics_public(true),
    ))
    .await;
    assert_eq!(
        send(scraped.addr, "GET", "/_cachet/metrics", None, "")
            .await
            .status,
        200
    );
    assert_eq!(
        send(scraped.addr, "GET", "/_cachet/stats", None, "")
            .await
            .status,
        401
    );
}

/// The health check reports a failing local store as 503, and a store that
/// serves without its remote tier as degraded (still 200).
#[tokio::test]
async fn health_reports_failing_and_degraded_stores() {
    use cachet::store::StoreError;
    use cachet::store::{Entry, Health, Store, StoreUsage};
    use cachet::CacheKey;

    #[derive(Debug)]
    struct Tiered {
        local_fails: bool,
    }

    #[async_trait::async_trait]
    impl Store for Tiered {
        async fn get(
            &self,
            _: &str,
            _: &CacheKey,
            _: std::time::SystemTime,
        ) -> Result<Option<Entry>, StoreError> {
            if self.local_fails {
                Err(StoreError::new("local store unavailable"))
            } else {
                Ok(None)
            }
        }
        async fn insert(&self, _: &str, _: &CacheKey, _: Entry) -> Result<(), StoreError> {
            Ok(())
        }
        async fn remove(&self, _: &str, _: &CacheKey) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn tagged(&self, _: &str, _: &str) -> Result<Vec<CacheKey>, StoreError> {
            Ok(Vec::new())
        }
        async fn keys(&self, _: &str) -> Result<Vec<CacheKey>, StoreError> {
            Ok(Vec::new())
        }
        async fn clear(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        fn usage(&self, _: &str) -> Option<StoreUsage> {
            Some(StoreUsage::default())
        }
        fn health(&self) -> Option<&dyn Health> {
            Some(self)
        }
    }

    #[async_trait::async_trait]
    impl Health for Tiered {
        async fn check(
            &self,
            cache: &str,
            now: std::time::SystemTime,
        ) -> Result<Option<String>, StoreError> {
            // The local tier serves, or not; the remote one is down.
            self.get(cache, &CacheKey::from_raw("probe"), now).await?;
            Ok(Some("redis at 127.0.0.1:6379: connection refused".into()))
        }
    }

    for (local_fails, status, fragment) in [
        (false, 200, "\"status\":\"degraded\""),
        (true, 503, "\"status\":\"failing\""),
    ] {
        let cache = Cache::builder()
            .store(std::sync::Arc::new(Tiered { local_fails }))
            .build()
            .unwrap();
        let mount = mounts::tower(Admin::new(cache, AdminConfig::new().token(TOKEN))).await;
        let reply = send(mount.addr, "GET", "/_cachet/health", Some(TOKEN), "").await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert!(reply.body.contains(fragment), "{}", reply.body);
    }
}

/// With a dump file, the API dumps now and runs the auto-dump.
#[tokio::test]
async fn dumps_and_the_auto_dump_through_the_api() {
    let dir = std::env::temp_dir().join(format!("cachet-admin-dump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dump");
    // Dumps restore under the secret they were sealed with.
    let secret = || cachet::Identity::default().secret("admin dump test");
    let cache = cachet::CacheBuilder::from_toml(mounts::RULES)
        .unwrap()
        .identity(secret())
        .build()
        .unwrap();
    let persistence = cachet::persistence::Persistence::new(
        &cache,
        cachet::persistence::PersistenceConfig::new().dump_file(&file),
    );
    mounts::fill(&cache).await;
    let admin = Admin::new(cache.clone(), AdminConfig::new().token(TOKEN)).persistence(persistence);
    let mount = mounts::tower(admin).await;
    let dumped = send(mount.addr, "POST", "/_cachet/dump", Some(TOKEN), "").await;
    assert_eq!(dumped.status, 200, "{}", dumped.body);
    assert!(dumped.body.contains("\"entries\":3"), "{}", dumped.body);
    assert!(file.exists());
    let started = send(
        mount.addr,
        "POST",
        "/_cachet/auto-dump?interval=1h",
        Some(TOKEN),
        "",
    )
    .await;
    assert!(
        started.body.contains("\"running\":true")
            && started.body.contains("\"interval_secs\":3600"),
        "{}",
        started.body
    );
    let changed = send(
        mount.addr,
        "PUT",
        "/_cachet/auto-dump?interval=10m",
        Some(TOKEN),
        "",
    )
    .await;
    assert!(
        changed.body.contains("\"interval_secs\":600"),
        "{}",
        changed.body
    );
    let stopped = send(mount.addr, "DELETE", "/_cachet/auto-dump", Some(TOKEN), "").await;
    assert!(
        stopped.body.contains("\"running\":false"),
        "{}",
        stopped.body
    );
    // A restore is explicit; `/stats` shows the last one's report.
    let stats = send(mount.addr, "GET", "/_cachet/stats", Some(TOKEN), "").await;
    assert!(
        stats.body.contains("\"last_restore\":null"),
        "{}",
        stats.body
    );
    let fresh = cachet::CacheBuilder::from_toml(mounts::RULES)
        .unwrap()
        .identity(secret())
        .build()
        .unwrap();
    let restoring = cachet::persistence::Persistence::new(
        &fresh,
        cachet::persistence::PersistenceConfig::new().dump_file(&file),
    );
    assert!(
        fresh.keys().await.unwrap().is_empty(),
        "building restores nothing"
    );
    assert_eq!(restoring.restore().restored, 3);
    let admin = Admin::new(fresh, AdminConfig::new().token(TOKEN)).persistence(restoring);
    let mount = mounts::tower(admin).await;
    let stats = send(mount.addr, "GET", "/_cachet/stats", Some(TOKEN), "").await;
    assert!(stats.body.contains("\"restored\":3"), "{}", stats.body);
    let _ = std::fs::remove_dir_all(&dir);
}
