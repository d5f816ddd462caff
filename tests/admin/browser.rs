//! The dashboard in a real browser: `cachet-proxy`'s admin listener serves
//! the page, headless Chromium runs its script, and the rendered DOM must
//! show a chart and live numbers. Needs `chromium` (feature
//! `external-tests`; `.ci/run` installs it).

use crate::mounts;
use cachet::adapter::{self, Begun, Route};
use std::process::Command;

/// Runs headless Chromium on `url` with `extra` arguments; its stdout.
fn chromium(url: &str, extra: &[&str]) -> String {
    let binary = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect("a Chromium on the PATH (apt-get install -y chromium)");
    let output = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            // Virtual time: the page's two-second polls run without waiting.
            "--virtual-time-budget=9000",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value of attribute `name` on the first tag of `dom` that contains `marker`.
fn attribute<'a>(dom: &'a str, marker: &str, name: &str) -> Option<&'a str> {
    let start = dom.find(marker)?;
    let tag_start = dom[..start].rfind('<')?;
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>')?];
    let value = &tag[tag.find(&format!(" {name}=\""))? + name.len() + 3..];
    Some(&value[..value.find('"')?])
}

/// The text inside the first element of `dom` that contains `marker` in its tag.
fn text<'a>(dom: &'a str, marker: &str) -> Option<&'a str> {
    let start = dom.find(marker)?;
    let open = start + dom[start..].find('>')? + 1;
    Some(&dom[open..open + dom[open..].find('<')?])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_live_figures_in_chromium() {
    let (mount, cache) = mounts::proxy("auth = \"none\"").await;
    mounts::fill(&cache).await;
    // One hit, so that the hit rate is not zero.
    let req = http::Request::get("/api/items")
        .header("host", "example.test")
        .body(())
        .unwrap();
    let Route::Cache(plan) = adapter::route(&cache, &req) else {
        panic!("cached")
    };
    assert!(matches!(adapter::begin(&cache, plan, &req), Begun::Hit(..)));

    let url = format!("http://{}/", mount.addr);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&url, &["--dump-dom"])
    })
    .await
    .unwrap();

    let points: usize = attribute(&dom, "class=\"chart\" viewBox", "data-points")
        .unwrap_or_else(|| panic!("no chart in {dom}"))
        .parse()
        .unwrap();
    assert!(points >= 2, "the chart has {points} point(s): {dom}");
    let line = attribute(&dom, "class=\"hit\"", "points").expect("a hit-rate line");
    assert_eq!(line.split(' ').count(), points, "{line}");
    let hit_rate = text(&dom, "class=\"hit-rate\" data-cache=\"default\"").expect("the hit rate");
    assert_eq!(hit_rate, "33.3 %", "one hit, two misses");
    let entries = text(&dom, "class=\"entries\" data-cache=\"pages\"").expect("entries");
    assert_eq!(entries, "1");
    assert_ne!(text(&dom, "id=\"rss\"").expect("the RSS"), "–");
    // auth = "none" is not read-only: the clear buttons are there.
    assert!(dom.contains("Clear pages"), "{dom}");

    let shot = std::env::temp_dir().join(format!("cachet-dashboard-{}.png", std::process::id()));
    let argument = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || chromium(&url, &[&argument, "--window-size=1280,900"]))
        .await
        .unwrap();
    let size = std::fs::metadata(&shot).expect("a screenshot").len();
    assert!(size > 10_000, "{size} bytes");
    println!("dashboard screenshot: {}", shot.display());
}

/// A read-only API's page offers no mutation: no clear buttons, no
/// "Delete matching".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_dashboard_offers_no_mutations() {
    let (mount, cache) = mounts::proxy("auth = \"none\"\nread_only = true").await;
    mounts::fill(&cache).await;
    let url = format!("http://{}/", mount.addr);
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &["--dump-dom"]))
        .await
        .unwrap();
    assert!(dom.contains("data-points="), "the page rendered: {dom}");
    assert!(!dom.contains("Clear pages"), "{dom}");
    let purge = dom.find("id=\"purge\"").expect("the purge button");
    let tag = &dom[dom[..purge].rfind('<').unwrap()..purge + dom[purge..].find('>').unwrap()];
    assert!(tag.contains("hidden"), "{tag}");
}
