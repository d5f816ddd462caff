//! moka against quick_cache, configured as cachet's in-memory store would
//! use each (keys `Arc<str>`, values a shared pointer, weighed in bytes
//! against one budget, moka with its per-entry expiry and removal
//! listener, quick_cache with its eviction hook): what the store choice in
//! docs/benchmarks.md rests on.
//!
//! `cargo bench --bench store_choice` — criterion times one reader's hit,
//! two readers' hits at once and an insert into a full cache; before that
//! it prints, for each library, the hit ratio on a Zipf trace at a fixed
//! byte budget and the heap bytes each held entry costs beyond its value
//! (counted by the allocator).

#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use quick_cache::Lifecycle;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A stored response as the store sees it: shared, with a byte weight.
#[derive(Clone)]
struct Value(Arc<[u8]>);

const KEY_BYTES: usize = 48;
const VALUE_BYTES: usize = 1024;
/// What the weigher adds per entry for the key's and entry's own records.
const OVERHEAD: u64 = 160;

fn weight(key: &str, value: &Value) -> u64 {
    key.len() as u64 + value.0.len() as u64 + OVERHEAD
}

type Moka = moka::sync::Cache<Arc<str>, Value>;

struct Expiry;

impl moka::Expiry<Arc<str>, Value> for Expiry {
    fn expire_after_create(&self, _: &Arc<str>, _: &Value, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

fn moka(budget: u64) -> Moka {
    let removed = Arc::new(AtomicU64::new(0));
    moka::sync::Cache::builder()
        .max_capacity(budget)
        .weigher(|key: &Arc<str>, value: &Value| {
            u32::try_from(weight(key, value)).unwrap_or(u32::MAX)
        })
        .expire_after(Expiry)
        .eviction_listener(move |_, _, _| {
            removed.fetch_add(1, Ordering::Relaxed);
        })
        .build()
}

#[derive(Clone)]
struct Weigher;

impl quick_cache::Weighter<Arc<str>, Value> for Weigher {
    fn weight(&self, key: &Arc<str>, value: &Value) -> u64 {
        weight(key, value)
    }
}

/// Counts evictions, as the store's listener does.
#[derive(Clone, Default)]
struct Evictions(Arc<AtomicU64>);

impl Lifecycle<Arc<str>, Value> for Evictions {
    type RequestState = ();
    fn begin_request(&self) -> Self::RequestState {}
    fn on_evict(&self, _: &mut Self::RequestState, _: Arc<str>, _: Value) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Quick =
    quick_cache::sync::Cache<Arc<str>, Value, Weigher, quick_cache::DefaultHashBuilder, Evictions>;

fn quick(budget: u64) -> Quick {
    let items = usize::try_from(budget / (VALUE_BYTES as u64 + OVERHEAD)).unwrap_or(1);
    quick_cache::sync::Cache::with(
        items,
        budget,
        Weigher,
        quick_cache::DefaultHashBuilder::default(),
        Evictions::default(),
    )
}

/// The two candidates behind one face.
trait Candidate: Send + Sync {
    fn get(&self, key: &str) -> Option<Value>;
    fn insert(&self, key: Arc<str>, value: Value);
    fn settle(&self) {}
    fn len(&self) -> u64;
}

impl Candidate for Moka {
    fn get(&self, key: &str) -> Option<Value> {
        Self::get(self, key)
    }
    fn insert(&self, key: Arc<str>, value: Value) {
        Self::insert(self, key, value);
    }
    fn settle(&self) {
        self.run_pending_tasks();
    }
    fn len(&self) -> u64 {
        self.entry_count()
    }
}

impl Candidate for Quick {
    fn get(&self, key: &str) -> Option<Value> {
        Self::get(self, key)
    }
    fn insert(&self, key: Arc<str>, value: Value) {
        Self::insert(self, key, value);
    }
    fn len(&self) -> u64 {
        Self::len(self) as u64
    }
}

fn key(n: u64) -> Arc<str> {
    let text = format!("GET\u{1f}http://example.com/api/items/{n:020}");
    debug_assert!(text.len() >= KEY_BYTES - 8);
    Arc::from(text)
}

fn value() -> Value {
    Value(Arc::from(vec![b'x'; VALUE_BYTES]))
}

/// xorshift64*: a deterministic trace without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn from a Zipf distribution over `n` keys with exponent `s`.
fn zipf_trace(n: usize, s: f64, len: usize) -> Vec<u64> {
    let mut cumulative = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        total += 1.0 / (rank as f64).powf(s);
        cumulative.push(total);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            let u = rng.unit() * total;
            cumulative.partition_point(|&c| c < u) as u64
        })
        .collect()
}

/// Hit ratio of `cache` on `trace`, inserting on every miss.
fn hit_ratio(cache: &dyn Candidate, trace: &[u64]) -> f64 {
    let value = value();
    let mut hits = 0u64;
    for &n in trace {
        let key = key(n);
        if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, value.clone());
        }
    }
    hits as f64 / trace.len() as f64
}

/// Heap bytes per held entry beyond the shared value, the key's text
/// included: `count` distinct keys into a cache with room for all of them.
fn bytes_per_entry(make: &dyn Fn() -> Box<dyn Candidate>, count: u64) -> f64 {
    let value = value();
    let region = Region::new(GLOBAL);
    let cache = make();
    for n in 0..count {
        cache.insert(key(n), value.clone());
    }
    cache.settle();
    let stats = region.change();
    let live = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64;
    let held = cache.len();
    drop(cache);
    live / held as f64
}

fn report() {
    const BUDGET: u64 = 16 * 1024 * 1024;
    let entries_budget = BUDGET / (VALUE_BYTES as u64 + OVERHEAD);
    println!("store_choice: budget 16 MiB, 1 KiB values ({entries_budget} entries fit)");
    for (keys, s) in [(100_000, 0.8), (100_000, 1.0), (1_000_000, 0.99)] {
        let trace = zipf_trace(keys, s, 1_000_000);
        let m = hit_ratio(&moka(BUDGET), &trace);
        let q = hit_ratio(&quick(BUDGET), &trace);
        println!(
            "  Zipf s={s} over {keys} keys, 1,000,000 requests: hit ratio moka {m:.4}, quick_cache {q:.4}"
        );
    }
    let room = 1 << 30;
    let m = bytes_per_entry(&|| Box::new(moka(room)), 100_000);
    let q = bytes_per_entry(&|| Box::new(quick(room)), 100_000);
    println!("  heap bytes per entry (100,000 entries, key text included): moka {m:.0}, quick_cache {q:.0}");
}

fn bench(c: &mut Criterion) {
    report();
    let budget = 256 * 1024 * 1024;
    let candidates: [(&str, Box<dyn Candidate>); 2] = [
        ("moka", Box::new(moka(budget))),
        ("quick_cache", Box::new(quick(budget))),
    ];
    let mut group = c.benchmark_group("store");
    let keys: Vec<Arc<str>> = (0..10_000).map(key).collect();
    for (name, cache) in &candidates {
        for key in &keys {
            cache.insert(Arc::clone(key), value());
        }
        cache.settle();
        let hot = &keys[42];
        group.bench_function(format!("{name}: hit, one reader"), |b| {
            b.iter(|| black_box(cache.get(black_box(hot))))
        });
        group.bench_function(format!("{name}: hit, two readers at once"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..2 {
                        scope.spawn(|| {
                            for key in keys.iter().cycle().take(iters as usize) {
                                black_box(cache.get(key));
                            }
                        });
                    }
                });
                start.elapsed() / 2
            })
        });
    }
    let small = 4 * 1024 * 1024;
    for (name, cache) in [
        ("moka", Box::new(moka(small)) as Box<dyn Candidate>),
        ("quick_cache", Box::new(quick(small))),
    ] {
        let next = AtomicU64::new(0);
        let value = value();
        group.bench_function(format!("{name}: insert into a full cache"), |b| {
            b.iter(|| cache.insert(key(next.fetch_add(1, Ordering::Relaxed)), value.clone()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
