//! Dump and restore timings and memory: one million small entries, and
//! 100,000 entries of 1 KiB, written to a dump file and read back into a
//! fresh cache, in a new process as after a restart. Peak extra RSS is sampled from `/proc/self/status` every
//! few milliseconds while the dump is written.
//!
//! ```sh
//! cargo run --release --example dump_bench
//! ```

use cachet::clock::{Clock, SystemClock};
use cachet::persistence::{Persistence, PersistenceConfig};
use cachet::store::{CachedResponse, Entry, MemoryStore, Store};
use cachet::{Cache, CacheKey, CacheSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const BUDGET: u64 = 2 << 30;

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Runs `work` while sampling RSS; its result, how long it took and the
/// peak RSS above the level before it.
fn measured<T>(work: impl FnOnce() -> T) -> (T, Duration, u64) {
    let before = rss();
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let started = Instant::now();
    let result = work();
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    peak.fetch_max(rss(), Ordering::Relaxed);
    (
        result,
        took,
        peak.load(Ordering::Relaxed).saturating_sub(before),
    )
}

fn cache(store: Arc<MemoryStore>) -> Persistence {
    let cache = Cache::builder()
        .cache("default", CacheSpec::new(BUDGET, Duration::from_secs(3600)))
        .store(store)
        .build()
        .unwrap();
    Persistence::new(&cache, PersistenceConfig::new())
}

fn store(clock: &Arc<dyn Clock>) -> Arc<MemoryStore> {
    let caches = BTreeMap::from([
        (
            "default".to_owned(),
            CacheSpec::new(BUDGET, Duration::from_secs(3600)),
        ),
        (
            "values".to_owned(),
            CacheSpec::new(16 << 20, Duration::from_secs(300)),
        ),
    ]);
    Arc::new(MemoryStore::new(&caches, Arc::clone(clock)))
}

fn run(name: &str, count: usize, body: usize, dir: &std::path::Path) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let file = dir.join(format!("dump-{count}-{body}"));
    let source = store(&clock);
    let now = SystemTime::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for n in 0..count {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            headers.insert(
                "etag",
                http::HeaderValue::from_str(&format!("\"{n}\"")).unwrap(),
            );
            let entry = CachedResponse::new(
                http::StatusCode::OK,
                &headers,
                bytes::Bytes::from(vec![b'x'; body]),
                now,
                Duration::from_secs(3600),
            )
            // Every response the engine stores is indexed under its URI.
            .with_tags(Arc::from(vec![Arc::<str>::from(format!("/api/items/{n}"))]));
            let key = CacheKey::from_raw(format!("/api/items/{n} GET"));
            source
                .insert("default", &key, Entry::from(entry))
                .await
                .unwrap();
        }
    });
    source.run_pending_tasks();
    let filled = cache(Arc::clone(&source));
    let bytes = source.usage("default").unwrap().bytes;
    // Five rounds of each (the first dump also writes the file the
    // restores read): the median, and the range, as this VM is noisy.
    let mut dumps = Vec::new();
    let mut peaks = Vec::new();
    let mut report = None;
    for _ in 0..ROUNDS {
        let (dumped, took, peak) = measured(|| filled.dump(&file).unwrap());
        dumps.push(took);
        peaks.push(peak);
        report = Some(dumped);
    }
    let report = report.unwrap();
    drop(filled);
    drop(source);
    let restores: Vec<Duration> = (0..ROUNDS)
        .map(|_| restored_in_child(&file, report.entries))
        .collect();
    let dump = median(&dumps);
    let restore = median(&restores);
    let peak = peaks.iter().copied().max().unwrap_or(0);
    println!(
        "| {name} | {} | {:.0} MiB | {:.0} MiB | {:.2} s ({}) | {:.1} MiB ({:.1}% of the cache's bytes) | {:.2} s ({}) | {:.2} s |",
        report.entries,
        bytes as f64 / (1 << 20) as f64,
        report.bytes as f64 / (1 << 20) as f64,
        dump.as_secs_f64(),
        range(&dumps),
        peak as f64 / (1 << 20) as f64,
        100.0 * peak as f64 / bytes as f64,
        restore.as_secs_f64(),
        range(&restores),
        (dump + restore).as_secs_f64(),
    );
    let _ = std::fs::remove_file(&file);
}

const ROUNDS: usize = 5;

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn range(times: &[Duration]) -> String {
    let low = times.iter().min().unwrap().as_secs_f64();
    let high = times.iter().max().unwrap().as_secs_f64();
    format!("{low:.2}–{high:.2}")
}

/// A restore runs when a process starts: timed in a fresh one.
fn restored_in_child(file: &std::path::Path, entries: u64) -> Duration {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("restore")
        .arg(file)
        .output()
        .unwrap();
    assert!(child.status.success(), "{child:?}");
    let answer = String::from_utf8(child.stdout).unwrap();
    let (restored, nanos) = answer.trim().split_once(' ').unwrap();
    assert_eq!(restored.parse::<u64>().unwrap(), entries);
    Duration::from_nanos(nanos.parse().unwrap())
}

/// The child's side: restores `file` into a fresh cache and prints how
/// many entries came back and how long it took.
fn restore(file: &std::path::Path) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = store(&clock);
    let persistence = cache(Arc::clone(&target));
    let started = Instant::now();
    let report = persistence.restore_from(file);
    println!("{} {}", report.restored, started.elapsed().as_nanos());
}

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("restore") {
        restore(std::path::Path::new(&args.next().unwrap()));
        return;
    }
    let dir = std::env::temp_dir().join(format!("cachet-dump-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("| entries | count | cache bytes | file | dump, median (range) | peak extra RSS while dumping | restore, median (range) | dump + restore |");
    println!("|---|---|---|---|---|---|---|---|");
    run("11-byte bodies", 1_000_000, 11, &dir);
    run("1 KiB bodies", 100_000, 1024, &dir);
    let _ = std::fs::remove_dir_all(&dir);
}
