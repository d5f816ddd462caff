//! Dumps and restores: every kind of entry comes back with its body,
//! headers and remaining freshness (the clock is injected); corrupt,
//! truncated, empty and foreign files fall back to the backup or to an
//! empty cache; a dump that cannot be written leaves the cache serving.

use cachet::adapter::{self, Begun, Route};
use cachet::clock::{Clock, MockClock};
use cachet::persistence::{Persistence, PersistenceConfig};
use cachet::{Cache, CacheBuilder, Identity};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "../crates/cachet-proxy/tests/common/forge.rs"]
mod forge;
use forge::forge;

const RULES: &str = r#"
[[rules]]
path = '^/plain$'
ttl = "1m"

[[rules]]
path = '^/vary$'
ttl = "1m"

[[rules]]
path = '^/tagged$'
ttl = "1m"

[[rules]]
path = '^/me$'
ttl = "1m"
vary_by_user = true

[[rules]]
path = '^/stale$'
ttl = "1m"
"#;

fn dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("cachet-persistence-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A cache with `RULES`; with `restore`, `file` restored into it first,
/// as a program does before serving.
fn cache(clock: &MockClock, identity: Identity, file: &Path, restore: bool) -> Cache {
    let cache = CacheBuilder::from_toml(RULES)
        .unwrap()
        .clock(clock.clone())
        .identity(identity)
        .build()
        .unwrap();
    if restore {
        persisted(&cache, file).restore();
    }
    cache
}

/// The persistence layer of `cache`, dumping to `file`.
fn persisted(cache: &Cache, file: &Path) -> Persistence {
    Persistence::new(cache, PersistenceConfig::new().dump_file(file))
}

fn request(path: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut req = http::Request::get(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(()).unwrap()
}

/// Sends `path` through the cache to an origin answering `body` with `headers`.
async fn fill(
    cache: &Cache,
    path: &str,
    req_headers: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &str,
) {
    let req = request(path, req_headers);
    let Route::Cache(plan) = adapter::route(cache, &req) else {
        panic!("{path} is cached")
    };
    let (headers, body): (Vec<(String, String)>, String) = (
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body.to_owned(),
    );
    let origin = move |_req: http::Request<()>| async move {
        let mut response = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        for (name, value) in &headers {
            response.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        Ok::<_, std::convert::Infallible>(response)
    };
    let response = adapter::serve(cache.clone(), plan.into(), origin, req)
        .await
        .unwrap()
        .0;
    let status = response.headers()["cache-status"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(status.ends_with("stored"), "{path}: {status}");
}

/// What the cache answers for `path`: the body, TTL and stored headers of a
/// hit from memory; otherwise "revalidate" or "miss", told apart by whether
/// the cache asks an origin (which fails, so nothing changes) for the
/// stored validator.
async fn look(
    cache: &Cache,
    path: &str,
    req_headers: &[(&str, &str)],
) -> (String, Option<Duration>, http::HeaderMap) {
    let req = request(path, req_headers);
    let Route::Cache(plan) = adapter::route(cache, &req) else {
        panic!("{path} is cached")
    };
    let miss = match adapter::begin(cache, plan, &req) {
        Begun::Hit(answer, _) => {
            let mut headers = answer.headers;
            let status = headers.remove("cache-status").unwrap();
            headers.remove("age");
            let ttl = status
                .to_str()
                .unwrap()
                .split("; ")
                .find_map(|param| param.strip_prefix("ttl="))
                .map(|secs| Duration::from_secs(secs.parse().unwrap()));
            return (
                String::from_utf8_lossy(&answer.body).into_owned(),
                ttl,
                headers,
            );
        }
        Begun::Miss(miss) => miss,
    };
    let origin = |req: http::Request<()>| {
        let conditional = req.headers().contains_key("if-none-match");
        async move { Err::<http::Response<http_body_util::Full<bytes::Bytes>>, _>(conditional) }
    };
    let label = match adapter::serve(cache.clone(), miss, origin, req).await {
        Err(true) => "revalidate",
        Err(false) => "miss",
        Ok(_) => panic!("{path}: the origin failed"),
    };
    (label.into(), None, http::HeaderMap::new())
}

/// The requests every round trip checks, and what the first cache answers.
const PROBES: &[(&str, &[(&str, &str)])] = &[
    ("/plain", &[]),
    ("/vary", &[("accept-language", "en")]),
    ("/vary", &[("accept-language", "fr")]),
    ("/tagged", &[]),
    ("/me", &[("authorization", "Bearer alice")]),
    ("/me", &[("authorization", "Bearer bob")]),
    ("/stale", &[]),
];

async fn filled(clock: &MockClock, file: &Path) -> Cache {
    let cache = cache(
        clock,
        Identity::default().secret("shared secret"),
        file,
        true,
    );
    fill(
        &cache,
        "/plain",
        &[],
        &[("content-type", "text/plain"), ("x-origin", "a")],
        "plain",
    )
    .await;
    for language in ["en", "fr"] {
        let headers = [("vary", "Accept-Language"), ("content-language", language)];
        fill(
            &cache,
            "/vary",
            &[("accept-language", language)],
            &headers,
            language,
        )
        .await;
    }
    fill(&cache, "/tagged", &[], &[("cache-tag", "group")], "tagged").await;
    for user in ["alice", "bob"] {
        let authorization = format!("Bearer {user}");
        let headers = [("cache-control", "private, max-age=60")];
        fill(
            &cache,
            "/me",
            &[("authorization", &authorization)],
            &headers,
            user,
        )
        .await;
    }
    let stale = [("cache-control", "max-age=10"), ("etag", "\"v1\"")];
    fill(&cache, "/stale", &[], &stale, "stale").await;
    cache
        .values()
        .set("report", &vec![1_u32, 2, 3], Duration::from_secs(60))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(20));
    cache
}

#[tokio::test]
async fn every_kind_of_entry_comes_back_as_it_was() {
    let dir = dir("round-trip");
    let file = dir.join("dump");
    let clock = MockClock::new();
    let before = filled(&clock, &file).await;
    let mut expected = Vec::new();
    for (path, headers) in PROBES {
        expected.push(look(&before, path, headers).await);
    }
    assert_eq!(
        expected[6].0, "revalidate",
        "the stale entry is kept for revalidation"
    );
    let report = persisted(&before, &file).dump(&file).unwrap();
    // 2 variants + their index, plain, tagged, 2 users, stale, 1 value.
    assert_eq!(report.entries, 9);

    // Another process, the same moment: the same answers.
    let again = MockClock::at(clock.now());
    let after = cache(
        &again,
        Identity::default().secret("shared secret"),
        &file,
        false,
    );
    let restored = persisted(&after, &file).restore_from(&file);
    assert_eq!(restored.restored, 9, "{restored:?}");
    assert_eq!(restored.file.as_deref(), Some(file.as_path()));
    for ((path, headers), expected) in PROBES.iter().zip(&expected) {
        assert_eq!(
            &look(&after, path, headers).await,
            expected,
            "{path} {headers:?}"
        );
    }
    let report: Option<Vec<u32>> = after.values().get("report").await.unwrap();
    assert_eq!(report, Some(vec![1, 2, 3]));
    assert_eq!(
        after.values().ttl("report").await.unwrap(),
        Some(Duration::from_secs(40))
    );
    assert_eq!(
        after.purge_tag("group").await.unwrap(),
        1,
        "tags come back indexed"
    );

    // Time goes on after the restore exactly as it would have before.
    again.advance(Duration::from_secs(30));
    assert_eq!(
        look(&after, "/plain", &[]).await.1,
        Some(Duration::from_secs(10))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A program restores before it sets up its adapter; a restored entry then
/// shares a prepared form of its headers between hits, as a stored one
/// does, counted in its weight from the hit that makes it.
#[tokio::test]
async fn restored_entries_share_a_prepared_form_once_hit() {
    let file = dir("prepared").join("dump");
    let clock = MockClock::new();
    let before = filled(&clock, &file).await;
    persisted(&before, &file).dump(&file).unwrap();
    let identity = Identity::default().secret("shared secret");
    let after = cache(&MockClock::at(clock.now()), identity, &file, true);
    adapter::prepare_answers(&after);
    let bytes = || after.stats().caches["default"].bytes;
    let restored = bytes();
    let req = request("/plain", &[]);
    let Route::Cache(plan) = adapter::route(&after, &req) else {
        panic!("cached")
    };
    let Begun::Hit(answer, _) = adapter::begin(&after, plan, &req) else {
        panic!("a hit")
    };
    let form = answer.prepared(|headers| headers.get("x-origin").cloned());
    assert_eq!(
        form.as_deref(),
        Some(&Some(http::HeaderValue::from_static("a")))
    );
    assert!(bytes() > restored, "the form is counted once made");
}

#[tokio::test]
async fn a_dump_verifies_only_under_its_secret_and_expired_entries_stay_out() {
    let dir = dir("secrets");
    let file = dir.join("dump");
    let clock = MockClock::new();
    persisted(&filled(&clock, &file).await, &file)
        .dump(&file)
        .unwrap();
    let at = |offset| MockClock::at(clock.now() + offset);
    // A random secret (another process) or another secret: refused whole,
    // shared entries too — the MACs are keyed from the secret.
    for identity in [
        Identity::default(),
        Identity::default().secret("another secret"),
    ] {
        let restored = persisted(&cache(&at(Duration::ZERO), identity, &file, false), &file)
            .restore_from(&file);
        assert_eq!(restored.restored, 0, "{restored:?}");
        assert!(
            restored.failures[0].contains("another identity secret"),
            "{restored:?}"
        );
    }
    let same = cache(
        &at(Duration::ZERO),
        Identity::default().secret("shared secret"),
        &file,
        false,
    );
    assert_eq!(persisted(&same, &file).restore_from(&file).restored, 9);
    // Past every entry's keep window (values for a minute, responses kept
    // as long as their validators allow): nothing comes back.
    let late = cache(
        &at(Duration::from_secs(3600)),
        Identity::default().secret("shared secret"),
        &file,
        false,
    );
    let restored = persisted(&late, &file).restore_from(&file);
    assert_eq!(
        (restored.restored, restored.expired),
        (0, 9),
        "{restored:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_dump_forged_without_the_secret_is_refused() {
    let dir = dir("forged");
    let file = dir.join("dump");
    let clock = MockClock::new();
    let cache = filled(&clock, &file).await;
    persisted(&cache, &file).dump(&file).unwrap();
    // The backup holds the same entries; forge both.
    persisted(&cache, &file).dump(&file).unwrap();
    forge(&file, b"plain", b"PWNED");
    forge(&dir.join("dump.bak"), b"plain", b"PWNED");
    let after = cache_at(&clock, &file);
    let restored = persisted(&after, &file).restore_from(&file);
    assert_eq!(restored.restored, 0, "{restored:?}");
    assert_eq!(restored.failures.len(), 2, "{restored:?}");
    assert!(
        restored.failures[0].contains("MAC does not verify"),
        "{restored:?}"
    );
    assert_eq!(
        look(&after, "/plain", &[]).await.0,
        "miss",
        "nothing forged is served"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dump files a damaged one is tried against.
fn damage(file: &Path, how: &str) {
    let mut bytes = std::fs::read(file).unwrap();
    match how {
        "corrupt" => {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
        }
        "truncated" => bytes.truncate(bytes.len() * 2 / 3),
        "empty" => bytes.clear(),
        "version" => bytes[9] = 99,
        _ => unreachable!(),
    }
    std::fs::write(file, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_dump_falls_back_to_its_backup_or_to_nothing() {
    for (how, reason) in [
        ("corrupt", "does not verify"),
        ("truncated", "truncated"),
        ("empty", "truncated: the file ends inside the header"),
        ("version", "format version 99"),
    ] {
        let dir = dir(how);
        let file = dir.join("dump");
        let clock = MockClock::new();
        let cache = filled(&clock, &file).await;
        let first = persisted(&cache, &file).dump(&file).unwrap();
        cache
            .values()
            .set("more", &1_u8, Duration::from_secs(60))
            .await
            .unwrap();
        let second = persisted(&cache, &file).dump(&file).unwrap();
        assert_eq!(second.entries, first.entries + 1);
        assert!(
            file.with_file_name("dump.bak").exists(),
            "the first dump is the backup"
        );
        damage(&file, how);

        let again = || cache_at(&clock, &file);
        let restored = persisted(&again(), &file).restore_from(&file);
        assert_eq!(
            restored.restored, first.entries,
            "{how}: the backup: {restored:?}"
        );
        assert_eq!(restored.file, Some(file.with_file_name("dump.bak")));
        assert_eq!(restored.failures.len(), 1, "{restored:?}");
        assert!(
            restored.failures[0].contains(reason),
            "{how}: {:?}",
            restored.failures
        );
        assert!(
            restored.failures[0].contains("at offset"),
            "{:?}",
            restored.failures
        );

        // Without a backup, nothing is restored and the cache starts empty.
        std::fs::remove_file(file.with_file_name("dump.bak")).unwrap();
        let empty = again();
        let restored = persisted(&empty, &file).restore_from(&file);
        assert_eq!(
            (restored.restored, restored.file.clone()),
            (0, None),
            "{restored:?}"
        );
        assert!(empty.keys().await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn cache_at(clock: &MockClock, file: &Path) -> Cache {
    cache(
        &MockClock::at(clock.now()),
        Identity::default().secret("shared secret"),
        file,
        false,
    )
}

#[tokio::test]
async fn a_dump_that_cannot_be_written_keeps_the_cache_serving() {
    let dir = dir("unwritable");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let file = not_a_dir.join("dump");
    let clock = MockClock::new();
    let cache = filled(&clock, &file).await;
    let error = persisted(&cache, &file).dump(&file).unwrap_err();
    assert!(error.to_string().contains("dump.tmp"), "{error}");
    assert_eq!(
        look(&cache, "/plain", &[]).await.0,
        "plain",
        "still serving"
    );
    // Nothing half-written is left behind, and building with the file
    // configured starts empty.
    assert!(!dir.join("dump.tmp").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_auto_dump_starts_changes_and_stops() {
    let dir = dir("auto");
    let file = dir.join("dump");
    let clock = MockClock::new();
    let cache = filled(&clock, &file).await;
    let persistence = persisted(&cache, &file);
    assert!(!persistence.auto_dump_status().running);
    tokio::time::pause();
    persistence
        .start_auto_dump(Duration::from_secs(60))
        .unwrap();
    let status = persistence.auto_dump_status();
    assert!(status.running && status.interval_secs == Some(60));
    persistence.start_auto_dump(Duration::from_secs(5)).unwrap();
    assert_eq!(persistence.auto_dump_status().interval_secs, Some(5));
    // Tokio's clock, paused, moves past the new interval at once; the dump
    // itself runs on a blocking thread, in real time.
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(6)).await;
    tokio::time::resume();
    for _ in 0..500 {
        if persistence.auto_dump_status().last.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = persistence.auto_dump_status().last.expect("a dump ran");
    assert_eq!(last.entries, 9);
    assert!(file.exists());
    assert!(persistence.stop_auto_dump());
    assert!(!persistence.auto_dump_status().running);
    assert!(!persistence.stop_auto_dump());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn environment_overrides_are_read_where_the_configuration_is_loaded() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let overrides = env(&[
        ("CACHET_DUMP_FILE", "/tmp/from-env"),
        ("CACHET_AUTO_DUMP_INTERVAL", "90s"),
        ("CACHET_MAX_BYTES", "32MiB"),
    ]);
    let config =
        cachet::Config::from_toml("[persistence]\ndump_file = '/tmp/from-toml'\n").unwrap();
    let persistence = config.persistence.env_overrides(overrides).unwrap();
    let cache = config
        .cache
        .env_overrides(overrides)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(persistence.file(), Some(Path::new("/tmp/from-env")));
    assert_eq!(persistence.interval(), Some(Duration::from_secs(90)));
    assert_eq!(cache.caches()["default"].max_bytes, 32 * 1024 * 1024);
    for (variable, value) in [
        ("CACHET_MAX_BYTES", "a lot"),
        ("CACHET_AUTO_DUMP_INTERVAL", "soon"),
        ("CACHET_DUMP_FILE", " "),
    ] {
        let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(variable, value)]));
        let error = match variable {
            "CACHET_MAX_BYTES" => CacheBuilder::from_toml("")
                .unwrap()
                .env_overrides(env(pairs))
                .unwrap_err(),
            _ => PersistenceConfig::new()
                .env_overrides(env(pairs))
                .unwrap_err(),
        };
        assert!(
            error
                .to_string()
                .starts_with(&format!("environment variable `{variable}`")),
            "{error}"
        );
    }
}

/// Dumps to one file take turns (the auto-dump, `POST /dump` and the
/// shutdown dump share its temporary file): none fails for the others.
#[tokio::test]
async fn concurrent_dumps_take_turns() {
    let dir = dir("concurrent");
    let file = dir.join("dump");
    let clock = MockClock::new();
    let cache = filled(&clock, &file).await;
    // One persistence layer per cache, cloned: its clones share the turn.
    let persistence = persisted(&cache, &file);
    let dumps: Vec<_> = (0..4)
        .map(|_| {
            let (persistence, file) = (persistence.clone(), file.clone());
            std::thread::spawn(move || persistence.dump(&file))
        })
        .collect();
    for dump in dumps {
        assert_eq!(dump.join().unwrap().unwrap().entries, 9);
    }
    let restored = persisted(&cache_at(&clock, &file), &file).restore_from(&file);
    assert_eq!(restored.restored, 9);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A dump large enough for many blocks, written by several threads at
/// once (each walking parts of the caches): every entry comes back once,
/// whole.
#[tokio::test]
async fn a_dump_of_many_blocks_brings_every_entry_back() {
    let dir = dir("many-blocks");
    let file = dir.join("dump");
    let clock = MockClock::new();
    let cache = filled(&clock, &file).await;
    let items: Vec<(String, String)> = (0..4000)
        .map(|n| (format!("item:{n}"), format!("{n:0>200}")))
        .collect();
    cache
        .values()
        .set_many(items.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    let dumped = persisted(&cache, &file).dump(&file).unwrap();
    assert_eq!(dumped.entries, 4009);
    assert!(dumped.bytes > 3 * 256 * 1024, "{} bytes", dumped.bytes);
    let fresh = cache_at(&clock, &file);
    let restored = persisted(&fresh, &file).restore_from(&file);
    assert_eq!((restored.restored, restored.failures.len()), (4009, 0));
    let keys: Vec<&str> = items.iter().map(|(key, _)| key.as_str()).collect();
    let back: std::collections::HashMap<String, String> =
        fresh.values().get_many(&keys).await.unwrap();
    assert_eq!(back.len(), items.len());
    for (key, value) in &items {
        assert_eq!(&back[key], value, "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
